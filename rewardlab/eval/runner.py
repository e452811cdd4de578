"""What every evaluation run shares (evaluate.py, run_benchmarks.py): the typed result, a model
loaded with the evaluation's options, and scoring through the resumable scores cache."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

from ..config import EvalConfig
from ..errors import ConfigError
from ..inference import RewardModel
from .cache import ScoresCache, model_identity, score_cached


@dataclass
class EvalResult:
    """What an evaluation found. ``metrics``: what ``eval --json`` prints (the headline first:
    ``accuracy``, a benchmark's own number under its name, ...), with the counts of what was
    skipped or cut (``skipped_rows``, ``truncated``); ``text``: what ``eval`` prints without it;
    ``details``: per row, what was read of each of its texts (a benchmark: what its rule read);
    ``examples``: the rows they belong to (as the kind parsed them; a benchmark's rows as read);
    ``notes``: the lines said on stderr."""

    metrics: dict
    text: str
    kind: str
    format: str
    details: list = field(default_factory=list)
    examples: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    writer: Callable[[str], str] | None = field(default=None, repr=False)
    headline_key: str | None = None

    @property
    def headline(self) -> tuple[str, float] | None:
        """The number this evaluation is known by: (its name, its value): the benchmark's own
        (RewardBench's ``overall``, ProcessBench's ``f1``...) or the kind's (``accuracy``...)."""
        return (self.headline_key, self.metrics.get(self.headline_key)) if self.headline_key else None

    @property
    def categories(self) -> dict:
        """Per category (a benchmark's) or subset (a ``subset`` column's) numbers; empty if none."""
        return self.metrics.get("categories") or self.metrics.get("subsets") or {}

    @property
    def counts(self) -> dict:
        """What was cut or left out: rows scored, rows skipped as invalid, truncated ones."""
        m = self.metrics
        return {"rows": len(self.details), "skipped_rows": m.get("skipped_rows", 0), "truncated": m.get("truncated", 0),
                "outside_rows": m.get("outside_rows", 0)}

    def to_dict(self) -> dict:
        return self.metrics

    def to_json(self) -> str:
        """The one line ``rewardlab eval --json`` prints."""
        return json.dumps(self.metrics)

    def report(self, path: str) -> str:
        """Write the self-contained HTML page of ``eval --report`` (needs matplotlib); returns its path."""
        need_matplotlib()
        return self.writer(path)

    def __str__(self) -> str:
        return self.text


def need_matplotlib() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError("--report draws with matplotlib: pip install 'rewardlab[report]'")


def load(model, cfg: EvalConfig, tell=None):
    """A model folder loaded with the evaluation's options, or a loaded model read with them;
    ``tell`` hears when ``max_length`` was more than the model's positions."""
    if isinstance(model, str):
        import torch

        model = RewardModel.from_pretrained(model, max_length=cfg.max_length, device=cfg.device or None,
                                            dtype=torch.bfloat16 if cfg.bf16 else None, options=cfg.scoring)
        for m in getattr(model, "members", [model]):
            if m.capped and tell is not None:
                tell(f"note: {m.capped}")
        return model
    return model.with_options(cfg.scoring) if cfg.scoring.given() else model


def name_of(rm) -> str:
    """How messages and the scores cache name a model: its folder, or 'model' for one built in memory."""
    return rm.name or "model"


def score_rows(cfg: EvalConfig, rm, groups: list, tell, read: Callable | None = None) -> tuple[list, int]:
    """Every group of texts through the one scorer (``group_details``), in chunks with a progress
    bar, through ``scores_cache`` when given (resumable): per group its details, or what ``read``
    makes of a chunk's details (a benchmark's reads); and how many groups were truncated."""
    cache = ScoresCache(cfg.scores_cache)
    identity = model_identity(name_of(rm), rm.max_length, rm.options.given() or None)
    truncated = []

    def score_chunk(idx):
        details, counts = rm.group_details([groups[i] for i in idx], cfg.batch_size)
        truncated.append(counts.truncated if counts else 0)
        return details if read is None else read(details)

    rewards, reused = score_cached(groups, score_chunk, identity, cache)
    if reused:
        tell(f"note: {reused} of {len(groups)} rows taken from {cfg.scores_cache}")
    return rewards, sum(truncated)
