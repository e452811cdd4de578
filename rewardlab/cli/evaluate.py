"""``rewardlab eval``: :func:`rewardlab.evaluate` (eval/evaluate.py), printed."""

from __future__ import annotations

import sys

from ..config import EvalConfig
from .common import models_of, need


def cmd_eval(cfg: EvalConfig) -> int:
    """Evaluate, then print the result (``--json``: one JSON object) and write ``--report``."""
    from ..eval.evaluate import need_matplotlib, run

    models, datas = models_of(cfg.model), models_of(cfg.data)
    need(models[0] if models else "", "--model"), need(datas[0] if datas else "", "--data")
    if cfg.report:
        need_matplotlib()  # before hours of scoring, not after
    result = run(cfg, models, datas)
    if cfg.report:
        print(f"report: {result.report(cfg.report)}", file=sys.stderr)
    print(result.to_json() if cfg.json else result.text)
    return 0
