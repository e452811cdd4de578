"""Preference objectives on real graded solutions: which loss best ranks GSM8K solutions?

    python bench/gsm8k_objectives.py [--model minilm] [--losses bt,balanced,plackett_luce,davidson]

Data: ../shared/data/gsm8k/model_solutions.jsonl.gz, 1,000 questions with 4 model-written
solutions each, graded correct/incorrect. One group row per question: the 4 solutions with
``scores`` = correctness (equal grades tie). Split by question: the first 800 train, the last
200 evaluate. Each objective trains the same backbone for one epoch with the same settings:
(a) bt on every correct-vs-incorrect pair (questions whose solutions are all right or all
wrong hold no such pair and are skipped, counted), (b) the same pairs balanced per question
(InstructGPT), (c) Plackett-Luce over the 4 (ties by Breslow's rule, so all-tied questions
count too), (d) Davidson, which also learns from the tied pairs.

Printed: a table of held-out pairwise accuracy, Kendall tau, top-1 and best-of-4 beside the
random-pick, majority-vote and oracle baselines of the same 200 questions, and the JSON of
every run (also written to OUT/results.json and, with the commit and versions, to
bench/results/gsm8k-objectives-MODEL.json by bench/harness.py).
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

from bench.harness import SHARED_DATA, fmt, record  # noqa: E402
from rewardlab.config import TrainConfig  # noqa: E402
from rewardlab.data.gsm8k import solution_groups  # noqa: E402
from rewardlab.training import train  # noqa: E402

DATA = SHARED_DATA / "gsm8k" / "model_solutions.jsonl.gz"
OBJECTIVES = {
    "bt": dict(loss="bt"),
    "balanced": dict(loss="bt", balance=True),
    "plackett_luce": dict(loss="plackett_luce"),
    "davidson": dict(loss="davidson"),
}


def write_split(out: Path, train_questions: int = 800) -> tuple[str, str]:
    rows = solution_groups(str(DATA))
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", rows[:train_questions]), ("eval", rows[train_questions:])):
        with open(out / f"{name}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in part)
    return str(out / "train.jsonl"), str(out / "eval.jsonl")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="minilm")
    p.add_argument("--losses", default=",".join(OBJECTIVES))
    p.add_argument("--out", default="runs/gsm8k-objectives")
    p.add_argument("--lr", type=float, default=1e-4)  # the MiniLM HH recipe's
    p.add_argument("--batch-size", type=int, default=8, help="questions per step (x4 solutions)")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--train-questions", type=int, default=800, help="the first N questions train, the rest evaluate")
    args = p.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} not found: set REWARDLAB_SHARED_DATA to the folder holding gsm8k/")
    out = Path(args.out)
    train_file, eval_file = write_split(out / "data", args.train_questions)
    results = {}
    for name in args.losses.split(","):
        shutil.rmtree(out / name, ignore_errors=True)  # a fresh run each time
        t0 = time.perf_counter()
        cfg = TrainConfig.flat(model=args.model, data=train_file, eval_data=eval_file, output=str(out / name),
                               lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                               skip_bad_rows=True, save_every=0, log_every=10, **OBJECTIVES[name])
        result = dict(train(cfg))  # its metrics (train_results.json), to add the wall time to
        result["wall_s"] = time.perf_counter() - t0
        results[name] = result
        (out / "results.json").write_text(json.dumps(results, indent=1))
    head = "| objective | train questions | pairwise acc | Kendall tau | top-1 | best-of-4 | random | majority | oracle | train s |"
    print(head)
    print("|" + " --- |" * (head.count("|") - 1))
    for name, r in results.items():
        e = r["eval"]
        print(f"| {name} | {r['train_examples']} | {e['pairwise_accuracy']:.3f} | {e['kendall_tau']:.3f} | "
              f"{e['top1_accuracy']:.3f} | {e['best_of_k']:.3f} | {e['random_baseline']:.3f} | "
              f"{e['majority_vote']:.3f} | {e['oracle']:.3f} | {r['wall_s']:.0f} |")
    model = Path(args.model).name
    record(f"gsm8k-objectives-{model}", f"Preference objectives on GSM8K graded solutions: {model}", args, results,
           table(results))


def table(results: dict) -> dict:
    """The printed table: each objective's held-out numbers beside the baselines of the same questions."""
    columns = ["objective", "train questions", "pairwise acc", "Kendall tau", "top-1", "best-of-4", "random",
               "majority", "oracle", "train s"]
    rows = [[name, str(r["train_examples"]), *(fmt(r["eval"][k]) for k in (
        "pairwise_accuracy", "kendall_tau", "top1_accuracy", "best_of_k", "random_baseline", "majority_vote",
        "oracle")), f"{r['wall_s']:.0f}"] for name, r in results.items()]
    return {"columns": columns, "rows": rows}


if __name__ == "__main__":
    main()
