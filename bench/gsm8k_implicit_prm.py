"""Implicit process rewards from outcome labels only, on GSM8K solutions with errors at known steps.

    python bench/gsm8k_implicit_prm.py [--model smollm2] [--train-rows 400] [--eval-rows 400]

``rewardlab prm-data`` turns GSM8K reference solutions into step rows, a seeded half with one
calculator result made wrong (the first wrong step is known). The implicit PRM (``--kind
implicit_prm``, Yuan et al. 2024) is trained on the first N rows of gsm8k/train.jsonl with the
OUTCOME only (``correct``: no wrong step; the step labels are removed), one epoch. Evaluated on the
first M rows of the same construction from gsm8k/test.jsonl:

- ProcessBench's first-error F1 on sigma(step reward) (threshold chosen on the even rows,
  reported on the odd), beside the explicitly supervised PRM of bench/gsm8k_orm_prm.py (MiniLM,
  step labels, all 7,473 training rows: 0.661);
- the first error found: on the corrupted solutions, how often the step with the lowest implicit
  reward is the corrupted one, against chance (picking a step uniformly: the mean of 1/steps);
- the outcome AUROC of sigma(sum of token rewards).

Every number is printed and written to OUT/results.json, and with the commit and versions to
bench/results/gsm8k-implicit-prm-MODEL.json (bench/harness.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.harness import SHARED_DATA, fmt, record  # noqa: E402
import rewardlab  # noqa: E402
from rewardlab.config import TrainConfig  # noqa: E402
from rewardlab.data.steps import gsm8k_step_rows  # noqa: E402
from rewardlab.training import train  # noqa: E402

SHARED = SHARED_DATA / "gsm8k"
EXPLICIT_PRM_F1 = 0.661  # bench/gsm8k_orm_prm.py's supervised PRM (MiniLM, step labels, all 7,473 rows)


def write(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def first_error_found(rows: list[dict], outputs: list[dict]) -> dict:
    """On the corrupted rows: the share whose lowest step reward is the corrupted step, and chance."""
    hits, chance, n = 0, 0.0, 0
    for row, out in zip(rows, outputs):
        steps = out["step_rewards"]
        if row["first_error"] < 0 or any(s is None for s in steps):  # None: a step cut off by truncation
            continue
        n += 1
        hits += min(range(len(steps)), key=steps.__getitem__) == row["first_error"]
        chance += 1 / len(steps)
    return {"rate": hits / n if n else None, "chance": chance / n if n else None, "corrupted_rows": n}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2")
    p.add_argument("--train-rows", type=int, default=400)
    p.add_argument("--eval-rows", type=int, default=400)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--beta", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--out", default="runs/gsm8k-implicit-prm")
    args = p.parse_args()
    if not (SHARED / "train.jsonl").exists():
        sys.exit(f"{SHARED} not found: set REWARDLAB_SHARED_DATA to the folder holding gsm8k/")
    out, results = Path(args.out), {"settings": vars(args)}
    train_rows, train_counts = gsm8k_step_rows(str(SHARED / "train.jsonl"), limit=args.train_rows)
    eval_rows, eval_counts = gsm8k_step_rows(str(SHARED / "test.jsonl"), limit=args.eval_rows)
    outcome_only = [{"prompt": r["prompt"], "steps": r["steps"], "correct": r["first_error"] < 0} for r in train_rows]
    train_file = write(out / "data" / "train.jsonl", outcome_only)
    eval_file = write(out / "data" / "eval.jsonl", eval_rows)
    results["data"] = {"train": train_counts, "eval": eval_counts}
    shutil.rmtree(out / "model", ignore_errors=True)
    t0 = time.perf_counter()
    r = train(TrainConfig.flat(kind="implicit_prm", model=args.model, data=train_file, output=str(out / "model"),
                               lr=args.lr, implicit_beta=args.beta, batch_size=args.batch_size,
                               max_length=args.max_length, save_every=0, log_every=10))
    results["train"] = {"rows": r["train_examples"], "train_s": round(time.perf_counter() - t0, 1)}
    t0 = time.perf_counter()
    evaluated = rewardlab.evaluate(str(out / "model"), eval_file, batch_size=16, device="cpu")
    m, outputs = evaluated.metrics, [d[0] for d in evaluated.details]
    results["eval"] = {"processbench": m.get("processbench"), "steps": m.get("steps"), "outcome_auroc": m.get("auroc"),
                       "first_error": first_error_found(eval_rows, outputs), "truncated": m["truncated"],
                       "eval_s": round(time.perf_counter() - t0, 1)}
    print(json.dumps(results, indent=1), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    model = Path(args.model).name
    record(f"gsm8k-implicit-prm-{model}", f"Implicit process rewards from outcome labels on GSM8K: {model}", args,
           results, table(results))


def table(results: dict) -> dict:
    """The three measures, each beside what it is compared with."""
    e = results["eval"]
    pb, first = e["processbench"] or {}, e["first_error"]
    rows = [["ProcessBench first-error F1", fmt(pb.get("f1")), f"explicitly supervised PRM {EXPLICIT_PRM_F1}"],
            ["first error found (lowest step reward)", fmt(first["rate"]), f"chance {fmt(first['chance'])}"],
            ["outcome AUROC", fmt(e["outcome_auroc"]), "chance 0.5"]]
    return {"columns": ["measure", "implicit PRM", "compared with"], "rows": rows}


if __name__ == "__main__":
    main()
