"""``rewardlab ensemble`` (members scored together, inference/ensemble.py) and ``rewardlab merge``
(their weights averaged, inference/merge.py)."""

from __future__ import annotations

import sys

from ..config import EnsembleConfig, MergeConfig
from ..data.rows import read_rows
from .common import models_of, need


def cmd_ensemble(cfg: EnsembleConfig) -> int:
    """Check the members, measure or read each one's reward statistics, write ensemble.json."""
    from ..inference import RewardModel
    from ..inference.ensemble import check_members, reward_stats, write_ensemble
    from ..inference.rows import score_rows

    names = models_of(cfg.model)
    need(cfg.output, "--output")
    members = [RewardModel.from_pretrained(n, device=cfg.device or None) for n in names]
    check_members(members, names)
    rows = read_rows(cfg.calibration_data) if cfg.calibration_data else None
    stats = []
    for rm, name in zip(members, names):
        calibration = None
        if rows is not None:
            scored, _ = score_rows(rm, rows, cfg.calibration_data, cfg.batch_size)
            calibration = [r for row in scored for key in ("reward", "chosen_reward", "rejected_reward")
                           for r in ([row[key]] if key in row else [])] + \
                [r for row in scored for r in row.get("rewards", [])]
        stats.append(reward_stats(rm, name, calibration))
    for rm, name, s in zip(members, names, stats):  # after every member's check: an error comes alone
        print(f"{name}: {rm.kind}, reward mean {s['reward_mean']:+.4f} std {s['reward_std']:.4f} "
              f"({s['from']}, n={s['n']})", file=sys.stderr)
    write_ensemble(cfg.output, names, stats, cfg.aggregate, cfg.uncertainty_coef, cfg.calibration_data)
    print(f"ensemble of {len(names)} members ({cfg.aggregate}) -> {cfg.output}; use it as any --model, e.g. "
          f"rewardlab score --model {cfg.output} --data ROWS.jsonl --output scored.jsonl")
    return 0


def cmd_merge(cfg: MergeConfig) -> int:
    """Average same-base reward models' weights (WARM) into one plain folder."""
    from ..inference import RewardModel
    from ..inference.merge import average, check_mergeable, merged_settings, parse_weights

    names = models_of(cfg.model)
    need(cfg.output, "--output")
    weights = parse_weights(cfg.weights, len(names))
    members = [RewardModel.from_pretrained(n, device="cpu") for n in names]
    check_mergeable(members, names)
    model = average(members, weights)
    model.config.rewardlab = merged_settings(members[0].settings, names, weights)
    RewardModel(model, members[0].tokenizer, members[0].max_length, device="cpu").save_pretrained(cfg.output)
    print(f"weight average of {len(names)} models ({', '.join(f'{w:.3g}' for w in weights)}) -> {cfg.output}")
    return 0
