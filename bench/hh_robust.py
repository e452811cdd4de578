"""Rewards that resist hacking, on real data: plain Bradley-Terry vs ODIN (--disentangle length) vs
RRM (--rrm) vs both, same examples, steps and settings; held-out accuracy and how the reward
follows length, each with a 95% bootstrap interval over the pairs; training time; and RM-Bench's
easy / normal / hard by its own rule, beside the longer- and shorter-answer baselines.

    python bench/hh_robust.py                                     # MiniLM, 1,600 pairs train, last 400 eval
    python bench/hh_robust.py --model smollm2                     # SmolLM2-135M, all 30 layers
    python bench/hh_robust.py --rmbench DIR                       # RM-Bench's official data/ folder

Data: ../shared/data/hh-rlhf-harmless (or $REWARDLAB_SHARED_DATA). Writes OUT/results.json and
bench/results/hh-robust-MODEL.json (bench/harness.py: the numbers, arguments, commit, versions, device).
The table's RM-Bench columns are the plain mean of the files' accuracies; each file's own numbers
are in the result file.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.harness import SHARED_DATA, interval, record  # noqa: E402

import rewardlab  # noqa: E402
from rewardlab.data.text import split_shared_prefix  # noqa: E402
from rewardlab.eval.benchmarks import rmbench  # noqa: E402
from rewardlab.eval.diagnostics import bias_intervals  # noqa: E402

METHODS = {"bt": {}, "odin": {"disentangle": "length"}, "rrm": {"rrm": True},
           "both": {"disentangle": "length", "rrm": True}}


def held_out(model: str, rows: list[dict], path: str) -> dict:
    """Accuracy and the length numbers of the held-out pairs, each with its interval."""
    result = rewardlab.evaluate(model, path)
    pairs = [split_shared_prefix(r["chosen"], r["rejected"])[1:] for r in rows]
    rewards = [[d["reward"] for d in g] for g in result.details]
    return bias_intervals([c for c, _ in pairs], [r for _, r in pairs], [x[0] for x in rewards],
                          [x[1] for x in rewards])


def rm_bench(model: str, folder: str) -> dict:
    """Each RM-Bench file by its own rule: easy, normal, hard, overall."""
    out = {}
    for f in sorted(Path(folder).glob("*_filtered.json")):
        m = rewardlab.evaluate(model, str(f), format="rm-bench").metrics
        out[f.stem] = {k: m[k] for k in ("easy", "normal", "hard", "overall")} | {"n": m["n"]}
    return out


def rm_bench_baselines(folder: str) -> dict:
    """The longer and the shorter answer, by RM-Bench's own rule."""
    out = {}
    for name, sign in (("longer answer", 1.0), ("shorter answer", -1.0)):
        for f in sorted(Path(folder).glob("*_filtered.json")):
            rows = json.loads(f.read_text())
            rewards = [[sign * len(t) for t in r["chosen"] + r["rejected"]] for r in rows]
            m = rmbench.score(rows, rewards, str(f))
            out.setdefault(name, {})[f.stem] = {k: m[k] for k in ("easy", "normal", "hard", "overall")}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="minilm")
    p.add_argument("--train-pairs", type=int, default=1600)
    p.add_argument("--eval-pairs", type=int, default=400)
    p.add_argument("--methods", default="bt,odin,rrm,both")
    p.add_argument("--lr", type=float, default=0.0, help="0: the model's recommended rate (as the CLI)")
    p.add_argument("--rmbench", default="", help="RM-Bench's data/ folder (chat_filtered.json, ...)")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--out", default="")
    p.add_argument("--reuse", action="store_true", help="evaluate the models OUT already holds")
    args = p.parse_args()
    path = SHARED_DATA / "hh-rlhf-harmless" / "pairs.jsonl.gz"
    if not path.exists():
        sys.exit(f"{path} not found: this benchmark runs on the shared HH-RLHF data")
    rows = [json.loads(x) for x in gzip.open(path, "rt")]
    out = Path(args.out or f"runs/bench-hh-robust-{args.model}")
    out.mkdir(parents=True, exist_ok=True)
    train_rows, eval_rows = rows[:args.train_pairs], rows[-args.eval_pairs:]
    heldout = out / "eval.jsonl"
    heldout.write_text("".join(json.dumps(r) + "\n" for r in eval_rows))
    results = {"methods": {}}
    for name in args.methods.split(","):
        folder = out / name
        t0 = time.perf_counter()
        if not (args.reuse and (folder / "config.json").exists()):
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            rewardlab.train(model=args.model, data=train_rows, output=str(folder), epochs=1, batch_size=8,
                            max_length=args.max_length, seed=1, save_every=0, **({"lr": args.lr} if args.lr else {}),
                            **METHODS[name])
        train_s = time.perf_counter() - t0
        entry = {"train_s": round(train_s, 1), "held_out": held_out(str(folder), eval_rows, str(heldout))}
        if args.rmbench:
            entry["rm_bench"] = rm_bench(str(folder), args.rmbench)
        results["methods"][name] = entry
        print(name, json.dumps(entry), flush=True)
    if args.rmbench:
        results["rm_bench_baselines"] = rm_bench_baselines(args.rmbench)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    record(f"hh-robust-{Path(args.model).name}", f"Rewards that resist hacking: {Path(args.model).name} on HH-RLHF",
           args, results, table(results), headline=headline(results, Path(args.model).name))


def headline(results: dict, model: str) -> str:
    """Held-out accuracy and the reward-length correlation, plain BT against ODIN."""
    m = results["methods"]
    if not {"bt", "odin"} <= set(m):
        return ""
    acc = {k: m[k]["held_out"]["accuracy"]["value"] for k in ("bt", "odin")}
    corr = {k: m[k]["held_out"]["reward_length_pearson"]["value"] for k in ("bt", "odin")}
    return (f"Length-robust rewards: ODIN's quality head has reward-length correlation {corr['odin']:+.2f} "
            f"(plain BT {corr['bt']:+.2f}) at held-out accuracy {acc['odin']:.3f} (BT {acc['bt']:.3f}) "
            f"({model}, HH-RLHF)")


def table(results: dict) -> dict:
    """The headline: each method's held-out numbers with intervals, its training time, and RM-Bench
    (mean over the files) beside the length baselines."""
    columns = ["method", "accuracy", "reward-length Pearson", "acc. chosen longer", "acc. chosen shorter",
               "train s"]
    rmb = any("rm_bench" in m for m in results["methods"].values())
    columns += ["RM-Bench easy", "normal", "hard"] if rmb else []

    def mean(files: dict, key: str) -> str:
        return f"{sum(f[key] for f in files.values()) / len(files):.3f}"

    rows = []
    for name, m in results["methods"].items():
        h = m["held_out"]
        row = [name, interval(h["accuracy"]), interval(h["reward_length_pearson"]),
               interval(h["accuracy_chosen_longer"]), interval(h["accuracy_chosen_shorter"]), f"{m['train_s']:.0f}"]
        rows.append(row + ([mean(m["rm_bench"], k) for k in ("easy", "normal", "hard")] if rmb else []))
    for name, files in results.get("rm_bench_baselines", {}).items():
        rows.append([name] + [""] * 5 + [mean(files, k) for k in ("easy", "normal", "hard")])
    return {"columns": columns, "rows": rows}


if __name__ == "__main__":
    main()
