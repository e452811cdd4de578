"""The training loop: batches -> forward -> loss -> backward -> step -> log -> checkpoint.

One explicit loop on ``accelerate``: multi-process DDP and FSDP are launcher choices (tested
on CPU with gloo). Checkpoints and the final model are gathered to full tensors through
torch.distributed.checkpoint's state-dict API, so a sharded run saves the same plain folder.
DeepSpeed is refused with a clear error (its engine owns the optimizer and checkpoints).

Exactness rules this loop keeps:
- An optimizer step sees ``batch_size * grad_accum * num_processes`` pairs. Each micro-batch
  adds ``sum of its pair losses / pairs in the whole step``, so accumulation gives exactly
  the gradient of one large batch, even for a short last step.
- Data order is a permutation seeded by (seed, epoch) (``--streaming``: a seeded shuffle
  buffer over the file); with the step counter it tells where a resumed run continues, so
  resumed == uninterrupted.
- Chosen and rejected completions of a micro-batch run in one forward pass.
"""

from __future__ import annotations

import json
import math
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from .checkpoint import CtrlC, gather_state, hf_names, latest_checkpoint, load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig, to_dict, validate_train
from .data import load_pairs
from .encode import collate, encode_pairs
from .evaluate import format_metrics, pairwise_metrics, score_pairs
from .lora import apply_lora, merged_copy, save_adapter
from .losses import bradley_terry
from .models import compute_rewards, disable_dropout, load_backbone
from .stream import PairStream
from .shared_prompt import build_batch, pick_attention, shared_prompt_rewards, supports_shared_prompt, to_device

# Changing any of these between a run and its resume would silently change the run.
RESUME_KEYS = ("model", "data", "streaming", "shuffle_buffer", "batch_size", "grad_accum", "lr", "epochs", "max_steps", "seed",
               "max_length", "weight_decay", "warmup_ratio", "lr_schedule", "center_rewards_coefficient",
               "lora_r", "lora_alpha", "lora_dropout", "load_in_4bit", "group_by_length", "max_grad_norm", "bf16",
               "disable_dropout")


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warmup, then decay to 0."""
    warmup = math.ceil(cfg.warmup_ratio * total)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    if cfg.lr_schedule == "constant":
        return cfg.lr
    progress = (step - warmup) / max(1, total - warmup)
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr * (1 - progress)


def epoch_order(n_pairs: int, epoch: int, cfg: TrainConfig, per_step: int, lengths: list[int]) -> list[int]:
    """The order pairs are visited in one epoch: a permutation seeded by (seed, epoch).

    With ``group_by_length``, each window of 64 steps is sorted by length and its steps are
    shuffled again, so a step holds pairs of similar length (less padding; the padded
    forward of encoders gains most) while the epoch stays randomly ordered at large scale.
    """
    gen = torch.Generator().manual_seed(cfg.seed + epoch)
    order = torch.randperm(n_pairs, generator=gen).tolist()
    if not cfg.group_by_length:
        return order
    window = per_step * 64
    out: list[int] = []
    for start in range(0, n_pairs, window):
        part = sorted(order[start:start + window], key=lambda i: -lengths[i])
        steps = [part[i:i + per_step] for i in range(0, len(part), per_step)]
        full = [k for k in range(len(steps)) if len(steps[k]) == per_step]
        order_k = [full[k] for k in torch.randperm(len(full), generator=gen).tolist()]
        order_k += [k for k in range(len(steps)) if len(steps[k]) < per_step]  # a short step stays last
        out += [i for k in order_k for i in steps[k]]
    return out


def split_step(items: list, cfg: TrainConfig, rank: int, world: int) -> list[list]:
    """This process's share of one optimizer step's pairs, as micro-batches."""
    mine = items[rank::world]
    return [mine[i:i + cfg.batch_size] for i in range(0, len(mine), cfg.batch_size)]


class PairRewards(nn.Module):
    """The forward that DDP wraps: sequences in, one reward per completion out.

    Takes either a shared-prompt batch (see shared_prompt.py) or a plain padded batch.
    """

    def __init__(self, model: nn.Module, attention: str = "auto"):
        super().__init__()
        self.model, self.attention = model, attention
        # FSDP's transformer-based wrapping looks for the layer classes here.
        self._no_split_modules = getattr(model, "_no_split_modules", None)

    def forward(self, batch: dict) -> torch.Tensor:
        if "reward_rows" in batch:
            return shared_prompt_rewards(self.model, batch, self.attention)
        return compute_rewards(self.model, batch["input_ids"], batch["attention_mask"])


def make_batch(groups: list[list[list[int]]], pad_id: int, shared: bool, device) -> dict:
    """Micro-batch tensors; rewards come back as [g0 c0, g0 c1, ..., g1 c0, ...] either way."""
    if shared:
        batch = build_batch(groups, pad_id)
    else:
        k = len(groups[0])
        batch = collate([g[i] for g in groups for i in range(k)], pad_id)
    return to_device(batch, device)


def eval_saved(out: Path, eval_pairs: list, max_length: int, cfg: TrainConfig, main: bool) -> dict | None:
    """Sharded (FSDP) runs: the main process evaluates the saved, whole model."""
    if not eval_pairs or not main:
        return None
    from .models import RewardModel

    rm = RewardModel.from_pretrained(str(out))
    chosen, rejected, _ = score_pairs(rm.model, rm.tokenizer, eval_pairs, max_length, cfg.eval_batch_size)
    return pairwise_metrics(chosen, rejected, [p.subset for p in eval_pairs])


def train(cfg: TrainConfig) -> dict:
    """Train a Bradley-Terry reward model; returns the final metrics. See module doc."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, set_seed
    from tqdm.auto import tqdm

    validate_train(cfg)
    trackers = [t.strip() for t in cfg.report_to.split(",") if t.strip()]
    # accelerate keeps one global state per process; a second run in the same process (a
    # notebook, the tests) may want another precision. The distributed part is kept.
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(log_with=trackers or None, project_dir=cfg.output,
                              mixed_precision="bf16" if cfg.bf16 else "no")
    main = accelerator.is_main_process
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if main else (lambda msg: None)
    out = Path(cfg.output)
    resume_from = latest_checkpoint(cfg.output) if cfg.resume else None
    if cfg.resume and resume_from is None:
        raise ConfigError(f"--resume: no checkpoint in {out / 'checkpoints'}")
    if not cfg.resume and latest_checkpoint(cfg.output) is not None:
        raise ConfigError(f"{out} already has checkpoints: pass --resume to continue, or choose a new --output")

    set_seed(cfg.seed)
    model, tokenizer = load_backbone(cfg.model, cfg.trust_remote_code, cfg.load_in_4bit)
    if cfg.disable_dropout:
        disable_dropout(model)
    max_length = min(cfg.max_length, getattr(model.config, "max_position_embeddings", None) or cfg.max_length)
    model.config.rewardlab = {"max_length": max_length}
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.lora_r:
        model = apply_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, quantized=cfg.load_in_4bit)

    world, rank = accelerator.num_processes, accelerator.process_index
    per_step = cfg.batch_size * cfg.grad_accum * world
    stream, train_set = None, []
    if cfg.streaming:
        stream = PairStream(cfg.data, tokenizer, max_length, cfg.seed, cfg.shuffle_buffer, cfg.skip_bad_rows, say)
        steps_per_epoch, total = 0, cfg.max_steps
    else:
        pairs = load_pairs(cfg.data, tokenizer, cfg.skip_bad_rows, say)
        # With a cache, the main process writes it first and the others read it.
        with accelerator.main_process_first() if cfg.tokenized_cache else nullcontext():
            train_set, counts = encode_pairs(tokenizer, pairs, max_length, cfg.num_proc, cfg.tokenized_cache)
        if (msg := counts.report("training pairs", max_length)):
            say(f"note: {msg}")
        if not train_set:
            raise ConfigError(f"{cfg.data}: no pair fits max_length={max_length}")
        steps_per_epoch = math.ceil(len(train_set) / per_step)
        total = steps_per_epoch * cfg.epochs
        if cfg.max_steps > 0:
            total = min(total, cfg.max_steps)
    eval_pairs = load_pairs(cfg.eval_data, tokenizer, cfg.skip_bad_rows, say) if cfg.eval_data else []


    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused kernel (CPU and GPU, torch >= 2.4) is ~5x faster than the per-tensor loop
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    step = 0
    if resume_from is not None:
        saved = json.loads((resume_from / "trainer_state.json").read_text())
        changed = [k for k in RESUME_KEYS if saved["config"].get(k) != getattr(cfg, k)]
        if saved.get("world", 1) != world:
            changed.append(f"number of processes ({saved.get('world', 1)} -> {world})")
        if saved.get("total_steps", total) != total:
            changed.append(f"number of steps ({saved.get('total_steps')} -> {total}: did the data change?)")
        if changed:
            raise ConfigError(f"--resume: {', '.join(changed)} differ from the checkpointed run; "
                              "resume with the same settings")
    sharded = accelerator.distributed_type == DistributedType.FSDP
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        raise ConfigError("DeepSpeed is not supported by this training loop; shard with FSDP instead "
                          "(accelerate launch --config_file configs/accelerate_fsdp.yaml)")
    if sharded and (cfg.lora_r or cfg.eval_every):
        raise ConfigError("with FSDP, LoRA and --eval-every are not supported yet (the final evaluation runs on "
                          "the saved model)")
    try:
        shared = cfg.shared_prompt and supports_shared_prompt(model, cfg.attention, accelerator.device, cfg.bf16)
    except RuntimeError as e:
        raise ConfigError(str(e)) from None
    hf_model = model
    model, optimizer = accelerator.prepare(PairRewards(model, cfg.attention), optimizer)
    if resume_from is not None:  # after prepare: under FSDP each process loads its own shard
        try:
            meta = load_checkpoint(resume_from, model, hf_model, optimizer)
        except (ValueError, KeyError, OSError, AttributeError, RuntimeError) as e:
            raise ConfigError(f"--resume: cannot use {resume_from}: {str(e).splitlines()[0]}") from None
        step = meta["step"]
        say(f"resuming from {resume_from} at step {step}/{total}")
    if trackers:
        accelerator.init_trackers("rewardlab", config=to_dict(cfg))

    saved_at = [-1]

    def checkpoint(at: int) -> None:
        if saved_at[0] == at:  # a stop right after a periodic save
            return
        saved_at[0] = at
        accelerator.wait_for_everyone()
        state = gather_state(model, optimizer, sharded)  # every process: FSDP gathers collectively
        if main:
            save_checkpoint(cfg.output, at, hf_model, tokenizer, state,
                            {"config": to_dict(cfg), "total_steps": total, "world": world})

    def run_eval(at: int) -> dict | None:
        """Every process scores its share of the eval pairs (so none waits long in an
        all-reduce); the main process computes the metrics."""
        if not eval_pairs or sharded:
            return None
        mine = eval_pairs[rank::world]
        chosen, rejected, _ = score_pairs(hf_model, tokenizer, mine, max_length, cfg.eval_batch_size)
        scored = list(zip(chosen, rejected, [p.subset for p in mine]))
        if world > 1:
            from accelerate.utils import gather_object

            scored = gather_object(scored)
        if not main:
            return None
        metrics = pairwise_metrics([c for c, _, _ in scored], [r for _, r, _ in scored], [s for _, _, s in scored])
        log({"step": at, **{f"eval/{k}": v for k, v in metrics.items() if k != "subsets"}})
        return metrics

    metrics_file = out / "metrics.jsonl"

    def log(record: dict) -> None:
        if main:
            with metrics_file.open("a") as f:
                f.write(json.dumps(record) + "\n")
        if trackers:
            accelerator.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])

    out.mkdir(parents=True, exist_ok=True)
    say(f"training on {'a stream of' if stream else len(train_set)} pairs, {total} steps of {cfg.batch_size * cfg.grad_accum * world} pairs "
        f"({world} process{'es' if world > 1 else ''}{', FSDP' if sharded else ''}), max_length={max_length}, "
        f"{'shared-prompt (' + pick_attention(cfg.attention, accelerator.device, hf_model, cfg.bf16) + ')' if shared else 'padded'} forward")
    bar = tqdm(total=total, initial=step, disable=not main, desc="train", dynamic_ncols=True)
    ctrl_c = CtrlC(say)
    model.train()
    window = {"loss": 0.0, "acc": 0.0, "pairs": 0, "t0": time.perf_counter()}
    started, pairs_seen = time.perf_counter(), 0
    lengths = [max(len(s) for s in g.sequences) for _, g in train_set]
    order, order_epoch = [], -1
    if stream is not None:
        stream_it = iter(stream)
        for _ in range(step * per_step):  # resume: the stream is deterministic, skip what was trained on
            next(stream_it)
    try:
        while step < total:
            if stream is not None:
                items = [next(stream_it) for _ in range(per_step)]
                epoch = stream.epoch
            else:
                epoch, in_epoch = divmod(step, steps_per_epoch)
                if order_epoch != epoch:
                    order, order_epoch = epoch_order(len(train_set), epoch, cfg, per_step, lengths), epoch
                items = [train_set[i] for i in order[in_epoch * per_step:(in_epoch + 1) * per_step]]
            micro_batches, n_step = split_step(items, cfg, rank, world), len(items)
            optimizer.zero_grad(set_to_none=True)
            step_loss = step_right = 0.0
            # A process left without pairs (a short last step) still joins the gradient
            # all-reduce: it runs one pair with weight 0.
            dummy = not micro_batches
            for i, batch in enumerate(micro_batches or [items[:1]]):
                inputs = make_batch([g.sequences for _, g in batch], tokenizer.pad_token_id, shared,
                                    accelerator.device)
                margin = torch.tensor([p.margin for p, _ in batch], device=accelerator.device)
                sync = i == max(1, len(micro_batches)) - 1
                with accelerator.no_sync(model) if not sync else nullcontext():
                    rewards = model(inputs).view(len(batch), 2)
                    chosen, rejected = rewards[:, 0], rewards[:, 1]
                    loss_sum, m = bradley_terry(chosen, rejected, margin, cfg.center_rewards_coefficient,
                                                reduction="sum")
                    # DDP averages gradients over processes, hence the factor world.
                    accelerator.backward(loss_sum * (0.0 if dummy else world / n_step))
                if not dummy:
                    step_loss += loss_sum.item()
                    step_right += m["accuracy"] * len(batch)
            grad_norm = None
            if cfg.max_grad_norm > 0:
                grad_norm = float(accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm))
            lr = lr_at(step, total, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            step += 1
            stop_now = ctrl_c.asked
            if world > 1:  # the loss of the whole step, not of this process's share; and has anyone pressed Ctrl-C?
                totals = accelerator.reduce(torch.tensor([step_loss, step_right, float(stop_now)],
                                                         device=accelerator.device), "sum")
                step_loss, step_right, stops = totals.tolist()
                stop_now = stops > 0
            n_pairs = n_step
            pairs_seen += n_step
            window["loss"] += step_loss
            window["acc"] += step_right
            window["pairs"] += n_pairs
            rate = pairs_seen / (time.perf_counter() - started)
            bar.set_postfix(loss=f"{step_loss / max(1, n_pairs):.4f}", acc=f"{step_right / max(1, n_pairs):.2f}",
                            pairs_s=f"{rate:.1f}")
            bar.update(1)
            if step % cfg.log_every == 0 or step == total:
                log({"step": step, "epoch": epoch, "loss": window["loss"] / window["pairs"],
                     "accuracy": window["acc"] / window["pairs"], "lr": lr, "grad_norm": grad_norm,
                     "pairs_per_s": rate, "elapsed_s": time.perf_counter() - started})
                window.update(loss=0.0, acc=0.0, pairs=0)
            if cfg.eval_every and step % cfg.eval_every == 0 and step < total:
                run_eval(step)
            if cfg.save_every and step % cfg.save_every == 0 and step < total:
                checkpoint(step)
            if stop_now and step < total:  # every process stops here, after the same step
                ctrl_c.at_step_end = True
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        bar.close()
        if world > 1 and not ctrl_c.at_step_end:  # processes may be mid-step: a collective save could hang
            say(f"\nstopped at once at step {step}/{total}, without a checkpoint (the last one is kept)")
            raise
        checkpoint(step)
        say(f"\ninterrupted at step {step}/{total}; checkpoint saved. Continue with the same command plus --resume")
        raise
    finally:
        ctrl_c.restore()
    bar.close()
    elapsed = time.perf_counter() - started
    accelerator.wait_for_everyone()
    if stream is not None:
        counts = stream.counts
        if (msg := counts.report("streamed pairs", max_length)):
            say(f"note: {msg}")
    result = {"steps": step, "train_pairs": counts.total if stream is not None else len(train_set), "wall_s": elapsed,
              "pairs_per_s": pairs_seen / elapsed if elapsed > 0 else 0.0,
              "truncated": counts.truncated, "skipped": counts.skipped}
    weights = gather_state(model, None, sharded)[0] if not cfg.lora_r else {}
    if main:
        if cfg.lora_r:  # the adapter for reuse, and the merged model as the plain HF output
            save_adapter(hf_model, tokenizer, out / "adapter")
            if cfg.load_in_4bit:  # QLoRA: merge into the full-precision base, not the 4-bit one
                from .lora import load_adapter

                full, _, _ = load_adapter(str(out / "adapter"), cfg.trust_remote_code, full_precision=True)
                full = full.merge_and_unload()
                full.config.rewardlab = {"max_length": max_length}
                full.save_pretrained(out, safe_serialization=True)
            else:
                merged_copy(hf_model).save_pretrained(out, safe_serialization=True)
        else:
            hf_model.save_pretrained(out, state_dict=hf_names(weights), safe_serialization=True)
        tokenizer.save_pretrained(out)
    if sharded:  # free this process's shards and optimizer state before loading the whole model
        model = optimizer = hf_model = None
        accelerator.free_memory()
        final = eval_saved(out, eval_pairs, max_length, cfg, main)
        if final is not None:
            log({"step": step, **{f"eval/{k}": v for k, v in final.items() if k != "subsets"}})
        accelerator.wait_for_everyone()
    else:
        final = run_eval(step)
    if main:
        if final is not None:
            result["eval"] = final
            if cfg.load_in_4bit:
                result["eval_model"] = "the 4-bit base + adapter (OUTPUT/adapter); the merged folder differs by quantisation"
            say(format_metrics(final))
        (out / "train_results.json").write_text(json.dumps(result, indent=1))
    accelerator.end_training()
    return result
