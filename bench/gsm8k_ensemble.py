"""Over-optimisation on real graded data: best-of-N picked by one proxy reward model, by an
ensemble's mean, and by its conservative aggregates, scored by the gold reward (correctness).

    python bench/gsm8k_ensemble.py [--model minilm] [--members 3] [--heads 3]

../shared/data/gsm8k/model_solutions.jsonl.gz: four graded solutions per question; the first 800
questions train, the last 200 are the candidates to pick from. Every proxy is the Plackett-Luce
objective of bench/gsm8k_objectives.py (the best picker there: one epoch, batch 8 questions, lr
1e-4), correctness as the ranking (equal grades tie). Trained in one run: ``--members`` models
differing only in ``--seed``, their ensemble (``rewardlab ensemble``, each member standardised
with its training statistics) and one ``--heads H`` model. For each selector, the gold accuracy
of its pick among n = 1..4 candidates (all subsets of n, as eval's best-of-N curve), beside the
random pick, the majority vote on the final answer and the oracle. Selectors: each member alone,
the ensemble's mean, min (worst case), mean - 1 std and mean - 2 std (uncertainty-weighted),
and the same aggregates over the heads. Written to OUT/results.json (OUT:
runs/bench-gsm8k-ensemble-MODEL unless --out says otherwise) and, with the commit and versions,
to bench/results/gsm8k-ensemble-MODEL.json (bench/harness.py).

Four candidates is mild optimisation pressure: the question here is whether the conservative
aggregates lose or gain anything at it, not a reproduction of Gao et al.'s curves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.harness import SHARED_DATA, fmt, record  # noqa: E402
import rewardlab  # noqa: E402
from rewardlab.inference.combine import make_ensemble  # noqa: E402
from rewardlab.data.gsm8k import solution_groups  # noqa: E402
from rewardlab.eval.diagnostics import best_of_n_curve  # noqa: E402
from rewardlab.eval.ranking import majority_answer  # noqa: E402
from rewardlab.models.ensemble import aggregate  # noqa: E402

SHARED = SHARED_DATA / "gsm8k"


def train(model: str, data: str, out: Path, seed: int, reuse: bool, **options) -> float:
    done = out / "bench_time.json"
    if reuse and done.exists():
        return json.loads(done.read_text())["train_s"]
    t0 = time.perf_counter()
    rewardlab.train(model=model, data=data, output=str(out), loss="plackett_luce", epochs=1, batch_size=8, lr=1e-4,
                    max_length=512, seed=seed, reward_stats=True, save_every=0, **options)
    wall = time.perf_counter() - t0
    done.write_text(json.dumps({"train_s": wall}))
    return wall


def member_rewards(model: Path, data: Path, out: Path) -> list[list[list[float]]]:
    """Per question, per candidate, the members' (standardised) rewards (what `rewardlab score --members` writes)."""
    from rewardlab.inference.score_file import score_file

    score_file(rewardlab.RewardModel.from_pretrained(str(model), options={"members": True}), str(data), str(out))
    return [json.loads(x)["members"] for x in out.read_text().splitlines()]


def selectors(per_member: list[list[list[float]]], prefix: str, singles: bool) -> dict[str, list[list[float]]]:
    """Rewards per question per candidate under each selector."""
    size = len(per_member[0][0])
    out = {}
    if singles:
        out.update({f"{prefix} member {m + 1}": [[c[m] for c in q] for q in per_member] for m in range(size)})
    for name, how, coef in (("mean", "mean", 1.0), ("min", "min", 1.0), ("mean - 1 std", "mean_minus_std", 1.0),
                            ("mean - 2 std", "mean_minus_std", 2.0)):
        out[f"{prefix} {name}"] = [[aggregate(c, how, coef) for c in q] for q in per_member]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="minilm")
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--heads", type=int, default=3)
    p.add_argument("--train-questions", type=int, default=800,
                   help="the first N questions train, the rest are the candidates")
    p.add_argument("--out", default="")
    p.add_argument("--reuse", action="store_true", help="keep models already trained in OUT")
    args = p.parse_args()
    path = SHARED / "model_solutions.jsonl.gz"
    if not path.exists():
        raise SystemExit(f"{path} not found: this benchmark runs on the shared GSM8K data")
    model = Path(args.model).name  # an alias, or a folder's name
    out = Path(args.out or f"runs/bench-gsm8k-ensemble-{model}")
    out.mkdir(parents=True, exist_ok=True)
    groups = solution_groups(str(path))
    train_rows = [g for g in groups if g["question_id"] < args.train_questions]
    test_rows = [g for g in groups if g["question_id"] >= args.train_questions]
    data, candidates = out / "train.jsonl", out / "candidates.jsonl"
    data.write_text("".join(json.dumps(g) + "\n" for g in train_rows))
    candidates.write_text("".join(json.dumps({k: g[k] for k in ("prompt", "completions")}) + "\n" for g in test_rows))

    times = {}
    members = [out / f"member{s}" for s in range(1, args.members + 1)]
    for s, folder in enumerate(members, 1):
        times[folder.name] = train(args.model, str(data), folder, s, args.reuse)
        print(f"{folder.name}: trained in {times[folder.name]:.0f} s", file=sys.stderr, flush=True)
    heads = out / f"heads{args.heads}"
    times[heads.name] = train(args.model, str(data), heads, 1, args.reuse, heads=args.heads)
    make_ensemble([str(m) for m in members], str(out / "ensemble"))
    picks = {**selectors(member_rewards(out / "ensemble", candidates, out / "scored_ensemble.jsonl"), "ensemble",
                         True),
             **selectors(member_rewards(heads, candidates, out / "scored_heads.jsonl"), f"heads{args.heads}", True)}
    correct = [[s == 1.0 for s in g["scores"]] for g in test_rows]
    curves = {name: best_of_n_curve(rewards, correct) for name, rewards in picks.items()}
    first = next(iter(curves.values()))
    majority = sum(any(c and a == majority_answer(g["answers"]) for c, a in zip(cs, g["answers"]))
                   and majority_answer(g["answers"]) is not None for g, cs in zip(test_rows, correct)) / len(test_rows)
    results = {"questions": len(test_rows), "train_questions": len(train_rows), "train_s": times,
               "best_of_4": {name: c["model"][-1] for name, c in curves.items()},
               "curves": {name: c["model"] for name, c in curves.items()},
               "random": first["random"], "oracle": first["oracle"], "majority_vote": majority}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nGSM8K model_solutions, last {len(test_rows)} questions: gold accuracy of the pick among n candidates")
    print(f"{'selector':<28} " + " ".join(f"n={n:<6}" for n in first["n"]))
    for name, c in curves.items():
        print(f"{name:<28} " + " ".join(f"{v:<8.4f}" for v in c["model"]))
    print(f"{'random':<28} " + " ".join(f"{v:<8.4f}" for v in first["random"]))
    print(f"{'oracle':<28} " + " ".join(f"{v:<8.4f}" for v in first["oracle"]))
    print(f"majority vote on the final answer (n=4): {majority:.4f}")
    record(f"gsm8k-ensemble-{model}", f"Best-of-N on GSM8K picked by one proxy, an ensemble and its conservative "
           f"aggregates: {model}", args, results, table(results, first["n"]))


def table(results: dict, ns: list[int]) -> dict:
    """Each selector's gold accuracy among n = 1..4 candidates, then random, oracle and majority."""
    rows = [[name, *(fmt(v, 4) for v in curve)] for name, curve in results["curves"].items()]
    rows += [[name, *(fmt(v, 4) for v in results[name])] for name in ("random", "oracle")]
    rows.append(["majority vote (n=4)", *[""] * (len(ns) - 1), fmt(results["majority_vote"], 4)])
    return {"columns": ["selector", *(f"n={n}" for n in ns)], "rows": rows}


if __name__ == "__main__":
    main()
