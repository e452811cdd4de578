"""``rewardlab score``, ``serve`` and ``export``: a trained model put to use."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..config import ExportConfig, ScoreConfig, ServeConfig
from ..data.rows import read_rows
from ..data.text import chat_rendering, has_chat_template, is_conversation
from ..errors import ConfigError, ModelError
from ..inference.ensemble import apply_options
from ..inference.rows import SKIP_HINT, add_rewards, build_groups, score_groups
from .common import dtype, need


def cmd_score(cfg: ScoreConfig) -> int:
    """Under ``accelerate launch`` each process scores every N-th row; the main process
    writes all rows in input order. Every process checks every row first, so bad input
    stops all of them with the same message."""
    from accelerate import PartialState
    from accelerate.utils import gather_object

    from ..inference import RewardModel

    need(cfg.model, "--model"), need(cfg.data, "--data"), need(cfg.output, "--output")
    state = PartialState()
    rm = RewardModel.from_pretrained(cfg.model, max_length=cfg.max_length, device=cfg.device or str(state.device),
                                     dtype=dtype(cfg.bf16))
    rows = read_rows(cfg.data, keep_bad=True)  # unreadable lines: an error, or written back with it
    for model in getattr(rm, "members", [rm]):  # an ensemble's members each read their texts
        objective = model.settings.setdefault("objective", {})
        if cfg.aggregate != "saved":  # the process reward kinds' option (prm: aggregate; implicit_prm: implicit_aggregate)
            objective.update(aggregate=cfg.aggregate, implicit_aggregate=cfg.aggregate)
        if cfg.samples >= 0:
            objective["genrm_samples"] = cfg.samples
        if cfg.sample_temperature:
            objective["genrm_temperature"] = cfg.sample_temperature
    apply_options(rm, cfg.ensemble_aggregate, cfg.uncertainty_coef, cfg.members, cfg.model)
    groups, fields = build_groups(rows, rm.tokenizer, cfg.data, cfg.allow_empty, cfg.skip_bad_rows, SKIP_HINT,
                                  cfg.columns.mapping(), rm.chat, rm.step_marker or "\n")
    if state.is_main_process and not has_chat_template(rm.tokenizer) and any(map(is_conversation, rows)):
        print(f"note: {chat_rendering(rm.tokenizer)}", file=sys.stderr)  # the first thing said, before scoring
    mine = list(range(state.process_index, len(rows), state.num_processes))
    results, truncated = _score_in_chunks(rm, groups, mine, cfg, state.is_main_process)
    if state.num_processes > 1:
        results = gather_object(results)
        truncated = sum(gather_object([truncated]))
    if state.is_main_process:
        by_index = dict(results)
        Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
        with open(cfg.output, "w", encoding="utf-8") as f:
            for i, row in enumerate(rows):
                scored, details = by_index[i]
                f.write(json.dumps(add_rewards(row, fields[i], scored, details), ensure_ascii=False, default=str)
                        + "\n")
        print(f"scored {len(rows)} rows -> {cfg.output}"
              + (f" ({state.num_processes} processes)" if state.num_processes > 1 else ""))
        bad = sum(f.startswith("error: ") for f in fields)
        empty = sum(not t.completion.strip() for g in groups for t in g)
        if bad:
            print(f"note: {bad} invalid rows written back with an 'error' field (--skip-bad-rows)", file=sys.stderr)
        if empty:
            print(f"note: {empty} empty completions scored (the reward is read right after the prompt)",
                  file=sys.stderr)
        if truncated:
            print(f"note: {truncated} rows had sequences longer than max_length={rm.max_length}; they were cut "
                  "from the left (the end of the completion is kept)", file=sys.stderr)
    return 0


def _score_in_chunks(rm, groups: list, mine: list[int], cfg: ScoreConfig, show: bool) -> tuple[list, int]:
    """(row index, scored) for this process's rows, in growing chunks (a progress bar moves after
    a few rows; from 4 x --batch-size rows up to 4,096, so batches stay full and prompts are
    shared across many rows); and how many rows were truncated."""
    from tqdm.auto import tqdm

    from ..eval.cache import in_chunks

    results, truncated = [], []

    def work(part: list[int]) -> None:
        scored, counts = score_groups(rm, [groups[i] for i in part], cfg.batch_size, cfg.max_batch_tokens,
                                      cfg.per_token)
        results.extend(zip(part, scored))
        truncated.append(counts.truncated if counts else 0)

    bar = tqdm(total=len(mine), desc="score", file=sys.stderr, delay=2, disable=not show, dynamic_ncols=True)
    in_chunks(mine, work, bar, first=4 * cfg.batch_size, most=4096)
    bar.close()
    return results, sum(truncated)


def cmd_export(cfg: ExportConfig) -> int:
    from ..inference import RewardModel
    from ..models.lora import load_adapter

    need(cfg.model, "--model"), need(cfg.output, "--output")
    if not Path(cfg.model, "adapter_config.json").exists():
        raise ModelError(f"{cfg.model}: not a LoRA adapter folder (no adapter_config.json)")
    model, tokenizer, max_length = load_adapter(cfg.model, full_precision=True)  # QLoRA: merge into full precision
    merged = model.merge_and_unload()
    if cfg.bf16:
        merged = merged.to(dtype(True))
    RewardModel(merged, tokenizer, max_length, device=cfg.device or "cpu").save_pretrained(cfg.output)
    print(f"merged reward model saved to {cfg.output}")
    return 0


def cmd_serve(cfg: ServeConfig) -> int:
    import importlib.util

    from ..serve.app import serve

    need(cfg.model, "--model")
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise ConfigError("serve needs fastapi and uvicorn: pip install 'rewardlab[serve]'")
    serve(cfg)
    return 0
