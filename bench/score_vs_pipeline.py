"""Scoring throughput: rewardlab vs a plain transformers text-classification pipeline.

    python bench/score_vs_pipeline.py --backbone smollm2 --layers 4 --pairs 200 --repeats 3

Same model folder, same texts (the chosen and rejected replies of HH-RLHF harmless pairs,
each as prompt + completion + EOS), fp32, no gradients. The pipeline runs with
batch_size=16 as users typically call it; rewardlab scores the rows the way
``rewardlab score`` does (length-sorted, token-budget batches; the two replies of a pair
share one prompt encoding on causal backbones). Runs alternate; medians are printed with
the ratio and the largest difference between the two sets of rewards. Recorded in
bench/results/score-vs-pipeline-BACKBONE-L<layers>.json (bench/harness.py; the real layer count).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.harness import SHARED_DATA, cut_layers, record  # noqa: E402
from rewardlab.data import load_examples  # noqa: E402
from rewardlab.inference.rows import score_rows  # noqa: E402
from rewardlab.inference import RewardModel  # noqa: E402
from rewardlab.models.backbone import load_backbone  # noqa: E402

DATA = SHARED_DATA / "hh-rlhf-harmless" / "pairs.jsonl.gz"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="smollm2")
    p.add_argument("--layers", type=int, default=4, help="keep the first N decoder layers (0: all)")
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work", help="folder for the model (default: a new temporary one)")
    args = p.parse_args()
    import transformers
    from transformers import pipeline

    transformers.logging.set_verbosity_error()
    model, tok = load_backbone(args.backbone)
    layers = cut_layers(model, args.layers)
    torch.manual_seed(0)
    folder = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rl-score-bench-"))
    RewardModel(model, tok, max_length=512).save_pretrained(str(folder))

    pairs = load_examples(str(DATA), tok, skip_bad=True, allow_empty=False)[: args.pairs]
    rows = [{"prompt": x.prompt, "chosen": x.chosen, "rejected": x.rejected} for x in pairs]
    texts = [x.prompt + c + (tok.eos_token or "") for x in pairs for c in (x.chosen, x.rejected)]
    rm = RewardModel.from_pretrained(str(folder), device="cpu")
    pipe = pipeline("text-classification", model=str(folder), device=-1, function_to_apply="none",
                    truncation=True, max_length=512)
    times: dict[str, list[float]] = {"rewardlab": [], "pipeline": []}
    ours = theirs = None
    for _ in range(args.repeats):
        t = time.perf_counter()
        scored, _ = score_rows(rm, rows, "hh")
        times["rewardlab"].append(time.perf_counter() - t)
        ours = [r for row in scored for r in (row["chosen_reward"], row["rejected_reward"])]
        t = time.perf_counter()
        out = pipe(texts, batch_size=16)
        times["pipeline"].append(time.perf_counter() - t)
        theirs = [o["score"] for o in out]
    n = len(texts)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"backbone {args.backbone}{f' ({args.layers} layers)' if args.layers else ''}, {n} texts "
          f"({len(rows)} pairs), {args.repeats} runs each, torch threads {torch.get_num_threads()}")
    for k in ("rewardlab", "pipeline"):
        print(f"{k:10s} median {med[k]:7.2f} s  {n / med[k]:7.1f} texts/s")
    fits = [len(tok(t)["input_ids"]) <= 512 for t in texts]
    diff = max(abs(a - b) for a, b, f in zip(ours, theirs, fits) if f)
    print(f"ratio: {med['pipeline'] / med['rewardlab']:.2f}x faster; max |reward difference| {diff:.2e} over the "
          f"{sum(fits)} texts within 512 tokens (the pipeline cuts longer ones from the right, losing the EOS where "
          f"the reward is read; rewardlab cuts the prompt from the left)")

    ratio = med["pipeline"] / med["rewardlab"]
    results = {"texts": n, "pairs": len(rows), "layers": layers, "times_s": times, "median_s": med, "ratio": ratio,
               "max_reward_diff": diff, "texts_within_512": sum(fits)}
    table_rows = [[k, f"{med[k]:.2f}", f"{n / med[k]:.1f}"] for k in ("rewardlab", "pipeline")]
    table_rows.append(["ratio pipeline / rewardlab (time)", f"{ratio:.2f}x", ""])
    name = Path(args.backbone).name
    record(f"score-vs-pipeline-{name}-L{layers}", f"Scoring vs transformers' text-classification pipeline: {name}, "
           f"{layers} layers", args, results, {"columns": ["scorer", "median s", "texts/s"], "rows": table_rows},
           notes=[f"{n} texts ({len(rows)} HH-RLHF pairs), fp32, medians of {args.repeats} alternating runs; max "
                  f"|reward difference| {diff:.2e} over the {sum(fits)} texts within 512 tokens"],
           headline=f"Scoring: {ratio:.2f}x faster than transformers' pipeline, rewards equal within {diff:.1e} "
                    f"({name}, {layers} layers)")


if __name__ == "__main__":
    main()
