"""Training throughput: rewardlab vs TRL's RewardTrainer, same model, data and settings.

    pip install -e '.[bench]'          # TRL
    python bench/train_vs_trl.py --backbone smollm2 --layers 4 --steps 12 --repeats 3
    python bench/train_vs_trl.py --backbone minilm --steps 12 --repeats 3

Both trainers get: the same initial weights (one folder, score head included), the same
tokenizer (with a pad token distinct from EOS), the same HH-RLHF harmless pairs in the same
order (TRL's sampler is made sequential and fed rewardlab's order), batch size, max length
(only pairs that fit, so neither truncates nor drops), fused AdamW with the same learning
rate, no warmup, linear decay, clipping 1.0, dropout off, and the same precision and
gradient checkpointing (fp32 and off unless --bf16 / --gradient-checkpointing; TRL's own
defaults are bf16 and checkpointing on, so they are set explicitly). Runs alternate, each in a fresh process;
the first --warmup steps (default 1) of each run are left out of its timing (warm-up, compilation). Printed: median pairs/s,
tokens/s (real tokens of the chosen + rejected sequences), peak RSS, the ratio, the loss
of both after the same steps, and the token ceiling: tokens TRL processes (padding
included) / tokens rewardlab must process (each prompt once + completions). Recorded in
bench/results/train-vs-trl-BACKBONE-L<layers>.json (bench/harness.py; the real layer count, so
``--layers 0`` on SmolLM2 is L30), with -bf16, -gc, -noshared, -ATTENTION for those variants.
"""

from __future__ import annotations

import argparse
import json
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
from bench.peer_trainer import clock, in_order, report, rewardlab_result, run, trl_inputs  # noqa: E402
from rewardlab.data import load_examples  # noqa: E402
from rewardlab.data.encode import encode_examples  # noqa: E402
from rewardlab.models.backbone import load_backbone  # noqa: E402

DATA = SHARED_DATA / "hh-rlhf-harmless" / "pairs.jsonl.gz"


def prepare(args, work: Path) -> tuple[str, str, dict]:
    """Backbone folder with an initialised score head, and the pairs in visiting order."""
    if args.random_init:  # a config + tokenizer folder, no weights: the same random model for both
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        from rewardlab.models.backbone import ensure_pad_token

        config = AutoConfig.from_pretrained(args.backbone, num_labels=1)
        torch.manual_seed(args.seed)
        model = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(args.backbone)
        ensure_pad_token(tok, model)
    else:
        model, tok = load_backbone(args.backbone)
    layers = cut_layers(model, args.layers)
    torch.manual_seed(0)
    head = model.score if hasattr(model, "score") else model.classifier
    torch.nn.init.normal_(head.weight, std=0.02)
    folder = work / "backbone"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)

    pairs = load_examples(str(DATA), tok, skip_bad=True, allow_empty=False)  # the pairs of earlier runs
    kept, _ = encode_examples(tok, pairs, args.max_length)
    fits = [(p, g) for p, g in kept if not g.truncated]
    n = args.steps * args.batch_size
    if len(fits) < n:
        raise SystemExit(f"only {len(fits)} pairs fit max_length={args.max_length}, need {n}")
    # rewardlab visits pairs in a seeded permutation (train.step_batches); TRL gets that order.
    order = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed)).tolist()
    rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p, _ in fits[:n]]
    data = work / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ordered = work / "pairs_ordered.jsonl"
    ordered.write_text("".join(json.dumps(rows[i]) + "\n" for i in order))

    trl_tokens = ours_tokens = real_tokens = 0
    for s in range(args.steps):
        groups = [fits[i][1].sequences for i in order[s * args.batch_size:(s + 1) * args.batch_size]]
        width = max(len(x) for g in groups for x in g)
        trl_tokens += 2 * len(groups) * width
        from rewardlab.models.layout import common_prefix_length
        ours_tokens += sum(sum(len(x) for x in g) - common_prefix_length(g) for g in groups)
        real_tokens += sum(len(x) for g in groups for x in g)
    stats = {"trl_tokens": trl_tokens, "unique_tokens": ours_tokens, "real_tokens": real_tokens,
             "causal": hasattr(model, "score"), "layers": layers}
    return str(folder), str(data), stats


def worker_rewardlab(args) -> dict:
    from rewardlab.config import TrainConfig
    from rewardlab.training import train

    out = Path(args.work) / f"rl-{time.time_ns()}"
    train(TrainConfig.flat(model=args.folder, data=args.data, output=str(out), batch_size=args.batch_size,
                      max_steps=args.steps, lr=args.lr, warmup_ratio=0.0, max_length=args.max_length,
                      seed=args.seed, save_every=0, log_every=1, shared_prompt=not args.no_shared,
                      bf16=args.bf16, gradient_checkpointing=args.gradient_checkpointing,
                      attention=args.attention))
    return rewardlab_result(out)


def worker_trl(args) -> dict:
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    tok, model, ds = trl_inputs(args.folder, args.ordered, AutoModelForSequenceClassification)
    config = RewardConfig(output_dir=str(Path(args.work) / f"trl-{time.time_ns()}"), per_device_train_batch_size=args.batch_size,
                          max_steps=args.steps, learning_rate=args.lr, lr_scheduler_type="linear", warmup_steps=0,
                          max_grad_norm=1.0, weight_decay=0.0, logging_steps=1, save_strategy="no", report_to=[],
                          max_length=args.max_length, disable_dropout=True, seed=args.seed,
                          use_cpu=not torch.cuda.is_available(),
                          dataloader_num_workers=0, disable_tqdm=True, bf16=args.bf16,
                          gradient_checkpointing=args.gradient_checkpointing, optim="adamw_torch_fused",
                          # TRL appends an EOS string and fails when there is none (BERT): give it [SEP].
                          # Its encoder sequences then end [SEP] [SEP], one token more than rewardlab's.
                          eos_token=None if tok.eos_token else tok.sep_token)
    timer = clock()
    trainer = in_order(RewardTrainer)(model=model, args=config, train_dataset=ds, processing_class=tok,
                                      callbacks=[timer])
    timer.t0 = time.perf_counter()
    trainer.train()
    return {"times": timer.times, "losses": timer.losses}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="smollm2", help="minilm, smollm2 or a folder")
    p.add_argument("--layers", type=int, default=4, help="keep the first N layers of a decoder (0: all)")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-shared", action="store_true", help="rewardlab without the shared-prompt forward")
    p.add_argument("--attention", default="auto", help="rewardlab's shared-prompt kernel: auto, blocks or flex")
    p.add_argument("--also-blocks", action="store_true", help="also time rewardlab with attention=blocks")
    p.add_argument("--warmup", type=int, default=1, help="leading steps left out of the timing (compilation)")
    p.add_argument("--random-init", action="store_true",
                   help="--backbone is a folder with config + tokenizer only: both start from one random init")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for both (TRL's default; fp32 otherwise)")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="for both (TRL's default; off otherwise)")
    p.add_argument("--worker", choices=["rewardlab", "trl"], help=argparse.SUPPRESS)
    p.add_argument("--work", help="folder for the backbone, the pairs and the runs (default: a new temporary one)")
    for hidden in ("folder", "data", "ordered"):
        p.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        import transformers

        transformers.logging.set_verbosity_error()
        report((worker_rewardlab if args.worker == "rewardlab" else worker_trl)(args))
        return

    if not DATA.exists():
        raise SystemExit(f"needs {DATA} (set REWARDLAB_SHARED_DATA)")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rl-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    folder, data, stats = prepare(args, work)
    ordered = str(work / "pairs_ordered.jsonl")
    runs: dict[str, list[dict]] = {"rewardlab": [], "trl": []}
    if args.also_blocks:
        runs["rewardlab[blocks]"] = []
    for r in range(args.repeats):
        for name in runs:
            who, attention = ("rewardlab", "blocks") if name == "rewardlab[blocks]" else (name, args.attention)
            res = run(__file__, who, ["--work", str(work), "--folder", folder, "--data", data, "--ordered", ordered,
                                      "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                                      "--max-length", str(args.max_length), "--lr", str(args.lr),
                                      "--seed", str(args.seed), "--attention", attention]
                      + (["--no-shared"] if args.no_shared else []) + (["--bf16"] if args.bf16 else [])
                      + (["--gradient-checkpointing"] if args.gradient_checkpointing else []))
            t = res["times"]
            w = args.warmup
            timed = t[-1] - t[w - 1]  # steps warmup+1..N
            res["pairs_s"] = (len(t) - w) * args.batch_size / timed
            res["tokens_s"] = stats["real_tokens"] * (len(t) - w) / len(t) / timed
            runs[name].append(res)
            print(f"run {r + 1} {name:9s} {res['pairs_s']:6.2f} pairs/s  peak {res['peak_rss_mb']:6.0f} MB  "
                  f"final loss {res['losses'][-1]:.4f}", flush=True)

    med = {w: {k: statistics.median(x[k] for x in runs[w]) for k in ("pairs_s", "tokens_s", "peak_rss_mb")}
           for w in runs}
    loss = {w: runs[w][0]["losses"] for w in runs}
    print(f"\nprecision {'bf16 autocast' if args.bf16 else 'fp32'}, gradient checkpointing "
          f"{'on' if args.gradient_checkpointing else 'off'}")
    print(f"rewardlab attention: {args.attention}; timing leaves out the first {args.warmup} step(s)")
    print(f"backbone {args.backbone}{f' ({args.layers} layers)' if args.layers and stats['causal'] else ''}, "
          f"{args.steps} steps x {args.batch_size} pairs, max_length {args.max_length}, {args.repeats} runs each, "
          f"torch threads {torch.get_num_threads()}")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"device {device}; peak MB = {'GPU max_memory_allocated' if torch.cuda.is_available() else 'peak RSS'}")
    print(f"{'':18s}{'pairs/s':>10s}{'tokens/s':>10s}{'peak MB':>10s}{'loss@end':>10s}")
    for w in runs:
        print(f"{w:18s}{med[w]['pairs_s']:10.2f}{med[w]['tokens_s']:10.0f}{med[w]['peak_rss_mb']:10.0f}"
              f"{loss[w][-1]:10.4f}")
    print(f"ratio rewardlab/TRL: {med['rewardlab']['pairs_s'] / med['trl']['pairs_s']:.2f}x pairs/s, "
          f"{med['rewardlab']['peak_rss_mb'] / med['trl']['peak_rss_mb']:.2f}x peak memory")
    if args.also_blocks:
        print(f"ratio rewardlab[blocks]/TRL: {med['rewardlab[blocks]']['pairs_s'] / med['trl']['pairs_s']:.2f}x pairs/s")
    n = min(len(loss["rewardlab"]), len(loss["trl"]))
    diffs = [abs(a - b) for a, b in zip(loss["rewardlab"][:n], loss["trl"][:n])]
    print(f"loss per step, max |rewardlab - TRL| over {n} steps: {max(diffs):.2e}")
    if not stats["causal"]:  # an encoder's prompt sees the completion: packing, no prompt sharing
        ceiling = (f"token ceiling: TRL processes {stats['trl_tokens']} tokens (padding included), rewardlab's packed "
                   f"padding-free forward {stats['real_tokens']} (each sequence whole, no padding): "
                   f"{stats['trl_tokens'] / stats['real_tokens']:.2f}x")
    else:
        ceiling = (f"token ceiling: TRL processes {stats['trl_tokens']} tokens (padding included), rewardlab must "
                   f"process {stats['unique_tokens']} (prompt once + completions): "
                   f"{stats['trl_tokens'] / stats['unique_tokens']:.2f}x")
    print(ceiling)

    results = {"runs": runs, "median": med, "loss_max_diff": max(diffs), "tokens": stats,
               "ratio": {w: {"pairs_s": med[w]["pairs_s"] / med["trl"]["pairs_s"],
                             "peak_rss_mb": med[w]["peak_rss_mb"] / med["trl"]["peak_rss_mb"]}
                         for w in runs if w != "trl"}}
    variant = "".join(suffix for on, suffix in ((args.bf16, "-bf16"), (args.gradient_checkpointing, "-gc"),
                                                (args.no_shared, "-noshared"),
                                                (args.attention != "auto", f"-{args.attention}")) if on)
    record(f"train-vs-trl-{Path(args.backbone).name}-L{stats['layers']}{variant}",
           f"Training throughput vs TRL's RewardTrainer: {Path(args.backbone).name}, {stats['layers']} layers",
           args, results, table(results), notes=[
               f"{args.steps} steps x {args.batch_size} pairs, max_length {args.max_length}, "
               f"{'bf16 autocast' if args.bf16 else 'fp32'}, gradient checkpointing "
               f"{'on' if args.gradient_checkpointing else 'off'}; medians of {args.repeats} alternating runs, "
               f"each in a fresh process, the first {args.warmup} step(s) left out of the timing",
               f"loss per step, max |rewardlab - TRL| over {n} steps: {max(diffs):.2e}", ceiling],
           headline=f"Training: {results['ratio']['rewardlab']['pairs_s']:.2f}x TRL's pairs/s at "
                    f"{results['ratio']['rewardlab']['peak_rss_mb']:.2f}x its peak memory, same losses "
                    f"({Path(args.backbone).name}, {stats['layers']} layers, {device})")


def table(results: dict) -> dict:
    """Medians per trainer, then the ratio to TRL (pairs/s and peak memory)."""
    med, loss = results["median"], {w: rs[0]["losses"][-1] for w, rs in results["runs"].items()}
    rows = [[w, f"{m['pairs_s']:.2f}", f"{m['tokens_s']:.0f}", f"{m['peak_rss_mb']:.0f}", f"{loss[w]:.4f}"]
            for w, m in med.items()]
    rows += [[f"ratio {w}/TRL", f"{r['pairs_s']:.2f}x", "", f"{r['peak_rss_mb']:.2f}x", ""]
             for w, r in results["ratio"].items()]
    return {"columns": ["trainer", "pairs/s", "tokens/s", "peak MB", "loss at the end"], "rows": rows}


if __name__ == "__main__":
    main()
