"""Generative-verifier training throughput: rewardlab's ``--kind genrm`` vs TRL's SFTTrainer on the
same verdict-formatted tokens (the nearest peer path: TRL has no verifier trainer).

    pip install -e '.[bench]'          # TRL
    python bench/genrm_vs_trl_sft.py --layers 4 --steps 12 --repeats 3
    python bench/genrm_vs_trl_sft.py --layers 0 --steps 6 --repeats 3      # all 30 layers of SmolLM2-135M

Both trainers get the same initial weights (SmolLM2-135M-Instruct, cut to --layers), the same
token sequences (rewardlab's encoding of GSM8K model solutions: question, solution, then "Is the
answer correct (Yes/No)?"), the same order, batch size and loss: the next-token cross-entropy of
the verdict (" Yes" for a correct solution, " No" otherwise), its mean over the batch. TRL gets the
sequences pre-tokenized with the verdict as the only completion token (``labels`` -100 elsewhere,
``completion_mask``, ``skip_prepare_dataset``), so it adds no EOS and trains exactly those positions. fp32, fused
AdamW, same learning rate, no warmup, linear decay, clipping 1.0, dropout off, no gradient
checkpointing. Runs alternate, each in a fresh process; the first --warmup steps are left out of
the timing. Printed: median examples/s, peak RSS, the ratio and both losses per step. Recorded in
bench/results/genrm-vs-trl-sft-BACKBONE-L<layers>.json (bench/harness.py; the real layer count).
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

DATA = SHARED_DATA / "gsm8k" / "model_solutions.jsonl.gz"


def prepare(args, work: Path) -> tuple[str, str, str, int]:
    """The cut backbone folder, rewardlab's rows in visiting order, TRL's tokenized rows, and the
    layers kept."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardlab.data.gsm8k import solution_rows
    from rewardlab.kinds import genrm
    from rewardlab.models.backbone import resolve

    path = resolve(args.backbone)
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    layers = cut_layers(model, args.layers)
    folder = work / "backbone"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)

    n = args.steps * args.batch_size
    rows = [{"prompt": r["prompt"], "completion": r["completion"], "label": r["label"]}
            for r in solution_rows(str(DATA))[:n]]
    obj = genrm.Options()
    parse = genrm.parser(obj)
    points = [parse(r, tok, f"row {i}", i + 1) for i, r in enumerate(rows)]
    items, counts = genrm.encode(tok, points, args.max_length, obj)
    if len(items) < n:
        raise SystemExit(f"only {len(items)} of {n} solutions fit max_length={args.max_length}")
    # rewardlab visits rows in a seeded permutation (its step batches); TRL gets that order.
    order = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed)).tolist()
    data = work / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    trl_rows = []
    for i in order:
        p, enc = items[i]
        ids = enc.sequences[0][:enc.reads[0][-1] + 1]  # up to the question's last token, where the verdict is read
        verdict = p.target.yes if p.target.label >= 0.5 else p.target.no
        trl_rows.append({"input_ids": ids + [verdict], "completion_mask": [0] * len(ids) + [1],
                         "labels": [-100] * len(ids) + [verdict]})
    tokenized = work / "trl_rows.jsonl"
    tokenized.write_text("".join(json.dumps(r) + "\n" for r in trl_rows))
    return str(folder), str(data), str(tokenized), layers


def worker_rewardlab(args) -> dict:
    from rewardlab.config import TrainConfig
    from rewardlab.training import train

    out = Path(args.work) / f"rl-{time.time_ns()}"
    train(TrainConfig.flat(kind="genrm", model=args.folder, data=args.data, output=str(out),
                           batch_size=args.batch_size, max_steps=args.steps, lr=args.lr, warmup_ratio=0.0,
                           max_length=args.max_length, seed=args.seed, save_every=0, log_every=1))
    return rewardlab_result(out)


def worker_trl(args) -> dict:
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    tok, model, ds = trl_inputs(args.folder, args.ordered, AutoModelForCausalLM)
    config = SFTConfig(output_dir=str(Path(args.work) / f"trl-{time.time_ns()}"),
                       per_device_train_batch_size=args.batch_size, max_steps=args.steps, learning_rate=args.lr,
                       lr_scheduler_type="linear", warmup_steps=0, max_grad_norm=1.0, weight_decay=0.0,
                       logging_steps=1, save_strategy="no", report_to=[], max_length=args.max_length,
                       seed=args.seed, use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
                       disable_tqdm=True, bf16=False, gradient_checkpointing=False, optim="adamw_torch_fused",
                       completion_only_loss=True, packing=False, dataset_kwargs={"skip_prepare_dataset": True})
    model.config.attention_dropout = 0.0
    timer = clock()
    trainer = in_order(SFTTrainer)(model=model, args=config, train_dataset=ds, processing_class=tok, callbacks=[timer])
    timer.t0 = time.perf_counter()
    trainer.train()
    return {"times": timer.times, "losses": timer.losses}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="smollm2")
    p.add_argument("--layers", type=int, default=4, help="keep the first N layers (0: all 30)")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1, help="leading steps left out of the timing (at least 1)")
    p.add_argument("--worker", choices=["rewardlab", "trl"], help=argparse.SUPPRESS)
    p.add_argument("--work", help="folder for the backbone, the rows and the runs (default: a new temporary one)")
    for hidden in ("folder", "data", "ordered"):
        p.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not 1 <= args.warmup < args.steps:
        p.error("--warmup must be at least 1 and below --steps (the timing runs from the end of a step)")

    if args.worker:
        import transformers

        transformers.logging.set_verbosity_error()
        report((worker_rewardlab if args.worker == "rewardlab" else worker_trl)(args))
        return

    if not DATA.exists():
        raise SystemExit(f"needs {DATA} (set REWARDLAB_SHARED_DATA)")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rl-genrm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    folder, data, ordered, layers = prepare(args, work)
    runs: dict[str, list[dict]] = {"rewardlab": [], "trl": []}
    for r in range(args.repeats):
        for name in runs:
            res = run(__file__, name, ["--work", str(work), "--folder", folder, "--data", data, "--ordered", ordered,
                                       "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                                       "--max-length", str(args.max_length), "--lr", str(args.lr),
                                       "--seed", str(args.seed)])
            t, w = res["times"], args.warmup
            res["examples_s"] = (len(t) - w) * args.batch_size / (t[-1] - t[w - 1])
            runs[name].append(res)
            print(f"run {r + 1} {name:9s} {res['examples_s']:6.2f} examples/s  peak {res['peak_rss_mb']:6.0f} MB  "
                  f"final loss {res['losses'][-1]:.4f}", flush=True)
    med = {w: {k: statistics.median(x[k] for x in runs[w]) for k in ("examples_s", "peak_rss_mb")} for w in runs}
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"\nbackbone {args.backbone} ({args.layers or 'all'} layers), {args.steps} steps x {args.batch_size} "
          f"solutions, max_length {args.max_length}, fp32, {args.repeats} runs each, device {device}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'':12s}{'examples/s':>12s}{'peak MB':>10s}{'loss@end':>10s}")
    for w in runs:
        print(f"{w:12s}{med[w]['examples_s']:12.2f}{med[w]['peak_rss_mb']:10.0f}{runs[w][0]['losses'][-1]:10.4f}")
    print(f"ratio rewardlab/TRL: {med['rewardlab']['examples_s'] / med['trl']['examples_s']:.2f}x examples/s, "
          f"{med['rewardlab']['peak_rss_mb'] / med['trl']['peak_rss_mb']:.2f}x peak memory")
    a, b = runs["rewardlab"][0]["losses"], runs["trl"][0]["losses"]
    n = min(len(a), len(b))
    diff = max(abs(x - y) for x, y in zip(a[:n], b[:n]))
    print(f"loss per step, max |rewardlab - TRL| over {n} steps: {diff:.2e}")

    results = {"runs": runs, "median": med, "layers": layers, "loss_max_diff": diff,
               "ratio": {k: med["rewardlab"][k] / med["trl"][k] for k in ("examples_s", "peak_rss_mb")}}
    name = Path(args.backbone).name
    record(f"genrm-vs-trl-sft-{name}-L{layers}",
           f"Generative-verifier training vs TRL's SFTTrainer: {name}, {layers} layers", args, results, table(results),
           notes=[f"{args.steps} steps x {args.batch_size} GSM8K solutions, max_length {args.max_length}, fp32; "
                  f"medians of {args.repeats} alternating runs, each in a fresh process, the first {args.warmup} "
                  f"step(s) left out of the timing",
                  f"loss per step, max |rewardlab - TRL| over {n} steps: {diff:.2e}"])


def table(results: dict) -> dict:
    """Medians per trainer, then the ratio rewardlab / TRL."""
    med, ratio = results["median"], results["ratio"]
    rows = [[w, f"{m['examples_s']:.2f}", f"{m['peak_rss_mb']:.0f}", f"{results['runs'][w][0]['losses'][-1]:.4f}"]
            for w, m in med.items()]
    rows.append(["ratio rewardlab/TRL", f"{ratio['examples_s']:.2f}x", f"{ratio['peak_rss_mb']:.2f}x", ""])
    return {"columns": ["trainer", "examples/s", "peak MB", "loss at the end"], "rows": rows}


if __name__ == "__main__":
    main()
