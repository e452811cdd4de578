"""The end of a run, and evaluation during it: the final Hugging Face folder, the eval metrics.

- Full fine-tuning: the gathered weights (whole tensors even under FSDP) as a plain folder.
- LoRA: the adapter (``OUTPUT/adapter``) for reuse, and the merged model as the plain folder;
  QLoRA merges into the full-precision base, not the 4-bit one.
- Evaluation: every process scores its share of the eval examples through the one scorer
  (``rewardlab.evaluate``'s, eval/evaluate.py: no process idles in an all-reduce) and the main
  process computes the kind's metrics; under FSDP the main process evaluates the saved whole
  model instead, after every process freed its shards.
"""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError, ModelSettings, RewardStats
from ..eval.diagnostics import lift_warnings
from ..eval.evaluate import examples_details
from ..inference import RewardModel
from ..models.backbone import hf_model
from ..models.lora import load_adapter, merged_copy, save_adapter
from .checkpoint import gather_state, hf_names


def _scorer(run) -> RewardModel:
    """The model being trained, read as a saved one would be (its settings, the run's options)."""
    return RewardModel(run.hf_model, run.tokenizer, run.max_length, str(run.accelerator.device))


def _details(run, examples: list) -> list:
    """Every process scores its share of ``examples`` (the model's mode is kept); the main
    process gets all of them, in order."""
    was_training = run.hf_model.training
    mine = list(range(run.accelerator.process_index, len(examples), run.world))
    try:
        scored = list(zip(mine, examples_details(_scorer(run), run.kind, [examples[i] for i in mine],
                                                 run.cfg.run.eval_batch_size)))
    finally:
        run.hf_model.train(was_training)
    if run.world > 1:
        from accelerate.utils import gather_object

        scored = sorted(gather_object(scored), key=lambda x: x[0])
    return [d for _, d in scored]


def evaluate_run(run) -> dict | None:
    """Evaluate the model being trained on the eval examples; logs ``eval/*`` and returns the
    metrics on the main process (None elsewhere)."""
    if not run.eval_examples or run.sharded:
        return None
    details = _details(run, run.eval_examples)
    if not run.main:
        return None
    metrics = run.kind.metrics(run.eval_examples, details, run.obj)
    lift_warnings(metrics)
    _log_eval(run, metrics)
    return metrics


def _log_eval(run, metrics: dict) -> None:
    run.log({"step": run.step, **{f"eval/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}})
    for callback in run.callbacks:
        callback.on_evaluate(run, metrics)


def reward_statistics(run) -> dict:
    """Mean and std of the final model's rewards over every training completion (each process
    scores its share), saved with the model so a server can normalise rewards as OpenRLHF's
    ``--normalize_reward`` does."""
    if run.stream is not None or run.sharded:
        raise ConfigError("--reward-stats needs data read whole (not --streaming), and no FSDP")
    details = _details(run, [e for e, _ in run.train_set])
    flat = [d["reward"] for group in details for d in group if d["reward"] is not None]
    mean = sum(flat) / len(flat)
    std = (sum((r - mean) ** 2 for r in flat) / max(len(flat) - 1, 1)) ** 0.5
    inner = hf_model(run.hf_model)
    settings = ModelSettings.of(inner).replace(reward_stats=RewardStats(mean, std, len(flat)))
    inner.config.rewardlab = settings.to_dict()
    return {"reward_mean": mean, "reward_std": std, "reward_stats_n": len(flat)}


def save_final(run) -> dict | None:
    """Write the final model folder; return the final eval metrics (main process) or None."""
    cfg, out = run.cfg, Path(run.cfg.run.output)
    if cfg.run.reward_stats:
        stats = reward_statistics(run)
        run.say(f"reward statistics over {stats['reward_stats_n']} training completions: mean "
                f"{stats['reward_mean']:+.4f}, std {stats['reward_std']:.4f} (saved; serve --normalize)")
    lora = callable(getattr(run.hf_model, "get_base_model", None))
    weights = gather_state(run.model, None, run.sharded)[0] if not lora else {}
    if run.main:
        if lora:
            save_adapter(run.hf_model, run.tokenizer, out / "adapter")
            if cfg.backbone.load_in_4bit:
                full, _, _ = load_adapter(str(out / "adapter"), cfg.backbone.trust_remote_code, full_precision=True)
                full = full.merge_and_unload()
                full.config.rewardlab = dict(run.hf_model.config.rewardlab)
                full.save_pretrained(out, safe_serialization=True)
            else:
                merged_copy(run.hf_model).save_pretrained(out, safe_serialization=True)
        else:
            run.hf_model.save_pretrained(out, state_dict=hf_names(weights), safe_serialization=True)
        run.tokenizer.save_pretrained(out)
        for callback in run.callbacks:
            callback.on_save(run, str(out))
    if not run.sharded:
        return evaluate_run(run)
    # FSDP: free this process's shards and optimizer state before loading the whole model.
    run.model = run.optimizer = run.hf_model = None
    run.accelerator.free_memory()
    final = None
    if run.main and run.eval_examples:
        rm = RewardModel.from_pretrained(str(out))
        details = examples_details(rm, run.kind, run.eval_examples, cfg.run.eval_batch_size)
        final = run.kind.metrics(run.eval_examples, details, run.obj)
        lift_warnings(final)
        _log_eval(run, final)
    run.accelerator.wait_for_everyone()
    return final
