"""The newer benchmarks on their real released files, scored by their own rules, beside baselines.

    python bench/benchmarks_real.py --prmbench DIR --rmb DIR --rewardmath FILE [--out runs/bench-benchmarks]

Two models, both the bundled 22M MiniLM encoder, trained here (or reused from OUT with --reuse):

- ``hh-minilm``: the HH recipe (configs/hh_minilm.yaml: one epoch of the first 1,600 pairs of
  ../shared/data/hh-rlhf-harmless, batch 8, lr 1e-4), a Bradley-Terry reward model;
- ``prm``: a process reward model on ``rewardlab prm-data`` rows from gsm8k/train.jsonl (7,473
  reference solutions, half with one calculator result corrupted), one epoch, batch 32, lr 1e-4.

Benchmark files (from the benchmarks' own GitHub repositories, read where they lie):

- ``--prmbench``: ssmisya/PRMBench ``mr_eval/tasks/prmtest_classified/data`` (the 25 files, 6,216
  rows): the PRM, by PRMScore;
- ``--rmb``: a folder of Zhou-Zoey/RMB-Reward-Model-Benchmark's ``RMB_dataset`` (this run used the
  pairwise and best-of-N files of Helpfulness/Chat/Discussion and Harmlessness/S1): the HH model;
- ``--rewardmath``: kimsh0507/RewardMATH_official ``dataset/benchmark/RewardMATH_direct.json``
  (the released sample: 2 problems x 10 solutions): both models.

Baselines are the benchmark's own rule applied to made-up scores of the same rows: random scores
(the mean over 20 seeds), the longer and the shorter answer (RMB, RewardMATH), every step valid and random step
scores (PRMBench). Published numbers are printed beside, with what they were measured on.
Written to OUT/results.json and, with the commit and versions, to
bench/results/benchmarks-real-MODEL.json (bench/harness.py). ``--model``: another backbone for both.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.harness import SHARED_DATA, fmt, record  # noqa: E402
import rewardlab  # noqa: E402
from rewardlab.data.rows import read_rows  # noqa: E402
from rewardlab.data.steps import write_prm_rows  # noqa: E402
from rewardlab.eval.benchmarks import FORMATS, Render, options, read  # noqa: E402

# What the papers and the benchmarks' own result files publish (fractions), and on what.
PUBLISHED = {
    "prmbench": "Qwen2.5-Math-PRM-7B 0.655, -72B 0.682 (PRMBench's notebook; the whole benchmark)",
    "rmb": "ArmoRM-Llama3-8B 0.646, GPT-4o 0.738 (mean of the four numbers over all 49 scenarios, RM-R1's table)",
    "rewardmath": "ArmoRM-Llama3-8B 0.205, Math-Shepherd (last step) 0.182 (official result files; 483 problems)",
}
SEEDS = 20


def train_models(out: Path, reuse: bool, model: str = "minilm", hh_pairs: int = 1600) -> dict[str, float]:
    """The HH reward model (hh-MODEL) and the GSM8K PRM (``rewardlab.train``); their training times (s)."""
    times = {}
    hh = SHARED_DATA / "hh-rlhf-harmless" / "pairs.jsonl.gz"
    steps = out / "prm_train.jsonl"
    jobs = {f"hh-{Path(model).name}": (str(ROOT / "configs" / "hh_minilm.yaml"),
                                        {"model": model, "data": f"{hh}[:{hh_pairs}]"}),
            "prm": (None, {"model": model, "kind": "prm", "data": str(steps), "epochs": 1, "batch_size": 32,
                           "lr": 1e-4, "max_length": 512})}
    for name, (config, options) in jobs.items():
        done = out / f"{name}.time.json"
        if reuse and done.exists():
            times[name] = json.loads(done.read_text())["train_s"]
            continue
        t0 = time.perf_counter()
        if name == "prm":
            write_prm_rows(str(steps), str(SHARED_DATA / "gsm8k" / "train.jsonl"))
        rewardlab.train(config, output=str(out / name), save_every=0, **options)
        times[name] = time.perf_counter() - t0
        done.write_text(json.dumps({"train_s": times[name]}))
    return times


def baselines(name: str, path: str) -> dict[str, float]:
    """The benchmark's own rule on made-up scores of its rows: random, and its simplest rules."""
    bench = FORMATS[name]
    rows = read_rows(path)
    marker = "\n" if bench.STEPS else None
    groups = [bench.texts(row, rows.where(i, path), Render(None, marker)) for i, row in enumerate(rows)]

    def headline(detail) -> float:
        rewards = [[read(bench, detail(t)) for t in g] for g in groups]
        return bench.score(list(rows), rewards, path, **options(bench))[bench.HEADLINE]

    out = {}
    if marker:  # step scores
        out["every step valid"] = headline(lambda t: {"reward": 1.0, "step_rewards": [1.0] * len(t.ends)})
        draws = []
        for seed in range(SEEDS):
            rng = random.Random(seed)
            draws.append(headline(lambda t: {"reward": 0.0, "step_rewards": [rng.random() for _ in t.ends]}))
        out["random step scores"] = sum(draws) / len(draws)
        return out
    draws = []
    for seed in range(SEEDS):
        rng = random.Random(seed)
        draws.append(headline(lambda t: {"reward": rng.random()}))
    out["random"] = sum(draws) / len(draws)
    out["the longer answer"] = headline(lambda t: {"reward": float(len(t.completion))})
    out["the shorter answer"] = headline(lambda t: {"reward": -float(len(t.completion))})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prmbench", required=True, help="PRMBench's prmtest_classified/data folder")
    p.add_argument("--rmb", required=True, help="a folder (or file) of RMB_dataset")
    p.add_argument("--rewardmath", required=True, help="RewardMATH_direct.json")
    p.add_argument("--out", default="runs/bench-benchmarks")
    p.add_argument("--reuse", action="store_true", help="reuse models trained by an earlier run in --out")
    p.add_argument("--model", default="minilm", help="the backbone of both models (an alias or a folder)")
    p.add_argument("--hh-pairs", type=int, default=1600, help="the first N HH-RLHF pairs train the HH model")
    args = p.parse_args()
    for need in (SHARED_DATA / "hh-rlhf-harmless" / "pairs.jsonl.gz", SHARED_DATA / "gsm8k" / "train.jsonl"):
        if not need.exists():
            sys.exit(f"{need} not found: set REWARDLAB_SHARED_DATA to the folder holding hh-rlhf-harmless/ and gsm8k/")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    times = train_models(out, args.reuse, args.model, args.hh_pairs)
    backbone = Path(args.model).name
    hh, prm = str(out / f"hh-{backbone}"), str(out / "prm")
    plan = [("prmbench", args.prmbench, prm), ("rmb", args.rmb, hh), ("rewardmath", args.rewardmath, hh),
            ("rewardmath", args.rewardmath, prm)]
    results = {"train_s": times, "runs": []}
    for name, data, model in plan:
        t0 = time.perf_counter()
        m = rewardlab.evaluate(model, data, format=name).metrics  # what `rewardlab eval --json` prints
        results["runs"].append({"benchmark": name, "model": Path(model).name, "headline": FORMATS[name].HEADLINE,
                                "number": m[FORMATS[name].HEADLINE], "eval_s": time.perf_counter() - t0,
                                "metrics": m})
        print(json.dumps(results["runs"][-1]), flush=True)
    results["baselines"] = {"prmbench": baselines("prmbench", args.prmbench), "rmb": baselines("rmb", args.rmb),
                            "rewardmath": baselines("rewardmath", args.rewardmath)}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    report(results)
    record(f"benchmarks-real-{backbone}", f"PRMBench, RMB and RewardMATH on their released files: {backbone}", args,
           results, table(results), notes=[f"published, {k}: {v}" for k, v in PUBLISHED.items()])


def table(r: dict) -> dict:
    """Each run's headline number beside the same benchmark's baselines."""
    rows = [[x["benchmark"], x["model"], x["headline"], fmt(x["number"], 4),
             ", ".join(f"{k} {v:.4f}" for k, v in r["baselines"][x["benchmark"]].items())] for x in r["runs"]]
    return {"columns": ["benchmark", "model", "headline", "number", "baselines (the benchmark's own rule)"],
            "rows": rows}


def report(r: dict) -> None:
    print("\nmodels trained in: " + ", ".join(f"{k} {v:.0f} s" for k, v in r["train_s"].items()))
    print(f"{'benchmark':<11} {'model':<10} {'headline':<10} {'number':>7}  eval s")
    for run_ in r["runs"]:
        print(f"{run_['benchmark']:<11} {run_['model']:<10} {run_['headline']:<10} {run_['number']:>7.4f}  "
              f"{run_['eval_s']:.0f}")
    for name, values in r["baselines"].items():
        print(f"{name} baselines: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
        print(f"{name} published: {PUBLISHED[name]}")
    m = next(x["metrics"] for x in r["runs"] if x["benchmark"] == "prmbench")
    print("prmbench groups: " + ", ".join(f"{k} {v:.4f}" for k, v in (m.get("groups") or {}).items()))
    m = next(x["metrics"] for x in r["runs"] if x["benchmark"] == "rmb")
    print("rmb parts: " + ", ".join(f"{k} {m[k]:.4f}" for k in m.get("parts", [])))


if __name__ == "__main__":
    main()
