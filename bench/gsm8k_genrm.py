"""A generative verifier against an outcome reward model on real GSM8K solutions.

    python bench/gsm8k_genrm.py [--model smollm2] [--train-questions 200] [--eval-questions 200]

Zhang et al. 2024 report generative verifiers (p(Yes) after "Is the answer correct?", trained
with next-token loss) beating discriminative outcome reward models. Here both are trained on the
same rows of ../shared/data/gsm8k/model_solutions.jsonl.gz (the first N questions, 4 graded
solutions each), with the same backbone, learning rate, batch and one epoch, and evaluated on the
last M questions: pooled AUROC, AUROC within a question (does it rank one question's solutions;
the mean over questions with both a right and a wrong solution), ECE, and best-of-4 beside random
pick, majority vote and the oracle. Every number is printed and written to OUT/results.json, and
with the commit and versions to bench/results/gsm8k-genrm-MODEL.json (bench/harness.py).
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
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.gsm8k_orm_prm import within_question_auroc, write  # noqa: E402
from bench.harness import SHARED_DATA, fmt, record  # noqa: E402

import rewardlab  # noqa: E402
from rewardlab.config import TrainConfig  # noqa: E402
from rewardlab.data.gsm8k import solution_rows  # noqa: E402
from rewardlab.training import train  # noqa: E402

SHARED = SHARED_DATA / "gsm8k"


def evaluate(model_dir: str, data: str, batch_size: int) -> dict:
    """What `rewardlab eval --model DIR --data FILE --json` prints, and the AUROC within each question."""
    result = rewardlab.evaluate(model_dir, data, batch_size=batch_size, device="cpu")
    within, n = within_question_auroc(result.examples, [d[0]["reward"] for d in result.details])
    return {**result.metrics, "auroc_within_question": within, "questions_with_both": n}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2")
    p.add_argument("--kinds", default="genrm,orm")
    p.add_argument("--train-questions", type=int, default=200, help="the first N questions train (4 rows each)")
    p.add_argument("--eval-questions", type=int, default=200, help="the last M of the 1,000 questions evaluate")
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--batch-size", type=int, default=8, help="rows per step")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--out", default="runs/gsm8k-genrm")
    args = p.parse_args()
    if not SHARED.exists():
        sys.exit(f"{SHARED} not found: set REWARDLAB_SHARED_DATA to the folder holding gsm8k/")
    out, results = Path(args.out), {"settings": vars(args)}
    rows = solution_rows(str(SHARED / "model_solutions.jsonl.gz"))
    last = max(r["question_id"] for r in rows) + 1
    train_file = write(out / "data" / "train.jsonl", [r for r in rows if r["question_id"] < args.train_questions])
    eval_file = write(out / "data" / "eval.jsonl", [r for r in rows if r["question_id"] >= last - args.eval_questions])
    for kind in args.kinds.split(","):
        shutil.rmtree(out / kind, ignore_errors=True)
        t0 = time.perf_counter()
        r = train(TrainConfig.flat(kind=kind, model=args.model, data=train_file, output=str(out / kind), lr=args.lr,
                                   batch_size=args.batch_size, max_length=args.max_length, save_every=0, log_every=10))
        results[kind] = {"train_rows": r["train_examples"], "train_s": round(time.perf_counter() - t0, 1),
                         "eval": evaluate(str(out / kind), eval_file, 16)}
        print(kind, json.dumps(results[kind]), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    model = Path(args.model).name
    record(f"gsm8k-genrm-{model}", f"A generative verifier vs an ORM on GSM8K solutions: {model}", args, results,
           table(results))


def table(results: dict) -> dict:
    """Each kind's AUROCs, ECE and best-of-4, then the baselines of the same questions."""
    kinds = [k for k in results if k != "settings"]
    rows = [[k, fmt(e.get("auroc")), fmt(e["auroc_within_question"]), fmt(e.get("ece")), fmt(e.get("best_of_n")),
             f"{results[k]['train_s']:.0f}"] for k in kinds for e in [results[k]["eval"]]]
    e = results[kinds[0]]["eval"] if kinds else {}
    rows += [[name, chance, chance, "", fmt(e.get(name)), ""]
             for name, chance in (("random", "0.5"), ("majority", ""), ("oracle", ""))]
    return {"columns": ["verifier", "AUROC", "AUROC within a question", "ECE", "best-of-4", "train s"], "rows": rows}


if __name__ == "__main__":
    main()
