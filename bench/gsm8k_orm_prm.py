"""Outcome and process reward models on real GSM8K data: can they pick the right solution?

    python bench/gsm8k_orm_prm.py [--model minilm] [--kinds orm,prm] [--prm-train-limit N]

ORM (Cobbe et al. 2021): ../shared/data/gsm8k/model_solutions.jsonl.gz, one row per graded
model solution; the first 800 questions train (3,200 rows), the last 200 evaluate: AUROC, ECE,
Brier and best-of-4 beside random pick, majority vote and the oracle of the same questions
(bench/gsm8k_objectives.py trains the preference objectives on the same split).

PRM (Lightman et al. 2023): trained on ``rewardlab prm-data`` rows from gsm8k/train.jsonl
(reference solutions, a seeded half with one corrupted calculator result, labelled wrong from
there on), evaluated on (a) the same construction from test.jsonl: step F1 and ProcessBench
first-error F1, (b) the CHAMP human annotations of the first wrong step (competition math; the
optional champ-dataset package, skipped without it), (c) best-of-4 on the last 200 questions of
model_solutions, each solution split into steps at newlines, aggregate min.

Every number is printed and written to OUT/results.json, and with the commit and versions to
bench/results/gsm8k-orm-prm-MODEL.json (bench/harness.py; gsm8k-orm-MODEL with ``--kinds orm``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.harness import SHARED_DATA, fmt, record  # noqa: E402
import rewardlab  # noqa: E402
from rewardlab.config import TrainConfig  # noqa: E402
from rewardlab.data.gsm8k import solution_rows, solution_step_rows  # noqa: E402
from rewardlab.eval.pointwise import auroc  # noqa: E402
from rewardlab.data.steps import gsm8k_step_rows, read_champ  # noqa: E402
from rewardlab.training import train  # noqa: E402

SHARED = SHARED_DATA / "gsm8k"


def write(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return str(path)


def within_question_auroc(examples: list, probs: list[float]) -> tuple[float | None, int]:
    """The mean AUROC over questions that have both a right and a wrong solution, and their number."""
    by: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by.setdefault(e.prompt, []).append(i)
    values = [auroc([probs[i] for i in idx], [examples[i].target for i in idx]) for idx in by.values()]
    values = [v for v in values if v is not None]
    return (sum(values) / len(values) if values else None), len(values)


def evaluate(model_dir: str, data: str, batch_size: int = 32):
    """``rewardlab.evaluate``: its metrics are what `rewardlab eval --model DIR --data FILE --json` prints."""
    return rewardlab.evaluate(model_dir, data, batch_size=batch_size, device="cpu")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="minilm")
    p.add_argument("--kinds", default="orm,prm")
    p.add_argument("--out", default="runs/gsm8k-orm-prm")
    p.add_argument("--lr", type=float, default=1e-4)  # the MiniLM recipe's
    p.add_argument("--batch-size", type=int, default=32, help="rows per step")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--prm-train-limit", type=int, default=None, help="first N GSM8K train problems (default all)")
    p.add_argument("--orm-loss-on", default="auto", choices=("auto", "all_tokens", "last_token"))
    p.add_argument("--train-questions", type=int, default=800,
                   help="model_solutions: the first N questions train the ORM, the rest evaluate (and best-of-4)")
    p.add_argument("--champ-limit", type=int, default=None, help="first N CHAMP rows (default all)")
    args = p.parse_args()
    if not SHARED.exists():
        sys.exit(f"{SHARED} not found: set REWARDLAB_SHARED_DATA to the folder holding gsm8k/")
    out, results = Path(args.out), {}
    solutions = str(SHARED / "model_solutions.jsonl.gz")
    common = dict(model=args.model, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                  save_every=0, log_every=10, eval_batch_size=32)
    if "orm" in args.kinds:
        rows = solution_rows(solutions)
        split = args.train_questions
        train_file = write(out / "data" / "orm_train.jsonl", [r for r in rows if r["question_id"] < split])
        eval_file = write(out / "data" / "orm_eval.jsonl", [r for r in rows if r["question_id"] >= split])
        shutil.rmtree(out / "orm", ignore_errors=True)
        t0 = time.perf_counter()
        r = train(TrainConfig.flat(kind="orm", data=train_file, eval_data=eval_file, output=str(out / "orm"),
                                   orm_loss_on=args.orm_loss_on, **common))
        evaluated = evaluate(str(out / "orm"), eval_file)
        within, n = within_question_auroc(evaluated.examples, [d[0]["reward"] for d in evaluated.details])
        loss_on = rewardlab.RewardModel.from_pretrained(str(out / "orm"), device="cpu").settings.objective["orm_loss_on"]
        results["orm"] = {"train_rows": r["train_examples"], "train_s": time.perf_counter() - t0, "eval": r["eval"],
                          "orm_loss_on": loss_on, "auroc_within_question": within, "questions_with_both": n}
        print(json.dumps(results["orm"]), flush=True)
    if "prm" in args.kinds:
        train_rows, counts = gsm8k_step_rows(str(SHARED / "train.jsonl"), seed=0, limit=args.prm_train_limit)
        test_rows, _ = gsm8k_step_rows(str(SHARED / "test.jsonl"), seed=0)
        train_file = write(out / "data" / "prm_train.jsonl", train_rows)
        test_file = write(out / "data" / "prm_test.jsonl", test_rows)
        shutil.rmtree(out / "prm", ignore_errors=True)
        t0 = time.perf_counter()
        r = train(TrainConfig.flat(kind="prm", data=train_file, output=str(out / "prm"), **common))
        results["prm"] = {"train_rows": r["train_examples"], "train_corrupted": counts["corrupted"],
                          "train_s": time.perf_counter() - t0}
        results["prm"]["gsm8k_test"] = evaluate(str(out / "prm"), test_file).metrics
        steps = [x for x in solution_step_rows(solutions) if x["question_id"] >= args.train_questions]
        results["prm"]["best_of_4"] = evaluate(str(out / "prm"), write(out / "data" / "prm_bo4.jsonl", steps)).metrics
        if importlib.util.find_spec("champ_dataset"):
            champ = write(out / "data" / "champ.jsonl", read_champ()[:args.champ_limit])
            results["prm"]["champ"] = evaluate(str(out / "prm"), champ).metrics
        else:
            results["prm"]["champ"] = "skipped: pip install champ-dataset"
        print(json.dumps(results["prm"]), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    model = Path(args.model).name
    record(f"gsm8k-{'-'.join(results)}-{model}", f"Outcome and process reward models on GSM8K: {model}", args,
           results, table(results))


def table(results: dict) -> dict:
    """Each model's headline numbers beside the baselines of the same rows."""
    rows = []

    def pick(who: str, m: dict) -> None:  # best-of-4 and its baselines (eval's best-of-N numbers)
        rows.append([who, "best-of-4", fmt(m.get("best_of_n")), ", ".join(
            f"{k} {fmt(m.get(k))}" for k in ("random", "majority", "oracle"))])

    if "orm" in results:
        o, e = results["orm"], results["orm"]["eval"]
        rows += [["ORM", "AUROC", fmt(e.get("auroc")), "chance 0.5"],
                 ["ORM", "AUROC within a question", fmt(o["auroc_within_question"]), "chance 0.5"],
                 ["ORM", "ECE", fmt(e.get("ece")), ""]]
        pick("ORM", e)
    if "prm" in results:
        r = results["prm"]
        test, champ = r["gsm8k_test"], r["champ"]
        rows += [["PRM", "GSM8K test step F1 (mean of both classes)", fmt(test.get("steps", {}).get("f1_mean")), ""],
                 ["PRM", "GSM8K test ProcessBench F1", fmt(test.get("processbench", {}).get("f1")), ""]]
        pick("PRM (min over steps)", r["best_of_4"].get("best_of_n", {}))
        rows.append(["PRM", "CHAMP ProcessBench F1", fmt(champ.get("processbench", {}).get("f1"))
                     if isinstance(champ, dict) else champ, ""])
    return {"columns": ["model", "metric", "value", "baselines"], "rows": rows}


if __name__ == "__main__":
    main()
