"""A trained pairwise judge against the untrained judge and a Bradley-Terry reward model on
real HH-RLHF preference pairs.

    python bench/hh_judge.py [--model smollm2] [--train-pairs 400] [--eval-pairs 400]

The bundled SmolLM2-135M, prompted with MT-Bench's pairwise prompt, agrees with the human label
0.0 of the time in `rewardlab judge` (it always prefers the first answer). Here the same model is
trained as a judge (``--kind judge``: both orders of every pair, next-token loss on [[A]]/[[B]])
and as a Bradley-Terry reward model, on the same first N pairs of
../shared/data/hh-rlhf-harmless/pairs.jsonl.gz with the same learning rate, batch and one epoch,
and both are evaluated on the last M pairs. For judges: agreement with the human label (the
probability that the chosen answer wins, averaged over both orders, above 1/2), FastChat's
both-orders agreement, position consistency and the share of orders won by the answer shown
first. For the reward model: accuracy. Beside them: random (0.5), and the simplest baselines,
"the longer answer" and "the shorter answer". Every number is printed and written to
OUT/results.json (results_reused.json with --reuse), and with the commit and versions to
bench/results/hh-judge-MODEL.json (bench/harness.py).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded

from bench.harness import SHARED_DATA, fmt, record  # noqa: E402
import rewardlab  # noqa: E402
from rewardlab.config import TrainConfig  # noqa: E402
from rewardlab.training import train  # noqa: E402

SHARED = SHARED_DATA / "hh-rlhf-harmless"


def write(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def evaluate(model, data: str, batch_size: int) -> dict:
    """``rewardlab.evaluate``'s metrics (what `rewardlab eval --json` prints) and the time it took."""
    t0 = time.perf_counter()
    metrics = rewardlab.evaluate(model, data, batch_size=batch_size, device="cpu").metrics
    return {**metrics, "eval_s": round(time.perf_counter() - t0, 1)}


def untrained_judge(name: str, data: str, max_length: int, batch_size: int) -> dict:
    """The backbone as it ships, read exactly as a trained judge is (letters after "[[")."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardlab.config import ModelSettings
    from rewardlab.kinds.judge import Options, Prompts
    from rewardlab.models.backbone import ensure_pad_token, resolve

    path = resolve(name)
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path).eval()
    ensure_pad_token(tokenizer, model)
    settings = ModelSettings(kind="judge", head="lm", max_length=max_length,
                             extras={"judge_letters": Prompts(tokenizer, Options().template()).letters})
    return evaluate(rewardlab.RewardModel(model, tokenizer, max_length, "cpu", settings=settings), data, batch_size)


def length_baselines(rows: list[dict]) -> dict:
    from rewardlab.data.text import split_shared_prefix

    longer = shorter = 0
    for r in rows:
        _, chosen, rejected = split_shared_prefix(r["chosen"], r["rejected"])
        longer += len(chosen) > len(rejected)
        shorter += len(chosen) < len(rejected)
    return {"random": 0.5, "longer_answer": longer / len(rows), "shorter_answer": shorter / len(rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2")
    p.add_argument("--kinds", default="judge,preference")
    p.add_argument("--train-pairs", type=int, default=400, help="the first N pairs train")
    p.add_argument("--eval-pairs", type=int, default=400, help="the last M of the 2,000 pairs evaluate")
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--batch-size", type=int, default=8, help="pairs per step")
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--skip-untrained", action="store_true")
    p.add_argument("--reuse", action="store_true", help="evaluate the models OUT already holds instead of training")
    p.add_argument("--out", default="runs/hh-judge")
    args = p.parse_args()
    source = SHARED / "pairs.jsonl.gz"
    if not source.exists():
        sys.exit(f"{source} not found: set REWARDLAB_SHARED_DATA to the folder holding hh-rlhf-harmless/")
    with gzip.open(source, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    out, results = Path(args.out), {"settings": vars(args)}
    train_file = str(out / "data" / "train.jsonl") if args.reuse else write(out / "data" / "train.jsonl",
                                                                              rows[:args.train_pairs])
    eval_rows = rows[len(rows) - args.eval_pairs:]
    eval_file = write(out / "data" / "eval.jsonl", eval_rows)
    results["baselines"] = length_baselines(eval_rows)
    print("baselines", json.dumps(results["baselines"]), flush=True)
    if not args.skip_untrained:
        results["untrained_judge"] = untrained_judge(args.model, eval_file, args.max_length, 8)
        print("untrained_judge", json.dumps(results["untrained_judge"]), flush=True)
    for name in args.kinds.split(","):
        t0, r = time.perf_counter(), {"train_examples": None}
        if not args.reuse:
            shutil.rmtree(out / name, ignore_errors=True)
            r = train(TrainConfig.flat(kind=name, model=args.model, data=train_file, output=str(out / name),
                                       lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                                       save_every=0, log_every=10))
        results[name] = {"train_items": r["train_examples"], "train_s": round(time.perf_counter() - t0, 1),
                         "eval": evaluate(str(out / name), eval_file, 8)}
        print(name, json.dumps(results[name]), flush=True)
    (out / ("results_reused.json" if args.reuse else "results.json")).write_text(json.dumps(results, indent=1))
    model = Path(args.model).name
    record(f"hh-judge-{model}", f"A trained pairwise judge vs the untrained one and a Bradley-Terry model on "
           f"HH-RLHF: {model}", args, results, table(results))


def table(results: dict) -> dict:
    """Agreement with the human label (accuracy for the reward model), the judges' position
    numbers, training time, then the baselines."""
    rows = []
    for name in (k for k in results if k not in ("settings", "baselines")):  # the untrained judge first
        m = results[name] if name == "untrained_judge" else results[name]["eval"]
        train_s = "" if name == "untrained_judge" else f"{results[name]['train_s']:.0f}"
        judged = [fmt(m[k]) if k in m else "" for k in ("agreement_both_orders", "position_consistency",
                                                           "prefers_first")]
        rows.append([name.replace("_", " "), fmt(m.get("agreement", m.get("accuracy"))), *judged, train_s])
    b = results["baselines"]
    rows += [[label, fmt(b[key]), "", "", "", ""] for label, key in (
        ("random", "random"), ("the longer answer", "longer_answer"), ("the shorter answer", "shorter_answer"))]
    return {"columns": ["model", "agreement / accuracy", "both-orders agreement", "position consistency",
                        "first answer preferred", "train s"], "rows": rows}


if __name__ == "__main__":
    main()
