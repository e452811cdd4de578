"""Models made from models, as the commands ``ensemble``, ``merge`` and ``export`` make them:
an ensemble folder (members scored together, ensemble.py), a weight average of same-base models
(WARM, merge.py), and a LoRA adapter merged into its base model."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..data.rows import read_rows
from ..errors import ModelError
from ..models.lora import load_adapter
from .ensemble import check_members, reward_stats, write_ensemble
from .merge import average, check_mergeable, merged_settings, parse_weights
from .reward_model import RewardModel
from .rows import score_rows


def make_ensemble(models: list[str], output: str, aggregate: str = "mean", uncertainty_coef: float = 1.0,
                  calibration_data: str = "", batch_size: int = 16, device: str | None = None,
                  say: Callable[[str], None] | None = None) -> dict:
    """Check the members, measure (on ``calibration_data``) or read (saved by ``train
    --reward-stats``) each one's reward statistics, write ``output/ensemble.json``; returns its spec."""
    members = [RewardModel.from_pretrained(n, device=device) for n in models]
    check_members(members, models)
    rows = read_rows(calibration_data) if calibration_data else None
    stats = []
    for rm, name in zip(members, models):
        calibration = None
        if rows is not None:
            scored, _ = score_rows(rm, rows, calibration_data, batch_size)
            calibration = [r for row in scored for key in ("reward", "chosen_reward", "rejected_reward")
                           for r in ([row[key]] if key in row else [])] + \
                [r for row in scored for r in row.get("rewards", [])]
        stats.append(reward_stats(rm, name, calibration))
    for rm, name, s in zip(members, models, stats):  # after every member's check: an error comes alone
        if say is not None:
            say(f"{name}: {rm.kind}, reward mean {s['reward_mean']:+.4f} std {s['reward_std']:.4f} "
                f"({s['from']}, n={s['n']})")
    return write_ensemble(output, models, stats, aggregate, uncertainty_coef, calibration_data)


def merge_models(models: list[str], output: str, weights: str | list[float] = "") -> list[float]:
    """Average same-base reward models' weights (WARM) into one plain folder; returns the weights used."""
    weights = parse_weights(weights, len(models)) if isinstance(weights, str) else \
        parse_weights(",".join(map(str, weights)), len(models))
    members = [RewardModel.from_pretrained(n, device="cpu") for n in models]
    check_mergeable(members, models)
    model = average(members, weights)
    settings = merged_settings(members[0].settings, models, weights)
    RewardModel(model, members[0].tokenizer, members[0].max_length, device="cpu", settings=settings).save_pretrained(output)
    return weights


def export_adapter(adapter: str, output: str, bf16: bool = False, device: str | None = None) -> None:
    """A LoRA adapter folder merged into its full-precision base, saved as a plain reward model folder."""
    import torch

    if not Path(adapter, "adapter_config.json").exists():
        raise ModelError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json)")
    model, tokenizer, max_length = load_adapter(adapter, full_precision=True)  # QLoRA: merge into full precision
    merged = model.merge_and_unload()
    if bf16:
        merged = merged.to(torch.bfloat16)
    RewardModel(merged, tokenizer, max_length, device=device or "cpu").save_pretrained(output)
