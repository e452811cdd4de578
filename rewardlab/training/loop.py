"""The training loop, for every model kind: setup -> fit -> finish.

One explicit loop on ``accelerate``: multi-process DDP and FSDP are launcher choices (tested
on CPU with gloo). What differs between kinds (rows -> examples, the batch, the forward, the
loss, the metrics, the units the loss is averaged over) comes from the kind module
(rewardlab/kinds/); this file never names a kind.

Exactness rules this loop keeps:
- A step's unit is the example (a prompt with all its completions): a step sees
  ``batch_size * grad_accum * num_processes`` examples, never a part of one.
- Each micro-batch adds ``its summed loss / the units of the whole step`` (pairs, prompts:
  whatever the kind counts), so accumulation is exactly one large batch, even for a short step.
- Data order is a permutation seeded by (seed, epoch) (``--streaming``: a seeded shuffle
  buffer over the file); with the step counter it tells where a resumed run continues, so
  resumed == uninterrupted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import kinds
from ..config import ConfigError, InputArgs, ModelSettings, TrainConfig, default_lr, resume_values, to_dict, validate_train
from ..data.loader import load_examples, usable
from ..data.rows import source_name
from ..errors import DataError
from ..data.stream import ExampleStream
from ..eval.diagnostics import warned
from ..models.backbone import disable_dropout, load_backbone, prepare_backbone
from ..models.lora import apply_lora
from ..models.heads import forward_path
from ..models.attention import pick_attention
from .checkpoint import CtrlC, gather_state, latest_checkpoint, load_checkpoint, save_checkpoint
from .finish import evaluate_run, save_final
from .schedule import epoch_order, lr_at, split_step


@dataclass
class Run:
    """Everything :func:`setup` builds and :func:`fit` / :func:`finish` use."""

    cfg: TrainConfig
    kind: Any
    obj: Any  # the kind's own options (cfg.objective.of(kind))
    accelerator: Any
    model: Any  # the prepared forward module (DDP/FSDP-wrapped)
    hf_model: Any  # the transformers model inside it (peft-wrapped with LoRA)
    tokenizer: Any
    optimizer: Any
    max_length: int
    total: int
    steps_per_epoch: int = 0
    train_set: list = field(default_factory=list)
    stream: ExampleStream | None = None
    eval_examples: list = field(default_factory=list)
    path: str = "padded"  # the training forward: shared (prompt once), packed (encoders) or padded
    sharded: bool = False
    step: int = 0
    counts: Any = None
    empty: int = 0
    log_window: dict = field(default_factory=dict)
    seen: int = 0
    started: float = 0.0
    wall_s: float = 0.0
    order: list = field(default_factory=list)
    order_epoch: int = -1
    saved_at: int = -1
    ctrl_c: Any = None
    callbacks: list = field(default_factory=list)
    stop_requested: bool = False

    def stop(self) -> None:
        """End training after this step (a callback's call): a checkpoint, then the final model and evaluation."""
        self.stop_requested = True

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    def say(self, msg: str) -> None:
        if self.main:
            print(msg, file=sys.stderr, flush=True)

    def log(self, record: dict) -> None:
        if self.main:
            with (Path(self.cfg.run.output) / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(record) + "\n")
        if self.cfg.run.report_to:
            self.accelerator.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])


@dataclass
class Given:
    """What a Python caller hands training besides its config (rewardlab.train): rows in memory
    (a list of dicts, a ``datasets`` Dataset or IterableDataset) instead of ``--data`` /
    ``--eval-data``, a model already loaded (with its tokenizer) instead of ``--model``, a
    ``peft`` config instead of ``--lora-r``, and callbacks (training/callbacks.py)."""

    data: Any = None
    eval_data: Any = None
    model: Any = None
    tokenizer: Any = None
    peft_config: Any = None
    callbacks: list = field(default_factory=list)


def run_training(cfg: TrainConfig, given: Given | None = None) -> dict:
    """setup -> fit -> finish; returns the final metrics (``rewardlab.train`` wraps them)."""
    run = setup(cfg, given or Given())
    fit(run)
    return finish(run)


# ---------------------------------------------------------------- setup

def _accelerator(cfg: TrainConfig):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # accelerate keeps one global state per process; a second run in the same process (a
    # notebook, the tests) may want another precision. The distributed part is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    trackers = [t.strip() for t in cfg.run.report_to.split(",") if t.strip()]
    return Accelerator(log_with=trackers or None, project_dir=cfg.run.output,
                       mixed_precision="bf16" if cfg.backbone.bf16 else "no")


def _optimizer(model, cfg: TrainConfig):
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if p.ndim >= 2], "weight_decay": cfg.optim.weight_decay},
              {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0}]
    try:  # the fused kernel (CPU and GPU, torch >= 2.4) is ~5x faster than the per-tensor loop
        return torch.optim.AdamW(groups, lr=cfg.optim.lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=cfg.optim.lr)


def _check_resume(folder: Path, cfg: TrainConfig, world: int, total: int) -> None:
    """A resumed run must have the settings of the run it continues (fields marked ``resume``)."""
    saved = json.loads((folder / "trainer_state.json").read_text())
    defaults = resume_values(TrainConfig())  # keys a checkpoint of an older version does not have
    changed = [k for k, v in resume_values(cfg).items() if saved["config"].get(k, defaults[k]) != v]
    if saved.get("world", 1) != world:
        changed.append(f"number of processes ({saved.get('world', 1)} -> {world})")
    if saved.get("total_steps", total) != total:
        changed.append(f"number of steps ({saved.get('total_steps')} -> {total}: did the data change?)")
    if changed:
        raise ConfigError(f"--resume: {', '.join(changed)} differ from the checkpointed run; resume with the same settings")


def _load_data(max_length: int, cfg: TrainConfig, kind, obj, tokenizer, say, per_step: int, accelerator,
               given: Given) -> dict:
    """Training items (or a stream), the number of steps, and the evaluation examples."""
    inputs = cfg.inputs
    data = given.data if given.data is not None else inputs.data
    eval_data = given.eval_data if given.eval_data is not None else inputs.eval_data
    check = lambda example, where: kind.check(example, where, obj)  # noqa: E731
    rows = dict(chat=inputs.apply_chat_template, columns=cfg.columns.mapping(), parse=kind.parser(obj))
    # Evaluation takes every row the metrics can use, whatever the loss: all-tied prompts count
    # for tie accuracy and for the best-of-K baselines.
    eval_examples = load_examples(eval_data, tokenizer, inputs.skip_bad_rows, say,
                                  inputs.allow_empty, **rows) if _given(eval_data) else []
    if inputs.streaming:
        stream = ExampleStream(data, tokenizer, max_length, cfg.optim.seed, inputs.shuffle_buffer,
                               inputs.skip_bad_rows, say, inputs.allow_empty, check, **rows,
                               encode=lambda tok, examples, n: kind.encode(tok, examples, n, obj))
        return {"stream": stream, "total": cfg.optim.max_steps, "eval_examples": eval_examples}
    examples = load_examples(data, tokenizer, inputs.skip_bad_rows, say, inputs.allow_empty, **rows)
    if not examples:  # not "no example fits max_length": nothing was left to fit
        raise DataError(f"{source_name(data)}: every row was left out as invalid (the note above says why); none "
                        "left to train on")
    if inputs.eval_split:  # a seeded share of the rows, held out before the loss's own rules apply
        order = list(range(len(examples)))
        random.Random(cfg.optim.seed).shuffle(order)
        held = set(order[:max(1, math.ceil(inputs.eval_split * len(examples)))])
        eval_examples = [e for i, e in enumerate(examples) if i in held]
        examples = [e for i, e in enumerate(examples) if i not in held]
        say(f"note: --eval-split {inputs.eval_split}: {len(eval_examples)} of {len(examples) + len(eval_examples)} "
            "rows held out for evaluation")
    examples = usable(examples, check, data, inputs.skip_bad_rows, say)
    with accelerator.main_process_first() if inputs.tokenized_cache else nullcontext():
        train_set, counts = kind.encode(tokenizer, examples, max_length, obj, inputs.num_proc,
                                        inputs.tokenized_cache)
    for note in counts.notes:
        say(f"note: {note}")
    if (msg := counts.report("training examples", max_length)):
        say(f"note: {msg}")
    if not train_set:
        raise ConfigError(f"{source_name(data)}: no example fits max_length={max_length}")
    steps_per_epoch = math.ceil(len(train_set) / per_step)
    total = steps_per_epoch * cfg.optim.epochs
    if cfg.optim.max_steps > 0:
        total = min(total, cfg.optim.max_steps)
    return {"train_set": train_set, "counts": counts, "total": total, "steps_per_epoch": steps_per_epoch,
            "eval_examples": eval_examples, "empty": sum(e.empty_completions() for e, _ in train_set)}


def _given(data) -> bool:
    """Rows were given: a non-empty path, or rows in memory."""
    return data is not None and (not isinstance(data, str) or bool(data))


def _resume_folder(cfg: TrainConfig) -> Path | None:
    """--resume (the newest checkpoint in --output) or --resume DIR (that checkpoint)."""
    if not cfg.run.resume:
        return None
    if cfg.run.resume != "latest":
        folder = Path(cfg.run.resume)
        if not (folder / "trainer_state.json").exists():
            raise ConfigError(f"--resume {folder}: not a checkpoint folder (no trainer_state.json)")
        newer = latest_checkpoint(cfg.run.output)
        if newer is not None and newer.resolve() != folder.resolve() and \
                int(newer.name.split("-")[1]) > int(folder.name.split("-")[-1]):
            raise ConfigError(f"--resume {folder}: {newer} is newer and would be taken by a later --resume; "
                              "remove it, or resume into another --output")
        return folder
    folder = latest_checkpoint(cfg.run.output)
    if folder is None:
        raise ConfigError(f"--resume: no checkpoint in {Path(cfg.run.output) / 'checkpoints'}")
    return folder


def _checked(cfg: TrainConfig, accelerator) -> tuple[TrainConfig, str, Path | None, bool]:
    """The run's settings checked (one-line errors) and completed: (cfg with its learning rate,
    where that rate comes from, the checkpoint to resume from, whether FSDP shards the model)."""
    from accelerate.utils import DistributedType

    lr_from = "given"
    if not cfg.optim.lr:  # the default for the backbone, or for LoRA
        lr, lr_from = default_lr(cfg.backbone.model, cfg.backbone.lora_r)
        cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=lr))
    resume_from = _resume_folder(cfg)
    if not cfg.run.resume and latest_checkpoint(cfg.run.output) is not None:
        raise ConfigError(f"{cfg.run.output} already has checkpoints: pass --resume to continue, or choose a new "
                          "--output")
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        raise ConfigError("DeepSpeed is not supported by this training loop; shard with FSDP instead "
                          "(accelerate launch --config_file configs/accelerate_fsdp.yaml)")
    sharded = accelerator.distributed_type == DistributedType.FSDP
    if sharded and (cfg.backbone.lora_r or cfg.run.eval_every):
        raise ConfigError("with FSDP, LoRA and --eval-every are not supported yet (the final evaluation runs on "
                          "the saved model)")
    return cfg, lr_from, resume_from, sharded


def _model(cfg: TrainConfig, kind, obj, given: Given) -> tuple[TrainConfig, Any, Any, Any, int]:
    """The backbone with the kind's head (+ LoRA), its settings saved in its config so eval,
    score and serve encode text and read outputs as training did; (cfg, obj, model, tokenizer, max_length)."""
    bb = cfg.backbone
    spec = kind.head(obj, given.data if given.data is not None else cfg.inputs.data)  # per text or per token
    if spec.fixed:  # options the kind found in the data (output names...), fixed from here on
        obj = dataclasses.replace(obj, **spec.fixed)
        cfg = dataclasses.replace(cfg, objective=cfg.objective.replaced(kind.NAME, **spec.fixed))
    if given.model is not None:  # a model the caller loaded, with the head this kind needs
        model, tokenizer = prepare_backbone(given.model, given.tokenizer, spec.head, spec.num_labels, spec.new_tokens,
                                            bb.model)
    else:
        model, tokenizer = load_backbone(bb.model, bb.trust_remote_code, bb.load_in_4bit, spec.head,
                                         spec.num_labels, spec.new_tokens)
    if spec.labels:
        model.config.id2label = dict(enumerate(spec.labels))
        model.config.label2id = {name: i for i, name in enumerate(spec.labels)}
    if spec.fixed_by_model is not None:  # options the kind fixes from the loaded backbone (causal or not...)
        fixed = spec.fixed_by_model(model)
        obj = dataclasses.replace(obj, **fixed)
        cfg = dataclasses.replace(cfg, objective=cfg.objective.replaced(kind.NAME, **fixed))
    if bb.disable_dropout:
        disable_dropout(model)
    max_length = min(cfg.inputs.max_length, getattr(model.config, "max_position_embeddings", None) or 10**9)
    extras = {**spec.extras, **(spec.token_extras(tokenizer) if spec.token_extras is not None else {})}
    # where training started (a folder as an absolute path): an implicit PRM's reference
    backbone = str(Path(bb.model).resolve()) if Path(bb.model).is_dir() else bb.model
    model.config.rewardlab = ModelSettings(
        kind=kind.NAME, objective=dataclasses.asdict(obj), head=spec.head, num_labels=spec.num_labels,
        max_length=max_length, apply_chat_template=cfg.inputs.apply_chat_template, backbone=backbone,
        trust_remote_code=bb.trust_remote_code, ensemble_size=spec.ensemble_size, extras=extras).to_dict()
    if bb.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if bb.lora_r or given.peft_config is not None:
        model = apply_lora(model, bb.lora_r, bb.lora_alpha, bb.lora_dropout, quantized=bb.load_in_4bit,
                           config=given.peft_config)
    return cfg, obj, model, tokenizer, max_length


def _forward_path(model, bb, device) -> str:
    """The training forward (models.heads.forward_path), a kernel that cannot run as a one-line error."""
    try:
        return forward_path(model, bb.shared_prompt, bb.attention, device, bb.bf16)
    except RuntimeError as e:
        raise ConfigError(str(e)) from None


def setup(cfg: TrainConfig, given: Given | None = None) -> Run:
    """Accelerator, backbone (+ LoRA), data, optimizer, resume: everything before the first step."""
    from accelerate.utils import set_seed

    validate_train(cfg)
    kind = kinds.get(cfg.objective.kind)
    obj = kinds.options(kind, cfg.objective)
    accelerator = _accelerator(cfg)
    cfg, lr_from, resume_from, sharded = _checked(cfg, accelerator)
    set_seed(cfg.optim.seed)
    given = given or Given()
    cfg, obj, model, tokenizer, max_length = _model(cfg, kind, obj, given)
    bb = cfg.backbone
    per_step = cfg.optim.batch_size * cfg.optim.grad_accum * accelerator.num_processes
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if accelerator.is_main_process else (lambda msg: None)
    if max_length < cfg.inputs.max_length != InputArgs().max_length:  # a length asked for is capped aloud
        say(f"note: --max-length {cfg.inputs.max_length} is more than the model's {max_length} positions: using "
            f"{max_length}")
    data = _load_data(max_length, cfg, kind, obj, tokenizer, say, per_step, accelerator, given)
    if "train_set" in data:  # before any checkpoint is loaded: the model is still the backbone as it starts
        data["train_set"] = kind.prepare(model, data["train_set"], obj, accelerator.device)
    if resume_from is not None:
        _check_resume(resume_from, cfg, accelerator.num_processes, data["total"])
    path = _forward_path(model, bb, accelerator.device)
    optimizer = _optimizer(model, cfg)
    prepared, optimizer = accelerator.prepare(kind.forward_module(model, bb.attention), optimizer)
    run = Run(cfg, kind, obj, accelerator, prepared, model, tokenizer, optimizer, max_length, path=path,
              sharded=sharded, callbacks=list(given.callbacks), **data)
    if resume_from is not None:  # after prepare: under FSDP each process loads its own shard
        try:
            run.step = load_checkpoint(resume_from, prepared, model, optimizer)["step"]
        except (ValueError, KeyError, OSError, AttributeError, RuntimeError) as e:
            raise ConfigError(f"--resume: cannot use {resume_from}: {str(e).splitlines()[0]}") from None
        run.say(f"resuming from {resume_from} at step {run.step}/{run.total}")
    if cfg.run.report_to:
        accelerator.init_trackers("rewardlab", config=to_dict(cfg))
    Path(cfg.run.output).mkdir(parents=True, exist_ok=True)
    _say_first_line(run, per_step, lr_from)
    return run


def _say_first_line(run: Run, per_step: int, lr_from: str) -> None:
    """What the run will do, on one line: kind, data, steps, batch, lr and where it comes from, forward."""
    cfg, bb, o = run.cfg, run.cfg.backbone, run.cfg.optim
    shown = {"shared": f"shared-prompt ({pick_attention(bb.attention, run.accelerator.device, run.hf_model, bb.bf16)})",
             "packed": "packed padding-free (blocks)", "padded": "padded"}[run.path]
    run.say(f"{bb.model}: {run.kind.describe(run.obj)}; "
            f"{'a stream of' if run.stream else len(run.train_set)} examples, {run.total} steps of {per_step} "
            f"(batch {o.batch_size} x accumulation {o.grad_accum} x {run.world} process{'es' if run.world > 1 else ''}"
            f"{', FSDP' if run.sharded else ''}), lr {o.lr:g} ({lr_from}), max_length={run.max_length}, {shown} forward")
    if run.empty:
        run.say(f"note: kept {run.empty} empty completions (their reward is read right after the prompt)")


# ---------------------------------------------------------------- fit

def checkpoint(run: Run, at: int) -> None:
    if run.saved_at == at:  # a stop right after a periodic save
        return
    run.saved_at = at
    run.accelerator.wait_for_everyone()
    state = gather_state(run.model, run.optimizer, run.sharded)  # every process: FSDP gathers collectively
    if run.main:
        folder = save_checkpoint(run.cfg.run.output, at, run.hf_model, run.tokenizer, state,
                                 {"config": to_dict(run.cfg), "total_steps": run.total, "world": run.world},
                                 keep=run.cfg.run.save_total_limit)
        for callback in run.callbacks:
            callback.on_save(run, str(folder))


def step_items(run: Run, stream_it) -> tuple[list, int]:
    """The examples of the next optimizer step, and its epoch."""
    per_step = run.cfg.optim.batch_size * run.cfg.optim.grad_accum * run.world
    if run.stream is not None:
        return [next(stream_it) for _ in range(per_step)], run.stream.epoch
    epoch, in_epoch = divmod(run.step, run.steps_per_epoch)
    if run.order_epoch != epoch:
        lengths = [max(map(len, g.sequences)) for _, g in run.train_set] if run.cfg.inputs.group_by_length else None
        run.order, run.order_epoch = epoch_order(len(run.train_set), epoch, run.cfg.optim.seed, per_step, lengths), epoch
    return [run.train_set[i] for i in run.order[in_epoch * per_step:(in_epoch + 1) * per_step]], epoch


def train_step(run: Run, items: list) -> dict[str, float]:
    """Forward and backward over this process's micro-batches, then one optimizer step.
    Returns the step's summed loss, units and statistics over all processes, and the stop flag."""
    cfg, kind, acc = run.cfg, run.kind, run.accelerator
    n_units = sum(kind.units(item, run.obj) for item in items)
    micro = split_step(items, cfg.optim.batch_size, acc.process_index, run.world)
    # Every process runs as many micro-batches as the busiest one: under FSDP each forward and
    # backward is a collective. A process short of examples runs one with weight 0.
    n_micro = math.ceil(math.ceil(len(items) / run.world) / cfg.optim.batch_size)
    run.optimizer.zero_grad(set_to_none=True)
    sums = dict.fromkeys(("loss", *kind.STATS), 0.0)
    for i in range(n_micro):
        dummy = i >= len(micro)
        batch = items[:1] if dummy else micro[i]
        inputs = kind.batch(batch, run.tokenizer.pad_token_id, run.path, acc.device)
        with acc.no_sync(run.model) if i < n_micro - 1 else nullcontext():
            loss_sum, stats = kind.loss(run.model(inputs), batch, run.obj)
            # DDP averages gradients over processes, hence the factor world.
            acc.backward(loss_sum * (0.0 if dummy else run.world / max(n_units, 1)))
        if not dummy:
            sums["loss"] += loss_sum.item()
            for k in kind.STATS:
                sums[k] += stats[k]
    grad_norm = float(acc.clip_grad_norm_(run.model.parameters(), cfg.optim.max_grad_norm)) \
        if cfg.optim.max_grad_norm > 0 else None
    lr = lr_at(run.step, run.total, cfg.optim)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    run.optimizer.step()
    sums["stop"] = float(run.ctrl_c.asked)
    if run.world > 1:  # the whole step, not this process's share; and has anyone pressed Ctrl-C?
        keys = list(sums)
        reduced = acc.reduce(torch.tensor([sums[k] for k in keys], device=acc.device), "sum").tolist()
        sums = dict(zip(keys, reduced))
    sums.update(units=float(n_units), examples=float(len(items)), lr=lr, grad_norm=grad_norm)
    return sums


def record(run: Run, sums: dict, epoch: int, bar) -> dict:
    """Progress bar every step; metrics.jsonl every log_every steps. Returns the step's numbers
    (what callbacks get): step, epoch, loss, the kind's statistics, lr, grad_norm."""
    w = run.log_window
    for k in ("loss", "units", *run.kind.STATS):
        w[k] = w.get(k, 0.0) + sums[k]
    run.seen += int(sums["examples"])
    rate = run.seen / max(time.perf_counter() - run.started, 1e-9)
    shown = run.kind.summarize(sums)
    loss = sums["loss"] / max(sums["units"], 1)
    bar.set_postfix(loss=f"{loss:.4f}", **{k: f"{v:.2f}" for k, v in shown.items()}, ex_s=f"{rate:.1f}")
    bar.update(1)
    if run.step % run.cfg.run.log_every == 0 or run.step == run.total:
        run.log({"step": run.step, "epoch": epoch, "loss": w["loss"] / max(w["units"], 1),
                 **run.kind.summarize(w), "lr": sums["lr"], "grad_norm": sums["grad_norm"],
                 "examples_per_s": rate, "elapsed_s": time.perf_counter() - run.started})
        run.log_window = {}
    return {"step": run.step, "epoch": epoch, "loss": loss, **shown, "lr": sums["lr"], "grad_norm": sums["grad_norm"],
            "examples_per_s": rate}


def fit(run: Run) -> None:
    """Optimizer steps until the end of training, Ctrl-C, or a callback's ``run.stop()``."""
    from tqdm.auto import tqdm

    cfg = run.cfg
    bar = tqdm(total=run.total, initial=run.step, disable=not run.main, desc="train", dynamic_ncols=True)
    run.ctrl_c = CtrlC(run.say)
    run.model.train()
    run.started = time.perf_counter()
    stream_it = iter(run.stream) if run.stream is not None else None
    for _ in range(run.step * cfg.optim.batch_size * cfg.optim.grad_accum * run.world if stream_it else 0):
        next(stream_it)  # resume: the stream is deterministic, skip what was trained on
    for callback in run.callbacks:
        callback.on_train_begin(run)
    try:
        while run.step < run.total:
            items, epoch = step_items(run, stream_it)
            sums = train_step(run, items)
            run.step += 1
            logs = record(run, sums, epoch, bar)
            for callback in run.callbacks:
                callback.on_step(run, logs)
            if cfg.run.eval_every and run.step % cfg.run.eval_every == 0 and run.step < run.total:
                evaluate_run(run)
            if run.stop_requested and run.step < run.total:  # a callback ended training: resumable, then finished
                run.say(f"stopped by a callback at step {run.step}/{run.total}")
                checkpoint(run, run.step)
                break
            if cfg.run.save_every and run.step % cfg.run.save_every == 0 and run.step < run.total:
                checkpoint(run, run.step)
            if sums["stop"] > 0 and run.step < run.total:  # every process stops here, after the same step
                run.ctrl_c.at_step_end = True
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        bar.close()
        if run.world > 1 and not run.ctrl_c.at_step_end:  # processes may be mid-step: a collective save could hang
            run.say(f"\nstopped at once at step {run.step}/{run.total}, without a checkpoint (the last one is kept)")
            raise
        checkpoint(run, run.step)
        run.say(f"\ninterrupted at step {run.step}/{run.total}; checkpoint saved. Continue with the same command "
                "plus --resume")
        raise
    finally:
        bar.close()  # also when a step raises: the error line is not redrawn around the bar
        run.ctrl_c.restore()
    run.wall_s = time.perf_counter() - run.started


# ---------------------------------------------------------------- finish

def finish(run: Run) -> dict:
    """Save the final model (a plain Hugging Face folder), evaluate it, write train_results.json."""
    run.accelerator.wait_for_everyone()
    counts = run.stream.counts if run.stream is not None else run.counts
    if run.stream is not None:
        run.empty = run.stream.empty
        if (msg := counts.report("streamed examples", run.max_length)):
            run.say(f"note: {msg}")
    result = {"steps": run.step, "train_examples": len(run.train_set) if run.stream is None else counts.total,
              "wall_s": run.wall_s,
              "examples_per_s": run.seen / run.wall_s if run.wall_s > 0 else 0.0,
              "truncated": counts.truncated, "skipped": counts.skipped, "empty_completions": run.empty}
    final = save_final(run)
    if run.main:
        if final is not None:
            result["eval"] = final
            if run.cfg.backbone.load_in_4bit:
                result["eval_model"] = "the 4-bit base + adapter (OUTPUT/adapter); the merged folder differs by quantisation"
            run.say(warned(run.kind.format_eval(final), final.get("warnings", [])))
        (Path(run.cfg.run.output) / "train_results.json").write_text(json.dumps(result, indent=1))
    for callback in run.callbacks:
        callback.on_train_end(run, result)
    # Leave together, after the model (DDP's reducer holds gloo work) is released: a process
    # that tore down its process group while the other still wrote files aborted once in CI
    # ("terminate called without an active exception").
    run.model = run.optimizer = None
    run.accelerator.free_memory()
    run.accelerator.wait_for_everyone()
    run.accelerator.end_training()
    return result
