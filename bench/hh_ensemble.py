"""Ensembles, bootstrap heads and weight averaging on real HH-RLHF pairs.

    python bench/hh_ensemble.py [--model minilm] [--train-pairs 1600] [--eval-pairs 400] [--members 3]

The first N pairs of ../shared/data/hh-rlhf-harmless/pairs.jsonl.gz train, the last M evaluate
(the HH recipe: one epoch, batch 8, max_length 512, the model's recommended learning rate).
Trained and measured in one run:

- ``--members`` reward models differing only in ``--seed`` (head initialisation and data order),
  each with its reward statistics (``--reward-stats``);
- their ensemble (``rewardlab ensemble``), evaluated with every aggregation (mean, min,
  mean_minus_std with coef 1);
- one model with ``--heads H`` bootstrap heads on one backbone (an ensemble in one forward);
- the weight average of the members (``rewardlab merge``, WARM).

Printed and written to OUT/results.json (OUT: runs/bench-hh-ensemble-MODEL unless --out says
otherwise) and, with the commit and versions, to bench/results/hh-ensemble-MODEL.json
(bench/harness.py): held-out accuracy and calibration (ECE) of each, the members' mean and best,
the AUROC of the ensemble's spread for a wrong order (0.5: the spread says nothing) with the
accuracy on the most and least certain quarter of pairs, training time, and the baselines
(random 0.5, the longer answer, the shorter answer).
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded

from bench.harness import SHARED_DATA, fmt, record  # noqa: E402
from bench.hh_judge import length_baselines  # noqa: E402  (random, the longer and the shorter answer)
import rewardlab  # noqa: E402
from rewardlab.inference.combine import make_ensemble, merge_models  # noqa: E402

SHARED = SHARED_DATA / "hh-rlhf-harmless"


def train(model: str, data: str, out: Path, seed: int, lr: str, reuse: bool, **options) -> float:
    """Train one model (``rewardlab.train``); its wall time (s), or the saved one with --reuse."""
    done = out / "bench_time.json"
    if reuse and done.exists():
        return json.loads(done.read_text())["train_s"]
    t0 = time.perf_counter()
    rewardlab.train(model=model, data=data, output=str(out), epochs=1, batch_size=8, max_length=512, seed=seed,
                    reward_stats=True, save_every=0, **({"lr": float(lr)} if lr else {}), **options)
    wall = time.perf_counter() - t0
    done.write_text(json.dumps({"train_s": wall}))
    return wall


def evaluate(model: str, data: str) -> dict:
    """What `rewardlab eval --model MODEL --data DATA --json` prints."""
    return rewardlab.evaluate(model, data).metrics


def brief(m: dict) -> dict:
    return {"accuracy": m["accuracy"], "ece": m.get("calibration", {}).get("ece")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="minilm")
    p.add_argument("--train-pairs", type=int, default=1600)
    p.add_argument("--eval-pairs", type=int, default=400)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--heads", type=int, default=5)
    p.add_argument("--lr", default="", help="default: the model's recommended rate (as the CLI)")
    p.add_argument("--out", default="")
    p.add_argument("--reuse", action="store_true", help="keep models already trained in OUT")
    args = p.parse_args()
    path = SHARED / "pairs.jsonl.gz"
    if not path.exists():
        raise SystemExit(f"{path} not found: this benchmark runs on the shared HH-RLHF data")
    rows = [json.loads(x) for x in gzip.open(path, "rt")]
    model = Path(args.model).name  # an alias, or a folder's name
    out = Path(args.out or f"runs/bench-hh-ensemble-{model}")
    out.mkdir(parents=True, exist_ok=True)
    train_rows, eval_rows = rows[:args.train_pairs], rows[-args.eval_pairs:]
    data, heldout = out / "train.jsonl", out / "eval.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in train_rows))
    heldout.write_text("".join(json.dumps(r) + "\n" for r in eval_rows))

    times, results = {}, {"model": args.model, "train_pairs": len(train_rows), "eval_pairs": len(eval_rows),
                          "baselines": length_baselines(eval_rows)}
    members = [out / f"member{s}" for s in range(1, args.members + 1)]
    for s, folder in enumerate(members, 1):
        times[folder.name] = train(args.model, str(data), folder, s, args.lr, args.reuse)
        print(f"{folder.name}: trained in {times[folder.name]:.0f} s", file=sys.stderr, flush=True)
    heads = out / f"heads{args.heads}"
    times[heads.name] = train(args.model, str(data), heads, 1, args.lr, args.reuse, heads=args.heads)
    make_ensemble([str(m) for m in members], str(out / "ensemble"))
    t0 = time.perf_counter()
    merge_models([str(m) for m in members], str(out / "merged"))
    times["merge"] = time.perf_counter() - t0

    results["members"] = {m.name: brief(evaluate(str(m), str(heldout))) for m in members}
    accs = [r["accuracy"] for r in results["members"].values()]
    results["members_mean_accuracy"], results["members_best_accuracy"] = sum(accs) / len(accs), max(accs)
    results["merged"] = brief(evaluate(str(out / "merged"), str(heldout)))
    for name, folder in (("ensemble", out / "ensemble"), (heads.name, heads)):
        t0 = time.perf_counter()
        m = evaluate(str(folder), str(heldout))
        results[name] = {"aggregates": m["aggregates"], "uncertainty": m["uncertainty"],
                         "members": m["members"], "eval_s": round(time.perf_counter() - t0, 1)}
    results["train_s"] = {k: round(v, 1) for k, v in times.items()}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    report(results)
    record(f"hh-ensemble-{model}", f"Ensembles, bootstrap heads and weight averaging on HH-RLHF: {model}", args,
           results, table(results))


def table(r: dict) -> dict:
    """What report() prints: accuracy, ECE and training time of each model and aggregate, the
    spread's AUROC for a wrong order, and the baselines."""
    heads = next(k for k in r if k.startswith("heads"))
    rows = [[name, fmt(m["accuracy"], 4), fmt(m["ece"], 4), f"{r['train_s'][name]:.0f}", ""]
            for name, m in r["members"].items()]
    rows.append(["members: mean / best", f"{r['members_mean_accuracy']:.4f} / {r['members_best_accuracy']:.4f}", "",
                 "", ""])
    for name in ("ensemble", heads):
        spread = fmt(r[name]["uncertainty"]["auroc_spread_for_mistakes"], 4)
        for i, (how, a) in enumerate(r[name]["aggregates"].items()):
            trained = f"{r['train_s'][heads]:.0f}" if name == heads and i == 0 else ""
            rows.append([f"{name} {how}", fmt(a["accuracy"], 4), fmt(a.get("ece"), 4), trained,
                         spread if i == 0 else ""])
    rows.append(["merged (WARM)", fmt(r["merged"]["accuracy"], 4), fmt(r["merged"]["ece"], 4),
                 f"{r['train_s']['merge']:.1f}", ""])
    b = r["baselines"]
    rows += [[name, fmt(b[key], 4), "", "", ""] for name, key in (
        ("random", "random"), ("the longer answer", "longer_answer"), ("the shorter answer", "shorter_answer"))]
    return {"columns": ["model", "accuracy", "ECE", "train s", "spread AUROC for a wrong order"], "rows": rows}


def report(r: dict) -> None:
    b = r["baselines"]
    print(f"\nHH-RLHF harmless, {r['model']}: {r['train_pairs']} pairs train, {r['eval_pairs']} held out")
    print(f"{'model':<34} {'accuracy':>8} {'ECE':>7} {'train s':>8}")
    for name, m in r["members"].items():
        print(f"{name:<34} {m['accuracy']:>8.4f} {m['ece']:>7.4f} {r['train_s'][name]:>8.0f}")
    print(f"{'members: mean / best':<34} {r['members_mean_accuracy']:>8.4f} / {r['members_best_accuracy']:.4f}")
    for name in ("ensemble", *[k for k in r if k.startswith("heads")]):
        for how, a in r[name]["aggregates"].items():
            print(f"{name + ' ' + how:<34} {a['accuracy']:>8.4f} {a['ece']:>7.4f}")
        u = r[name]["uncertainty"]
        # fmt: None where nothing was ranked or nothing was wrong (the AUROC needs both)
        print(f"{name + ' spread':<34} AUROC for a wrong order {fmt(u['auroc_spread_for_mistakes'], 4)}; accuracy on "
              f"the most / least certain quarter {fmt(u['accuracy_most_certain_quarter'], 4)} / "
              f"{fmt(u['accuracy_least_certain_quarter'], 4)}")
    heads = next(k for k in r if k.startswith("heads"))
    print(f"{heads + ' (train)':<34} {'':>8} {'':>7} {r['train_s'][heads]:>8.0f}")
    print(f"{'merged (WARM)':<34} {r['merged']['accuracy']:>8.4f} {r['merged']['ece']:>7.4f} "
          f"{r['train_s']['merge']:>8.1f}")
    print(f"baselines: random {b['random']:.3f}, longer answer {b['longer_answer']:.4f}, shorter answer "
          f"{b['shorter_answer']:.4f}")


if __name__ == "__main__":
    main()
