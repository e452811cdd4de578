"""Preference rows -> :class:`Example`: one prompt, K >= 2 completions, and their order.

Row forms (see the README):
  pairs, the K = 2 case:
    (a) explicit: ``prompt``, ``chosen``, ``rejected`` strings;
    (b) implicit prompt: ``chosen`` and ``rejected`` are whole texts sharing a prefix (HH-RLHF);
        the shared prefix becomes the prompt;
    (c) conversational: ``chosen`` / ``rejected`` (and optional ``prompt``) are lists of
        ``{"role", "content"}`` messages, rendered with the tokenizer's chat template;
    optional ``margin`` (number >= 0, Llama 2 margin loss);
  groups: ``prompt`` + ``completions`` (strings or message lists) with exactly one of
    ``ranking``: best first, completion indices, a nested list is a tie group
                 (``[2, [0, 3], 1]``); ``"partial": true`` for a top-k ranking, whose
                 unlisted completions are below every listed one, unordered among themselves;
    ``scores``:  one number per completion, higher is better, equal scores tie.
    optional ``answers``: a final answer per completion (majority-vote baseline in eval).
Optional everywhere: ``subset`` (per-subset metrics in eval).

Every order becomes ``tiers``: 0 for the best completions, 1 for the next, ...; equal tiers
are ties; None marks the unlisted completions of a partial ranking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import DataError
from .rows import rename_columns
from .text import Text, _is_messages, _require, _type, split_shared_prefix, to_text


@dataclass
class Example:
    """One prompt with K >= 2 completions (a pair: chosen, rejected) and their order."""

    prompt: str
    completions: list[str]
    tiers: list[int | None]
    scores: list[float] | None = None
    margin: float = 0.0
    templated: bool = False
    subset: str | None = None
    answers: list | None = None
    row: int = 0  # 1-based row number in the source, for messages

    @property
    def chosen(self) -> str:
        return self.completions[0]

    @property
    def rejected(self) -> str:
        return self.completions[1]

    @property
    def is_pair(self) -> bool:
        return len(self.completions) == 2 and self.tiers == [0, 1] and self.scores is None

    def strict_pairs(self) -> list[tuple[int, int]]:
        return strict_pairs(self.tiers)

    def tied_pairs(self) -> list[tuple[int, int]]:
        return tied_pairs(self.tiers)

    def empty_completions(self) -> int:
        return sum(not c.strip() for c in self.completions)


def _number(value: Any, where: str, what: str) -> float:
    try:
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))
    except OverflowError:  # an integer too large for a float
        ok = False
    if not ok and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise DataError(f"{where}: {what} must be a number, got {_type(value)}")
    if not ok:
        raise DataError(f"{where}: {what} must be a finite number, got {value if isinstance(value, float) else 'a huge one'}")
    return float(value)


def tiers_from_scores(scores: list[float]) -> list[int]:
    """Higher score = better tier; equal scores share a tier (dense ranks: [0.2, 1, 1, 0] -> [1, 0, 0, 2])."""
    order = {s: t for t, s in enumerate(sorted(set(scores), reverse=True))}
    return [order[s] for s in scores]


def strict_pairs(tiers: list[int | None]) -> list[tuple[int, int]]:
    """(better, worse) index pairs: a lower tier beats a higher one; a ranked completion beats an
    unlisted one (None, a partial top-k); two unlisted ones are not compared."""
    return [(i, j) for i, ti in enumerate(tiers) for j, tj in enumerate(tiers)
            if ti is not None and (tj is None or ti < tj)]


def tied_pairs(tiers: list[int | None]) -> list[tuple[int, int]]:
    """(i, j) pairs with i < j, both ranked and in the same tier."""
    return [(i, j) for i, ti in enumerate(tiers) for j in range(i + 1, len(tiers))
            if ti is not None and ti == tiers[j]]


def tiers_from_ranking(ranking: Any, k: int, partial: bool, where: str) -> list[int | None]:
    """``[2, [0, 3], 1]`` -> tiers ``[1, 2, 0, 1]``; checks range, repeats and completeness."""
    if not isinstance(ranking, list) or not ranking:
        raise DataError(f"{where}: 'ranking' must be a non-empty list of completion indices, got {_type(ranking)}")
    tiers: list[int | None] = [None] * k
    for tier, entry in enumerate(ranking):
        if entry == []:
            raise DataError(f"{where}: 'ranking' holds an empty tie group")
        for i in entry if isinstance(entry, list) else [entry]:
            if isinstance(i, bool) or not isinstance(i, int):
                raise DataError(f"{where}: 'ranking' holds {i!r}; use completion indices (int), a list for a tie")
            if not 0 <= i < k:
                raise DataError(f"{where}: 'ranking' index {i} is out of range for {k} completions")
            if tiers[i] is not None:
                raise DataError(f"{where}: 'ranking' lists completion {i} twice")
            tiers[i] = tier
    missing = [i for i, t in enumerate(tiers) if t is None]
    if missing and not partial:
        raise DataError(f"{where}: 'ranking' leaves out completions {missing}; add \"partial\": true for a top-k "
                        "ranking (unlisted ones rank below the listed ones)")
    return tiers


def one_prompt(texts: list[Text]) -> list[Text]:
    """The completions of one example measured from the same prompt. A chat template can render
    the generation prompt differently per conversation (see render_chat's fallback); then the
    prompt is the longest common start of the whole texts, so no completion is joined to a
    prompt that is not its own."""
    if len({t.prompt for t in texts}) == 1:
        return texts
    fulls = [t.prompt + t.completion for t in texts]
    n = min(len(t.prompt) for t in texts)
    while n and any(f[:n] != fulls[0][:n] for f in fulls):
        n -= 1
    return [Text(f[:n], f[n:], t.templated) for f, t in zip(fulls, texts)]


def check_group(row: dict, tokenizer, where: str, n: int, allow_empty: bool, chat: bool = False) -> Example:
    """Validate a ``prompt`` + ``completions`` row with a ranking or scores."""
    _require(row, ("prompt", "completions"), where)
    completions, prompt = row["completions"], row["prompt"]
    if not isinstance(completions, list) or len(completions) < 2:
        raise DataError(f"{where}: 'completions' must be a list of at least 2 completions, got {_type(completions)}"
                        + (f" of {len(completions)}" if isinstance(completions, list) else ""))
    if ("ranking" in row) == ("scores" in row):
        raise DataError(f"{where}: a group row needs exactly one of 'ranking' or 'scores'")
    texts = [to_text(prompt, c, tokenizer, where, f"completion {i}", allow_empty, chat)
             for i, c in enumerate(completions)]
    texts = one_prompt(texts)
    if len({t.completion for t in texts}) < 2:
        raise DataError(f"{where}: fewer than 2 distinct completions")
    if len({t.templated for t in texts}) > 1:
        raise DataError(f"{where}: completions must all be strings or all be message lists")
    scores = None
    if "scores" in row:
        if not isinstance(row["scores"], list) or len(row["scores"]) != len(completions):
            got = len(row["scores"]) if isinstance(row["scores"], list) else _type(row["scores"])
            raise DataError(f"{where}: 'scores' must hold one number per completion ({len(completions)}), got {got}")
        scores = [_number(s, where, f"scores[{i}]") for i, s in enumerate(row["scores"])]
        tiers = tiers_from_scores(scores)
    else:
        partial = row.get("partial", False)
        if not isinstance(partial, bool):
            raise DataError(f"{where}: 'partial' must be true or false, got {partial!r}")
        tiers = tiers_from_ranking(row["ranking"], len(completions), partial, where)
    seen: dict[str, int | None] = {}
    for t, text in zip(tiers, texts):
        if text.completion in seen and seen[text.completion] != t:
            raise DataError(f"{where}: the same completion is ranked twice, in different places")
        seen[text.completion] = t
    answers = row.get("answers")
    if answers is not None and (not isinstance(answers, list) or len(answers) != len(completions)
                                or not all(a is None or isinstance(a, (str, int, float)) for a in answers)):
        raise DataError(f"{where}: 'answers' must hold one answer (a string, a number or null) per completion "
                        f"({len(completions)})")
    subset = row.get("subset")
    return Example(texts[0].prompt, [t.completion for t in texts], tiers, scores, 0.0, texts[0].templated,
                   None if subset is None else str(subset), answers, n)


def check_pair(row: dict, tokenizer, where: str, n: int, allow_empty: bool = True, chat: bool = False) -> Example:
    """Validate a chosen/rejected row (forms a-c above)."""
    _require(row, ("chosen", "rejected"), where)
    chosen, rejected, prompt = row["chosen"], row["rejected"], row.get("prompt")
    for key in ("chosen", "rejected"):
        if not isinstance(row[key], str) and not _is_messages(row[key]):
            raise DataError(f"{where}: '{key}' must be a string or a list of {{role, content}} messages, "
                            f"got {_type(row[key])}")
    if chosen == rejected:
        raise DataError(f"{where}: chosen and rejected are identical")
    if prompt is None and isinstance(chosen, str) and isinstance(rejected, str):
        prompt, chosen, rejected = split_shared_prefix(chosen, rejected)
    elif prompt is None and _is_messages(chosen) and _is_messages(rejected):
        k = 0
        while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
            k += 1
        prompt, chosen, rejected = chosen[:k], chosen[k:], rejected[k:]
    elif prompt is not None and not isinstance(prompt, str) and not _is_messages(prompt):
        raise DataError(f"{where}: 'prompt' must be a string or a list of {{role, content}} messages, "
                        f"got {_type(prompt)}")
    c = to_text(prompt, chosen, tokenizer, where, "chosen completion", allow_empty, chat)
    r = to_text(prompt, rejected, tokenizer, where, "rejected completion", allow_empty, chat)
    if c.templated != r.templated:
        raise DataError(f"{where}: chosen and rejected must both be strings or both be message lists")
    c, r = one_prompt([c, r])
    if c.completion == r.completion:
        raise DataError(f"{where}: chosen and rejected are identical")
    margin = _number(row.get("margin", 0.0), where, "'margin'")
    if margin < 0:
        raise DataError(f"{where}: 'margin' must be >= 0 (it is how much better chosen is), got {margin}")
    subset = row.get("subset")
    return Example(c.prompt, [c.completion, r.completion], [0, 1], None, margin, c.templated,
                   None if subset is None else str(subset), None, n)


def check_example(row: dict, tokenizer, where: str, n: int, allow_empty: bool = True, chat: bool = False,
                  columns: dict[str, str] | None = None) -> Example:
    """A pair row or a group row, whichever ``row`` is. ``columns``: rewardlab's column name ->
    the user's, for columns named differently (``--prompt-key question``)."""
    if columns:
        row = rename_columns(row, columns)
    if "completions" in row:
        return check_group(row, tokenizer, where, n, allow_empty, chat)
    return check_pair(row, tokenizer, where, n, allow_empty, chat)
