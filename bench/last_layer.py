"""What the last-layer pruning (rewardlab/models/last_layer.py) saves, at a cut and at full depth.

    python bench/last_layer.py --layers 4 --layers 30

The same SmolLM2-architecture model (its real weights cut to N layers; random weights give the
same speed), the same HH-RLHF pairs, the shared-prompt forward, with the pruning on and off,
interleaved, medians of --repeats: a training step (forward + backward of --batch pairs) and
scoring (RewardModel.score_groups over --pairs pairs). The pruning computes the last layer's
query and output projections and MLP only at read positions: one layer in N, so the saving
shrinks with depth. Rewards with and without agree within 1e-4 (checked).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rewardlab.data import load_examples  # noqa: E402
from rewardlab.data.encode import encode_examples, example_texts  # noqa: E402
from rewardlab.inference import RewardModel  # noqa: E402
from rewardlab.models import last_layer  # noqa: E402
from rewardlab.models.backbone import disable_dropout, load_backbone  # noqa: E402
from rewardlab.models.heads import completion_rewards, make_batch  # noqa: E402

DATA = Path(os.environ.get("REWARDLAB_SHARED_DATA", ROOT.parent / "shared" / "data")) / "hh-rlhf-harmless" / "pairs.jsonl.gz"


def cut(model, layers: int):
    if layers and layers < model.config.num_hidden_layers:
        model.model.layers = model.model.layers[:layers]
        model.config.num_hidden_layers = layers
        if getattr(model.config, "layer_types", None):
            model.config.layer_types = model.config.layer_types[:layers]
    return model


def measure(layers: int, args) -> dict:
    model, tok = load_backbone("smollm2")
    model = cut(model, layers)
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
    for layers in args.layers or [4, 0]:
        m = measure(layers, args)
        print(f"{m['layers']:>6} | {m['train_on']:.3f} / {m['train_off']:.3f} | "
              f"{1 - m['train_on'] / m['train_off']:+.1%} | {m['score_on']:.3f} / {m['score_off']:.3f} | "
              f"{1 - m['score_on'] / m['score_off']:+.1%} | {m['diff']:.1e}", flush=True)


if __name__ == "__main__":
    main()
