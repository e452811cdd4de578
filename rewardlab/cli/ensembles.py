"""``rewardlab ensemble`` (members scored together) and ``rewardlab merge`` (their weights
averaged): inference/combine.py, printed."""

from __future__ import annotations

import sys

from ..config import EnsembleConfig, MergeConfig
from .common import models_of, need


def cmd_ensemble(cfg: EnsembleConfig) -> int:
    from ..inference.combine import make_ensemble

    names = models_of(cfg.model)
    need(cfg.output, "--output")
    make_ensemble(names, cfg.output, cfg.aggregate, cfg.uncertainty_coef, cfg.calibration_data, cfg.batch_size,
                  cfg.device or None, say=lambda msg: print(msg, file=sys.stderr))
    print(f"ensemble of {len(names)} members ({cfg.aggregate}) -> {cfg.output}; use it as any --model, e.g. "
          f"rewardlab score --model {cfg.output} --data ROWS.jsonl --output scored.jsonl")
    return 0


def cmd_merge(cfg: MergeConfig) -> int:
    from ..inference.combine import merge_models

    names = models_of(cfg.model)
    need(cfg.output, "--output")
    weights = merge_models(names, cfg.output, cfg.weights)
    print(f"weight average of {len(names)} models ({', '.join(f'{w:.3g}' for w in weights)}) -> {cfg.output}")
    return 0
