"""What the last-layer pruning (rewardlab/models/last_layer.py) saves, at a cut and at full depth.

    python bench/last_layer.py --layers 4 --layers 30

The same SmolLM2-architecture model (its real weights cut to N layers; random weights give the
same speed), the same HH-RLHF pairs, the shared-prompt forward, with the pruning on and off,
interleaved, medians of --repeats: a training step (forward + backward of --batch pairs) and
scoring (RewardModel.score_groups over --pairs pairs). The pruning computes the last layer's
query and output projections and MLP only at read positions: one layer in N, so the saving
shrinks with depth. Rewards with and without agree within 1e-4 (checked). Recorded in
bench/results/last-layer-L4-L30.json (bench/harness.py: the real layer counts measured, in order).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.harness import SHARED_DATA, cut_layers, record  # noqa: E402
from rewardlab.data import load_examples  # noqa: E402
from rewardlab.data.encode import encode_examples, example_texts  # noqa: E402
from rewardlab.inference import RewardModel  # noqa: E402
from rewardlab.models import last_layer  # noqa: E402
from rewardlab.models.backbone import disable_dropout, load_backbone  # noqa: E402
from rewardlab.models.heads import completion_rewards, make_batch  # noqa: E402

DATA = SHARED_DATA / "hh-rlhf-harmless" / "pairs.jsonl.gz"


def measure(layers: int, args) -> dict:
    model, tok = load_backbone(args.model)
    cut_layers(model, layers)
    disable_dropout(model)
    torch.manual_seed(0)
    torch.nn.init.normal_(model.score.weight, std=0.02)
    pairs = load_examples(str(DATA), tok, skip_bad=True, allow_empty=False)[: args.pairs]
    items, _ = encode_examples(tok, pairs, 512)
    forward = completion_rewards(model, "blocks")
    rm = RewardModel(model, tok, 512, "cpu")
    groups = [example_texts(p) for p in pairs]
    times = {("train", True): [], ("train", False): [], ("score", True): [], ("score", False): []}
    rewards = {}
    for r in range(args.repeats):
        for on in ((True, False) if r % 2 == 0 else (False, True)):
            last_layer.ENABLED = on
            model.train()
            batch = make_batch([g.sequences for _, g in items[: args.batch]], tok.pad_token_id, "shared", "cpu")
            started = time.perf_counter()
            forward(batch).sum().backward()
            times[("train", on)].append(time.perf_counter() - started)
            model.zero_grad(set_to_none=True)
            model.eval()
            started = time.perf_counter()
            rewards[on], _ = rm.score_groups(groups, 16)
            times[("score", on)].append(time.perf_counter() - started)
    last_layer.ENABLED = True
    diff = max(abs(a - b) for ga, gb in zip(rewards[True], rewards[False]) for a, b in zip(ga, gb))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"layers": model.config.num_hidden_layers, "diff": diff,
            "train_on": med[("train", True)], "train_off": med[("train", False)],
            "score_on": med[("score", True)], "score_off": med[("score", False)]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2", help="the backbone: an alias or a folder (a decoder)")
    p.add_argument("--layers", type=int, action="append", help="decoder layers kept (repeatable; 0: all 30)")
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--batch", type=int, default=8, help="pairs per training step")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    import transformers

    transformers.logging.set_verbosity_error()
    print(f"SmolLM2 architecture, shared-prompt forward (blocks), CPU threads {torch.get_num_threads()}, "
          f"medians of {args.repeats} interleaved runs")
    print("layers | train step on / off (s) | saved | score on / off (s) | saved | max reward diff")
    runs = []
    for layers in args.layers or [4, 0]:
        m = measure(layers, args)
        print(f"{m['layers']:>6} | {m['train_on']:.3f} / {m['train_off']:.3f} | "
              f"{1 - m['train_on'] / m['train_off']:+.1%} | {m['score_on']:.3f} / {m['score_off']:.3f} | "
              f"{1 - m['score_on'] / m['score_off']:+.1%} | {m['diff']:.1e}", flush=True)
        runs.append(m)

    other = [] if args.model == "smollm2" else [Path(args.model).name]  # another backbone: named
    rows = [[str(m["layers"]), f"{m['train_on']:.3f} / {m['train_off']:.3f}",
             f"{1 - m['train_on'] / m['train_off']:+.1%}", f"{m['score_on']:.3f} / {m['score_off']:.3f}",
             f"{1 - m['score_on'] / m['score_off']:+.1%}", f"{m['diff']:.1e}"] for m in runs]
    record("-".join(["last-layer", *other, *(f"L{m['layers']}" for m in runs)]),
           "What computing the last layer only at read positions saves", args, {"runs": runs},
           {"columns": ["layers", "train step on / off (s)", "saved", "score on / off (s)", "saved",
                        "max reward diff"], "rows": rows},
           notes=[f"{Path(args.model).name} architecture, shared-prompt forward (blocks), medians of {args.repeats} "
                  f"interleaved runs; a training step of {args.batch} pairs, scoring of {args.pairs} pairs"])


if __name__ == "__main__":
    main()
