"""``rewardlab train``, ``prm-data`` (process-supervision rows) and ``judge`` (LLM-as-a-judge)."""

from __future__ import annotations

import json
import sys

from ..config import JudgeConfig, PrmDataConfig, TrainConfig
from .common import need


def cmd_train(cfg: TrainConfig) -> int:
    from ..training import train

    result = train(cfg)
    out = cfg.run.output
    print(f"model saved to {out}  ({result['steps']} steps, {result['wall_s']:.0f} s, "
          f"{result['examples_per_s']:.1f} examples/s)")
    print(f"score with:  rewardlab score --model {out} --data ROWS.jsonl --output scored.jsonl")
    return 0


def cmd_prm_data(cfg: PrmDataConfig) -> int:
    from ..data.steps import write_prm_rows

    need(cfg.output, "--output")
    if cfg.format != "champ":
        need(cfg.input, "--input")
    n, summary = write_prm_rows(cfg.output, cfg.input, cfg.format, cfg.seed, cfg.corrupt_share, cfg.limit or None)
    print(f"wrote {n} rows to {cfg.output}: {summary}", file=sys.stderr)
    return 0


def cmd_judge(cfg: JudgeConfig) -> int:
    """Judge a file (judge/files.py) and print its report."""
    from ..judge.files import judge_file

    need(cfg.data, "--data"), need(cfg.output, "--output")
    report = judge_file(cfg, say=lambda msg: print(msg, file=sys.stderr))
    out, rest = report.pop("written_to")
    undecided = report.pop("undecided")
    if cfg.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>24}  {value:.4f}" if isinstance(value, float) else f"{key:>24}  {value}")
    print(f"{report['written']} rows -> {out}; {undecided} ties/errors -> {rest}", file=sys.stderr)
    return 0
