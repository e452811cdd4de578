"""Rows to judge and rows the judge writes.

In: chosen/rejected pairs (human-labelled, any form ``rewardlab train`` reads), prompt +
completions (a list), or prompt + completion (single grading). Out: preference rows
(prompt, chosen, rejected, confidence, raw judgments) that ``rewardlab train`` reads, and
the ties and errors, kept apart so nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..data.rows import read_rows
from ..data.text import _is_messages, split_shared_prefix
from ..errors import DataError


@dataclass
class Item:
    """One row to judge: the question and answers as the judge sees them, and as the data had them."""

    row: int
    question: str
    answers: list[str]
    prompt: Any
    outputs: list[Any]
    reference: str = ""
    labelled: bool = False  # answers[0] is the human-preferred answer (chosen/rejected rows)
    judgments: list[dict] = field(default_factory=list)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    return "\n\n".join(f"{m['role'].capitalize()}: {str(m['content']).strip()}" for m in value)


def question_text(prompt: Any) -> str:
    """The question shown to the judge. An HH-style dialogue drops its trailing 'Assistant:'."""
    text = _text(prompt)
    return text[:-len("Assistant:")].rstrip() if text.endswith("Assistant:") else text


def _answer_text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    return "\n\n".join(str(m["content"]).strip() for m in value)


def _check_value(value: Any, at: str, name: str, allow_empty: bool = True) -> None:
    """A string or messages; empty only where allowed (an empty reply is real data: HH-RLHF has
    pairs where silence was preferred, a comparison a judge can make)."""
    if not isinstance(value, str) and not _is_messages(value):
        raise DataError(f"{at}: '{name}' must be a string or a list of {{role, content}} messages, "
                        f"got {type(value).__name__ if value is not None else 'null'}")
    if not allow_empty and not _answer_text(value):
        raise DataError(f"{at}: empty {name} (accepted unless --no-allow-empty)")


def read_items(path: str, mode: str, need_reference: bool) -> list[Item]:
    """Rows to judge: chosen/rejected pairs (human-labelled), prompt + completions (a list;
    two for pairwise), or prompt + completion (single mode). One-line DataError otherwise."""
    rows = read_rows(path)
    if not rows:
        raise DataError(f"{path}: no rows")
    return [item_of(row, f"{path}: row {rows.number(i)}", mode, need_reference, rows.number(i))
            for i, row in enumerate(rows)]


def item_of(row: dict, at: str, mode: str, need_reference: bool, n: int = 0, any_k: bool = False,
            allow_empty: bool = True) -> Item:
    """One row as the judge sees it (``at``: "file: row n" for errors). ``any_k``: a pairwise
    row may hold any number (>= 2) of completions (a trained judge compares every pair);
    ``allow_empty``: empty answers are kept (counted where they are used)."""
    prompt = row.get("prompt")
    if row.get("chosen") is not None or row.get("rejected") is not None:
        for key in ("chosen", "rejected"):
            if row.get(key) is None:
                raise DataError(f"{at}: missing column '{key}'")
            _check_value(row[key], at, key, allow_empty)
        outputs, labelled = [row["chosen"], row["rejected"]], True
        if outputs[0] == outputs[1]:
            raise DataError(f"{at}: chosen and rejected are identical")
        if prompt is None and all(isinstance(o, str) for o in outputs):
            prompt, *outputs = split_shared_prefix(*outputs)
        elif prompt is None and all(_is_messages(o) for o in outputs):
            k = 0
            while k < min(map(len, outputs)) and outputs[0][k] == outputs[1][k]:
                k += 1
            prompt, outputs = outputs[0][:k], [outputs[0][k:], outputs[1][k:]]
    elif row.get("completions") is not None:
        outputs, labelled = row["completions"], False
        two = mode == "pairwise" and not any_k
        if not isinstance(outputs, list) or (len(outputs) != 2 if two else len(outputs) < (2 if any_k else 1)):
            raise DataError(f"{at}: 'completions' must be a list of "
                            + ("exactly 2 answers in pairwise mode" if two else "2 or more answers" if any_k
                               else "answers"))
    elif row.get("completion") is not None and mode == "single":
        outputs, labelled = [row["completion"]], False
    else:
        need = "'chosen' + 'rejected' or 'prompt' + 'completions' (2)" if mode == "pairwise" else \
            "'chosen' + 'rejected', 'prompt' + 'completions' or 'prompt' + 'completion'"
        raise DataError(f"{at}: expected {need}; found columns: {', '.join(row) or 'none'}")
    for k, o in enumerate(outputs):
        _check_value(o, at, f"completion {k}" if not labelled else ("chosen", "rejected")[k], allow_empty)
    if prompt is None or (not isinstance(prompt, str) and not _is_messages(prompt)):
        raise DataError(f"{at}: 'prompt' must be a string or a list of {{role, content}} messages")
    reference = row.get("reference")
    if need_reference and (not isinstance(reference, str) or not reference.strip()):
        raise DataError(f"{at}: the template uses {{reference}} but the row has no 'reference' string")
    return Item(n, question_text(prompt), [_answer_text(o) for o in outputs], prompt, outputs,
                (reference or "").strip() if need_reference else "", labelled)


def output_rows(items: list[Item], judge: str, template: str) -> tuple[list[dict], list[dict]]:
    """(preference rows, undecided rows). A preference row is what ``rewardlab train`` reads:
    prompt, chosen, rejected, plus the judge's confidence and its raw judgments."""
    decided, undecided = [], []
    for item in items:
        base = {"prompt": item.prompt}
        extra = {"judge": judge, "template": template, "judgments": item.judgments, "source_row": item.row}
        if len(item.answers) != 2 and not item.error:  # single grading of one or many completions
            decided.append({**base, "completions": item.outputs, "ratings": item.ratings, **extra})
        elif item.winner in (0, 1):
            row = {**base, "chosen": item.outputs[item.winner], "rejected": item.outputs[1 - item.winner],
                   "confidence": round(item.confidence, 6)}
            if getattr(item, "ratings", None):
                row["ratings"] = [item.ratings[item.winner], item.ratings[1 - item.winner]]
            if item.labelled:
                row["human_agrees"] = item.winner == 0
            decided.append({**row, **extra})
        else:
            undecided.append({**base, "completions": item.outputs,
                              "result": "error" if item.error else "tie", **extra})
    return decided, undecided
