"""Pointwise rows -> :class:`Point`: one prompt, one completion, and what it is labelled with.

The kinds that learn from one completion at a time read these rows (column names can be
mapped with the ``--*-key`` options):
  ``orm``:        ``prompt``, ``completion``, ``label`` (0/1, true/false, or a float in [0, 1]);
                  optional ``answer`` (a final answer: majority-vote baseline in eval);
  ``prm``:        ``prompt`` (or ``problem``), ``steps`` (a list of strings) and either
                  ``labels`` (one per step: booleans or 0/1; -1/0/+1 with ``prm_labels:
                  ternary``; floats in [0, 1] with ``soft``) or ``label`` (ProcessBench: the
                  index of the first wrong step, -1 if none; later steps count as wrong);
  ``value``:      ``prompt``, ``completion``, ``reward`` (a number: the return);
  ``regression``: ``prompt``, ``completion``, ``ratings`` ({attribute: number or null}).
Optional everywhere: ``subset``. Rows with the same prompt form a group (best-of-N in eval).

Step marking (PRM): every step is followed by a marker, the separator (default "\\n") or a
dedicated step token, and the step's label is read at the marker's last token. The same
function marks the steps in training and in scoring, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import DataError
from .encode import Counts, encode_texts
from .preference import _number
from .text import Text, _require, _type, to_text


@dataclass
class Point:
    """One prompt and one completion with its target (a label, step labels, a return, ratings)."""

    prompt: str
    completion: str
    target: Any
    ends: list[int] | None = None  # PRM: offset in ``completion`` just after each step's marker
    templated: bool = False
    answer: str | None = None
    subset: str | None = None
    row: int = 0
    outcome: float | None = None  # prm: whether the whole solution is right, when a row says (``correct``)
    suffix: int = 0  # characters a kind appended after the user's completion (a verifier's question)

    def empty_completions(self) -> int:
        return int(not self.completion[:len(self.completion) - self.suffix].strip())


@dataclass
class Encoded:
    """A point's token ids and the indices that carry its outputs (None: cut off by truncation)."""

    sequences: list[list[int]]  # one sequence; a list so the batch builders treat it as a group of 1
    reads: list[list[int | None]] = field(default_factory=list)
    truncated: bool = False
    lm: list[list[int]] | None = None  # positions whose next token is a completion token (joint LM loss)


def mark_steps(steps: list[str], marker: str) -> tuple[str, list[int]]:
    """The completion text for ``steps``, each followed by ``marker``, and where each ends."""
    text, ends = "", []
    for s in steps:
        text += s + marker
        ends.append(len(text))
    return text, ends


def text_point(text: Text, marker: str | None = None) -> Point:
    """A text to score. With a PRM ``marker``: a ``steps`` row's text keeps its own step ends;
    a plain text is split into steps at the marker and marked again as training marks steps
    (every step, the last one too, followed by the marker; empty steps dropped), so it scores
    as its steps would. (Send the prompt separately: a prompt's own lines are not steps.)"""
    if marker is None:
        return Point(text.prompt, text.completion, None, None, text.templated)
    if text.ends is not None:  # a row's own steps, marked when it was read
        return Point(text.prompt, text.completion, None, list(text.ends), text.templated)
    steps = [s for s in text.completion.split(marker) if s.strip()] or [text.completion]
    completion, ends = mark_steps(steps, marker)
    return Point(text.prompt, completion, None, ends, text.templated)


def _text(row: dict, tokenizer, where: str, allow_empty: bool, chat: bool, completion: str | None = None) -> Text:
    prompt = row.get("prompt", row.get("problem"))
    return to_text(prompt, row["completion"] if completion is None else completion, tokenizer, where,
                   "completion", allow_empty, chat)


def _unit(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool):
        return float(value)
    v = _number(value, where, what)
    if not 0.0 <= v <= 1.0:
        raise DataError(f"{where}: {what} must be in [0, 1] (1 = correct), got {v:g}")
    return v


def _common(row: dict, text: Text, target: Any, n: int, ends=None) -> Point:
    subset, answer = row.get("subset", row.get("split")), row.get("answer")
    return Point(text.prompt, text.completion, target, ends, text.templated,
                 None if answer is None else str(answer), None if subset is None else str(subset), n)


def parse_orm(row: dict, tokenizer, where: str, n: int, allow_empty: bool = True, chat: bool = False) -> Point:
    _require(row, ("completion", "label"), where)
    return _common(row, _text(row, tokenizer, where, allow_empty, chat), _unit(row["label"], where, "'label'"), n)


def parse_value(row: dict, tokenizer, where: str, n: int, allow_empty: bool = True, chat: bool = False) -> Point:
    _require(row, ("completion", "reward"), where)
    return _common(row, _text(row, tokenizer, where, allow_empty, chat), _number(row["reward"], where, "'reward'"), n)


def parse_regression(row: dict, tokenizer, where: str, n: int, names: list[str], allow_empty: bool = True,
                     chat: bool = False) -> Point:
    _require(row, ("completion", "ratings"), where)
    ratings = row["ratings"]
    if not isinstance(ratings, dict):
        raise DataError(f"{where}: 'ratings' must be an object {{attribute: number}}, got {_type(ratings)}")
    unknown = sorted(set(ratings) - set(names))
    if unknown:
        raise DataError(f"{where}: 'ratings' has attributes {unknown} that the model does not have "
                        f"({', '.join(names)}); list every attribute with --attributes")
    values = [None if ratings.get(a) is None else _number(ratings[a], where, f"ratings[{a!r}]") for a in names]
    if all(v is None for v in values):
        raise DataError(f"{where}: 'ratings' rates no attribute")
    return _common(row, _text(row, tokenizer, where, allow_empty, chat), values, n)


def step_labels(row: dict, n_steps: int, scheme: str, where: str) -> list[float]:
    """Per-step targets: 1.0/0.0 (binary), floats in [0, 1] (soft), or -1/0/1 (ternary)."""
    if "labels" not in row or row["labels"] is None:
        first = row.get("label")
        if isinstance(first, bool) or not isinstance(first, int) or not -1 <= first < n_steps:
            raise DataError(f"{where}: needs 'labels' (one per step) or 'label' (the index of the first wrong step, "
                            f"-1 if none, below {n_steps}), got {first!r}")
        good = n_steps if first == -1 else first
        return [1.0] * good + [0.0 if scheme != "ternary" else -1.0] * (n_steps - good)
    labels = row["labels"]
    if not isinstance(labels, list) or len(labels) != n_steps:
        got = len(labels) if isinstance(labels, list) else _type(labels)
        raise DataError(f"{where}: 'labels' must hold one label per step ({n_steps}), got {got}")
    out = []
    for i, v in enumerate(labels):
        what = f"labels[{i}]"
        if scheme == "ternary":
            if isinstance(v, bool) or v not in (-1, 0, 1):
                raise DataError(f"{where}: {what} must be -1, 0 or 1 with --prm-labels ternary, got {v!r}")
            out.append(float(v))
        elif scheme == "soft":
            out.append(_unit(v, where, what))
        else:
            if not (isinstance(v, bool) or v in (0, 1)) or isinstance(v, float) and v not in (0.0, 1.0):
                hint = " (-1/0/+1 labels: --prm-labels ternary)" if v == -1 else \
                    " (soft labels: --prm-labels soft)" if isinstance(v, float) else ""
                raise DataError(f"{where}: {what} must be true/false or 0/1, got {v!r}{hint}")
            out.append(float(v))
    return out


def parse_prm(row: dict, tokenizer, where: str, n: int, marker: str, scheme: str = "binary",
              allow_empty: bool = True, chat: bool = False) -> Point:
    if "prompt" not in row and "problem" in row:
        row = {**row, "prompt": row["problem"]}
    _require(row, ("prompt", "steps"), where)
    steps = row["steps"]
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip() for s in steps):
        raise DataError(f"{where}: 'steps' must be a non-empty list of non-empty strings, got {_type(steps)}")
    outcome = None if row.get("correct") is None else _unit(row["correct"], where, "'correct'")
    has_steps = row.get("labels") is not None or row.get("label") is not None
    labels = step_labels(row, len(steps), scheme, where) if has_steps or outcome is None else None
    text = steps_text(row, steps, marker, tokenizer, where, allow_empty, chat)
    point = _common(row, text, labels, n, text.ends)
    point.outcome = outcome
    return point


def steps_text(row: dict, steps: list[str], marker: str, tokenizer, where: str, allow_empty: bool = True,
               chat: bool = False) -> Text:
    """A ``steps`` row as text: each step followed by the marker, and where each ends (the same
    in training, eval and scoring)."""
    completion, ends = mark_steps(steps, marker)
    text = _text(row, tokenizer, where, allow_empty, chat, completion)
    base = text.completion.find(completion)  # a chat template may wrap the steps in role markers
    if base < 0:
        raise DataError(f"{where}: the chat template changed the steps' text; score this row without it")
    text.ends = [base + e for e in ends]
    return text


def _token_at(spans: list[tuple[int, int]], char: int) -> int:
    """The token covering character ``char``; the last token ending before it otherwise."""
    best = 0
    for i, (a, b) in enumerate(spans):
        if a <= char < b:
            return i
        if a < b and b <= char + 1:
            best = i
    return best


def encode_points(tokenizer, points: list[Point], max_length: int, read: str,
                  cut_completion: bool = False) -> tuple[list[tuple[Point, Encoded]], Counts]:
    """Token ids and read indices per point. ``read``: 'tokens' (every completion token),
    'last' (the last token) or 'steps' (each step marker's last token).

    Too long: the prompt is cut from the left; when the completion alone is too long the point
    is skipped and counted, or with ``cut_completion`` (scoring) keeps its last tokens, and
    reads that fall off become None."""
    encoded = encode_texts(tokenizer, [Text(p.prompt, p.completion, p.templated) for p in points])
    counts, out = Counts(total=len(points)), []
    for p, (ids, head, n_prompt, spans) in zip(points, encoded):
        if read == "tokens":
            reads = list(range(min(head + n_prompt, len(ids) - 1), len(ids)))
        elif read == "steps":
            reads = [_token_at(spans, len(p.prompt) + e - 1) for e in p.ends]
        else:
            reads = [len(ids) - 1]
        cut = len(ids) - max_length
        truncated = cut > 0
        if truncated and cut > n_prompt and not cut_completion:
            counts.skipped += 1
            continue
        if truncated:
            counts.truncated += 1
            ids = ids[:head] + ids[head + cut:]
            reads = [None if r < head + cut else r - cut for r in reads]
        out.append((p, Encoded([ids], [reads], truncated)))
    return out, counts
