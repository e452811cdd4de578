"""``rewardlab score``, ``serve`` and ``export``: a trained model put to use."""

from __future__ import annotations

import sys

from ..config import ExportConfig, ScoreConfig, ServeConfig
from ..errors import ConfigError
from .common import dtype, need


def cmd_score(cfg: ScoreConfig) -> int:
    """Score a file of rows (inference/score_file.py); under ``accelerate launch`` every process
    scores its share and the main process writes them all, in input order."""
    from accelerate import PartialState

    from ..inference import RewardModel
    from ..inference.score_file import score_file

    need(cfg.model, "--model"), need(cfg.data, "--data"), need(cfg.output, "--output")
    state = PartialState()
    rm = RewardModel.from_pretrained(cfg.model, max_length=cfg.max_length, device=cfg.device or str(state.device),
                                     dtype=dtype(cfg.bf16), options=cfg.scoring)
    for m in getattr(rm, "members", [rm]):
        if m.capped and state.is_main_process:
            print(f"note: {m.capped}", file=sys.stderr)
    done = score_file(rm, cfg.data, cfg.output, cfg.batch_size, cfg.max_batch_tokens, cfg.skip_bad_rows,
                      cfg.allow_empty, cfg.columns.mapping())
    if state.is_main_process:
        print(f"scored {done['rows']} rows -> {cfg.output}"
              + (f" ({done['processes']} processes)" if done["processes"] > 1 else ""))
        if done["invalid"]:
            print(f"note: {done['invalid']} invalid rows written back with an 'error' field (--skip-bad-rows)",
                  file=sys.stderr)
        if done["empty"]:
            print(f"note: {done['empty']} empty completions scored (the reward is read right after the prompt)",
                  file=sys.stderr)
        if done["truncated"]:
            print(f"note: {done['truncated']} rows had sequences longer than max_length={rm.max_length}; they were "
                  "cut from the left (the end of the completion is kept)", file=sys.stderr)
    return 0


def cmd_export(cfg: ExportConfig) -> int:
    from ..inference.combine import export_adapter

    need(cfg.model, "--model"), need(cfg.output, "--output")
    export_adapter(cfg.model, cfg.output, cfg.bf16, cfg.device or None)
    print(f"merged reward model saved to {cfg.output}")
    return 0


def cmd_serve(cfg: ServeConfig) -> int:
    import importlib.util

    from ..serve.api import serve

    need(cfg.model, "--model")
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise ConfigError("serve needs fastapi and uvicorn: pip install 'rewardlab[serve]'")
    serve(cfg.model, cfg)
    return 0
