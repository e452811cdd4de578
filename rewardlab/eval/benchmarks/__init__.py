"""Benchmark formats, one module each: how a row becomes texts to score, and the benchmark's
own scoring rule on what was read of them. Every completion is scored once (a row's completions
share their prompt). :data:`FORMATS` is the plain list of :class:`Benchmark`; :func:`detect` tells
a file's format from its columns.

A benchmark module writes ``CATEGORY`` / ``KNOWN`` (its categories), ``HEADLINE`` (the key of
its own headline number in ``score``'s answer, under the benchmark's own name for it),
``category_of``, ``by_category``, ``texts(row, where, render)``, ``score(rows, rewards, path)``
(its own rule: the answer holds the headline and ``categories``) and ``format_scores``; and, where
it differs from the default, the optional members of :class:`Benchmark` (``read``, ``STEPS``,
``VOTES``, ``CONVERSATIONS``, ``THRESHOLD``, ``unit_of``). ``tests/eval/test_benchmark_protocol.py``
checks every registered benchmark against this declaration.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any, Callable

from ...data.pointwise import mark_steps
from ...data.text import Text, to_text
from . import judgebench, mrewardbench, ppe, prmbench, rewardbench, rewardbench2, rewardmath, rmb, rmbench


def _reward(detail: dict):
    return detail["reward"]


def _no_unit(row: dict):
    return None


@dataclass(frozen=True)
class Benchmark:
    """A benchmark format: its module's members, and the defaults of the optional ones."""

    NAME: str
    CATEGORY: str
    KNOWN: tuple
    HEADLINE: str
    category_of: Callable
    by_category: Callable
    texts: Callable
    score: Callable
    format_scores: Callable
    read: Callable = _reward
    """What the rule reads of a scored text (default its reward; PRMBench: the step scores)."""
    STEPS: bool = False
    """Scored step by step: it needs a model with step scores (a process reward model)."""
    VOTES: bool = False
    """A pairwise judge's net votes over both orders stand in for rewards (JudgeBench)."""
    CONVERSATIONS: bool = False
    """Rows are conversations: how they are rendered is said on the first line."""
    THRESHOLD: float | None = None
    """The benchmark's own step threshold (``eval --threshold`` changes it); None: it has none."""
    unit_of: Callable = _no_unit
    """The item a bootstrap draws a row with (RewardMATH: its problem); None: the row alone."""
    module: Any = None


def declare(name: str, module) -> Benchmark:
    """A module's members, with the defaults for the optional ones it leaves out."""
    names = [f.name for f in dataclasses.fields(Benchmark) if f.name not in ("NAME", "module")]
    return Benchmark(NAME=name, module=module, **{n: getattr(module, n) for n in names if hasattr(module, n)})


@dataclass
class Render:
    """What a benchmark row needs of the model to become texts: the tokenizer (a conversation is
    rendered with its chat template, or the plain template when it has none: data/text.py, the
    same as ``score`` and ``serve``) and a process reward model's step marker (None for a model
    that reads a solution as one text)."""

    tokenizer: Any = None
    marker: str | None = None

    def text(self, prompt: Any, completion: Any, where: str, name: str = "completion") -> Text:
        """A prompt (string or messages) and a completion (string or messages), as ``score`` renders them."""
        return to_text(prompt, completion, self.tokenizer, where, name, allow_empty=True,
                       chat=not isinstance(prompt, str))

    def steps(self, prompt: str, steps: list[str]) -> Text:
        """A solution given as steps: each followed by the PRM's marker and read there, or for a
        model without steps the steps joined by newlines and read as one text."""
        if self.marker is None:
            return Text(prompt, "\n".join(steps))
        completion, ends = mark_steps(steps, self.marker)
        return Text(prompt, completion, ends=ends)


def of(benchmark) -> Benchmark:
    """The :class:`Benchmark` of a format name, a module or a Benchmark."""
    if isinstance(benchmark, Benchmark):
        return benchmark
    if isinstance(benchmark, str):
        return FORMATS[benchmark]
    return next(b for b in FORMATS.values() if b.module is benchmark)


def options(benchmark, threshold: float = 0.0) -> dict:
    """The benchmark's own options from ``eval``'s flags: a step threshold (PRMBench; 0: its default)."""
    b = of(benchmark)
    return {"threshold": threshold or b.THRESHOLD} if b.THRESHOLD is not None else {}


def read(benchmark, detail: dict):
    """What ``benchmark`` reads of one scored text (its ``read``; the reward by default)."""
    return of(benchmark).read(detail)


def interval(benchmark, rows: list[dict], rewards: list, path: str = "", samples: int = 1000,
             level: float = 0.95, seed: int = 0, **options) -> tuple[float, float] | None:
    """A percentile bootstrap interval of the benchmark's headline: its items resampled with
    replacement and scored again by the benchmark's own rule (so a mean over items, a weighted
    mean of sections or an F1 over pooled counts each get the interval of what it is). An item
    is a row, or the rows of one unit where the benchmark has ``unit_of`` (RewardMATH: the ten
    solutions of a problem), each drawn copy told apart by ``_draw``. None with fewer than two items."""
    benchmark, units = of(benchmark), {}
    for i, row in enumerate(rows):
        unit = benchmark.unit_of(row)
        units.setdefault(i if unit is None else unit, []).append(i)
    items = list(units.values())
    if len(items) < 2:
        return None
    rng = random.Random(seed)
    stats = []
    for _ in range(samples):
        drawn = [items[rng.randrange(len(items))] for _ in items]
        picked = [(j, i) for j, unit in enumerate(drawn) for i in unit]
        stats.append(benchmark.score([dict(rows[i], _draw=j) for j, i in picked], [rewards[i] for _, i in picked],
                                     path, **options)[benchmark.HEADLINE])
    stats.sort()
    return stats[int((1 - level) / 2 * samples)], stats[min(samples - 1, int((1 + level) / 2 * samples))]


FORMATS: dict[str, Benchmark] = {name: declare(name, module) for name, module in (
    ("rewardbench", rewardbench), ("rewardbench2", rewardbench2), ("rm-bench", rmbench), ("judgebench", judgebench),
    ("prmbench", prmbench), ("rewardmath", rewardmath), ("rmb", rmb), ("m-rewardbench", mrewardbench), ("ppe", ppe))}


def detect(rows: list[dict], path: str = "") -> str | None:
    """The benchmark format of ``rows`` from their columns, or None for plain pairs/groups."""
    first = rows[0] if rows else {}
    if "modified_process" in first and "error_steps" in first:
        return "prmbench"
    if "eval_solution" in first and "solution_reference" in first:
        return "rewardmath"
    if "conversation_input" in first and "category_path" in first:
        return "rmb"
    if "response_1" in first and "response_2" in first:
        return "ppe"
    if "language" in first and isinstance(first.get("chosen"), str) and \
            any(str(r.get("source", r.get("subset"))) in mrewardbench.COUNTS for r in rows):
        return "m-rewardbench"
    if "response_A" in first and "response_B" in first:
        return "judgebench"
    if isinstance(first.get("chosen"), list) and isinstance(first.get("rejected"), list) \
            and all(isinstance(x, str) for x in first["chosen"] + first["rejected"]):
        return "rewardbench2" if "num_correct" in first or len(first["chosen"]) != 3 else "rm-bench"
    if "subset" in first and isinstance(first.get("chosen"), str) and \
            any(str(r.get("subset")) in rewardbench.SECTIONS_OF for r in rows):
        return "rewardbench"
    return None
