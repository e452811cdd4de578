"""The end of a run, and evaluation during it: the final Hugging Face folder, the eval metrics.

- Full fine-tuning: the gathered weights (whole tensors even under FSDP) as a plain folder.
- LoRA: the adapter (``OUTPUT/adapter``) for reuse, and the merged model as the plain folder;
  QLoRA merges into the full-precision base, not the 4-bit one.
- Evaluation: every process scores its share of the eval examples (no process idles in an
  all-reduce) and the main process computes the metrics; under FSDP the main process
  evaluates the saved whole model instead, after every process freed its shards.
"""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError
from ..models.backbone import hf_model
from ..models.lora import load_adapter, merged_copy, save_adapter
from ..inference import RewardModel
from .checkpoint import gather_state, hf_names


def evaluate_run(run) -> dict | None:
    """Evaluate the model being trained on the eval examples; logs ``eval/*`` and returns the
    metrics on the main process (None elsewhere)."""
    if not run.eval_examples or run.sharded:
        return None
    mine = run.eval_examples[run.accelerator.process_index::run.world]
    outputs, _ = run.kind.score(run.hf_model, run.tokenizer, mine, run.max_length, run.cfg.run.eval_batch_size,
                                run.obj) if mine else ([], None)
    scored = list(zip(mine, outputs))
    if run.world > 1:
        from accelerate.utils import gather_object

        scored = gather_object(scored)
    if not run.main:
        return None
    metrics = run.kind.metrics([e for e, _ in scored], [o for _, o in scored], run.obj)
    _log_eval(run, metrics)
    return metrics


def _log_eval(run, metrics: dict) -> None:
    run.log({"step": run.step, **{f"eval/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}})


def reward_statistics(run) -> dict:
    """Mean and std of the final model's rewards over every training completion (each process
    scores its share), saved with the model so a server can normalise rewards as OpenRLHF's
    ``--normalize_reward`` does."""
    if not run.kind.ONE_REWARD_HEAD or run.stream is not None or run.sharded:
        raise ConfigError(f"--reward-stats needs a kind with one reward per completion (not {run.kind.NAME}), data "
                          "read whole (not --streaming), and no FSDP")
    mine = [e for e, _ in run.train_set][run.accelerator.process_index::run.world]
    rewards, _ = run.kind.score(run.hf_model, run.tokenizer, mine, run.max_length, run.cfg.run.eval_batch_size,
                                run.obj) if mine else ([], None)
    flat = [r for group in rewards for r in group]
    if run.world > 1:
        from accelerate.utils import gather_object

        flat = gather_object(flat)
    mean = sum(flat) / len(flat)
    std = (sum((r - mean) ** 2 for r in flat) / max(len(flat) - 1, 1)) ** 0.5
    stats = {"reward_mean": mean, "reward_std": std, "reward_stats_n": len(flat)}
    hf_model(run.hf_model).config.rewardlab.update(stats)
    return stats


def save_final(run) -> dict | None:
    """Write the final model folder; return the final eval metrics (main process) or None."""
    cfg, out = run.cfg, Path(run.cfg.run.output)
    if cfg.run.reward_stats:
        stats = reward_statistics(run)
        run.say(f"reward statistics over {stats['reward_stats_n']} training completions: mean "
                f"{stats['reward_mean']:+.4f}, std {stats['reward_std']:.4f} (saved; serve --normalize)")
    weights = gather_state(run.model, None, run.sharded)[0] if not cfg.backbone.lora_r else {}
    if run.main:
        if cfg.backbone.lora_r:
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
    if not run.sharded:
        return evaluate_run(run)
    # FSDP: free this process's shards and optimizer state before loading the whole model.
    run.model = run.optimizer = run.hf_model = None
    run.accelerator.free_memory()
    final = None
    if run.main and run.eval_examples:
        rm = RewardModel.from_pretrained(str(out))
        outputs, _ = run.kind.score(rm.model, rm.tokenizer, run.eval_examples, run.max_length, cfg.run.eval_batch_size,
                                    run.obj)
        final = run.kind.metrics(run.eval_examples, outputs, run.obj)
        _log_eval(run, final)
    run.accelerator.wait_for_everyone()
    return final
