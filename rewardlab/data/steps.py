"""Process-supervision data for process reward models (PRMs): solutions cut into steps, each
step labelled.

Every reader returns PRM rows ``{"prompt": str, "steps": [str, ...], "labels": [...],
"first_error": int, "source": str}``; the prompt ends with a newline, so the first step does not
run on from the question (``...May?\\nNatalia sold...``, not ``...May?Natalia sold...``); ``first_error`` is the index of the first wrong step, -1
when none is wrong. Labels are bools (True = correct), except PRM800K's, which stay the human
ratings -1 / 0 / +1. CHAMP gives ProcessBench-style evaluation rows ``{"problem", "steps",
"label"}`` instead, ``label`` being the first wrong step (-1 if none).

- :func:`gsm8k_step_rows`: GSM8K reference solutions, a seeded share with one calculator result
  made wrong (a synthetic first error), as ``rewardlab prm-data`` writes them;
- :func:`read_prm800k`, :func:`read_math_shepherd`: the two public PRM training sets;
- :func:`read_champ`: the CHAMP first-wrong-step annotations (package ``champ-dataset``).
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
from decimal import Decimal
from pathlib import Path

from ..errors import ConfigError, DataError
from .rows import iter_rows

# A calculator annotation "<<48/2=24>>"; the result is what follows the last "=".
_ANNOTATION = re.compile(r"<<([^<>]*)=([^<>=]*)>>")
# The result echoed right after an annotation: "24", "-3", "0.5", ".5", "22,500".
_ECHO = re.compile(r"-?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)")
_PLAIN_NUMBER = re.compile(r"-?(?:\d+(?:\.\d+)?|\.\d+)")
_OFFSETS = (-3, -2, -1, 1, 2, 3)


def _source(path: str, row: int) -> str:
    return f"{Path(path).name}:{row}"


def _first_error(labels: list) -> int:
    # False (bool rows) and -1 (PRM800K ratings) both mean wrong
    return next((i for i, x in enumerate(labels) if x is False or x == -1), -1)


# --- GSM8K with synthetic arithmetic errors --------------------------------------------------

def _gsm8k_steps(path: str, n: int, row: dict) -> list[str]:
    """The solution lines before ``#### N``, then "The answer is N." so that the final answer is
    a step of its own (a PRM then also learns to judge the outcome)."""
    question, answer = row.get("question"), row.get("answer")
    if not (isinstance(question, str) and question.strip() and isinstance(answer, str)):
        raise DataError(f'{path}: row {n}: expected "question" and "answer" strings')
    lines = [line.strip() for line in answer.split("\n") if line.strip()]  # a few answers have blank lines
    if not lines or not lines[-1].startswith("####") or not lines[-1][4:].strip():
        raise DataError(f'{path}: row {n}: the answer does not end with a "#### N" line')
    if any(line.startswith("####") for line in lines[:-1]):
        raise DataError(f'{path}: row {n}: the answer has more than one "####" line')
    return lines[:-1] + [f"The answer is {lines[-1][4:].strip()}."]


def _corruptible(step: str) -> list[re.Match]:
    """The annotations of a step whose numeric result is repeated right after them in the text:
    those can be changed consistently (in GSM8K that is all but a handful, e.g. "<<3/4=3/4>>")."""
    out = []
    for m in _ANNOTATION.finditer(step):
        echo = _ECHO.match(step, m.end())
        result = m.group(2).strip()
        if (_PLAIN_NUMBER.fullmatch(result) and echo
                and Decimal(echo.group().replace(",", "")) == Decimal(result)):
            out.append(m)
    return out


def _corrupt(step: str, m: re.Match, rng: random.Random) -> str:
    """The step with the annotation's result, and its echo in the text, moved by a small nonzero
    offset. Decimal keeps the written precision: 24 -> 25, 0.2 -> 1.2, 22,500 -> 22,501."""
    result = Decimal(m.group(2).strip())
    offset = rng.choice(_OFFSETS)
    if result >= 0 > result + offset:  # a negative count would be too easy to spot
        offset = -offset
    echo = _ECHO.match(step, m.end())
    shown = Decimal(echo.group().replace(",", "")) + offset  # the echo's own precision: "24.00" -> "25.00"
    shown = format(shown, ",") if "," in echo.group() else str(shown)
    return f"{step[:m.start()]}<<{m.group(1)}={result + offset}>>{shown}{step[echo.end():]}"


def gsm8k_step_rows(path: str, seed: int = 0, corrupt_share: float = 0.5,
                    limit: int | None = None) -> tuple[list[dict], dict]:
    """PRM rows from a GSM8K file (rows ``{"question", "answer"}``) and their counts.

    Steps are the solution lines (calculator annotations kept) plus "The answer is N.". A share
    ``corrupt_share`` of the solutions, drawn with ``random.Random(seed)``, gets one step with a
    wrong calculator result: labels are True before it, False from it on. One draw is made per
    row in file order, so a ``limit`` run gives the first rows of the full run. Solutions
    without a changeable annotation stay all-correct; ``no_annotation`` counts them (drawn or
    not). Counts: ``{"rows", "corrupted", "all_correct", "no_annotation"}``.
    """
    if not 0.0 <= corrupt_share <= 1.0:
        raise ConfigError(f"corrupt_share must be between 0 and 1, got {corrupt_share}")
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be 0 or more, got {limit}")
    rng = random.Random(seed)
    rows, counts = [], {"rows": 0, "corrupted": 0, "all_correct": 0, "no_annotation": 0}
    for n, row in iter_rows(path):
        if limit is not None and len(rows) >= limit:
            break
        steps = _gsm8k_steps(path, n, row)
        candidates = [i for i, s in enumerate(steps) if _corruptible(s)]
        first_error = -1
        if rng.random() < corrupt_share and candidates:
            first_error = rng.choice(candidates)
            steps[first_error] = _corrupt(steps[first_error], rng.choice(_corruptible(steps[first_error])), rng)
        counts["no_annotation"] += not candidates
        counts["corrupted" if first_error >= 0 else "all_correct"] += 1
        labels = [first_error < 0 or i < first_error for i in range(len(steps))]
        rows.append({"prompt": row["question"].strip() + "\n", "steps": steps, "labels": labels,
                     "first_error": first_error, "source": _source(path, n)})
    counts["rows"] = len(rows)
    return rows, counts


def prm_rows(source: str, fmt: str = "gsm8k", seed: int = 0, corrupt_share: float = 0.5,
             limit: int | None = None) -> tuple[list[dict], str]:
    """``rewardlab prm-data``: PRM rows from ``source`` (see :class:`rewardlab.config.PrmDataConfig`)
    and a one-line summary of them."""
    if fmt == "gsm8k":
        rows, counts = gsm8k_step_rows(source, seed, corrupt_share, limit)
        return rows, (f"{counts['corrupted']} with a wrong step, {counts['all_correct']} all correct "
                      f"({counts['no_annotation']} had no calculator result to change)")
    reader = {"prm800k": read_prm800k, "math-shepherd": read_math_shepherd, "champ": read_champ}[fmt]
    rows = reader(source or None)
    wrong = sum(r.get("label", r.get("first_error", -1)) != -1 for r in rows)
    return rows, f"{wrong} with a wrong step, {len(rows) - wrong} all correct"


def write_prm_rows(output: str, source: str, fmt: str = "gsm8k", seed: int = 0, corrupt_share: float = 0.5,
                   limit: int | None = None) -> tuple[int, str]:
    """:func:`prm_rows` written to ``output`` as JSONL: how many rows, and their summary."""
    rows, summary = prm_rows(source, fmt, seed, corrupt_share, limit)
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    except OSError as e:
        raise ConfigError(f"{output}: cannot write: {e.strerror or e}") from None
    return len(rows), summary


# --- PRM800K and Math-Shepherd ---------------------------------------------------------------

def _completion(path: str, n: int, c) -> tuple[str, int | None]:
    if not (isinstance(c, dict) and isinstance(c.get("text"), str) and c.get("rating") in (-1, 0, 1, None)):
        raise DataError(f'{path}: row {n}: a completion must be {{"text": str, "rating": -1, 0, 1 or null}}')
    return c["text"], c["rating"]


def read_prm800k(path: str) -> list[dict]:
    """PRM800K labels (``phase*_{train,test}.jsonl`` of github.com/openai/prm800k) as PRM rows
    with the human ratings as labels: +1 good, 0 neutral (correct but no progress), -1 wrong.

    The trajectory is rebuilt step by step as the dataset's README does: the completion at
    ``chosen_completion``; where that is null, the labeler's own ``human_completion`` (written
    because all candidates were wrong, so labelled +1); where both are null, labelling stopped
    at this step (phase 2 stops at the first error), so the first completion rated -1 ends the
    row, if there is one. A chosen but unrated completion also ends the row. Rows marked
    ``bad_problem`` and rows with no labelled step are left out.
    """
    rows = []
    for n, row in iter_rows(path):
        question, label = row.get("question"), row.get("label")
        if not (isinstance(question, dict) and isinstance(question.get("problem"), str)):
            raise DataError(f'{path}: row {n}: expected "question": {{"problem": str, ...}}')
        if not (isinstance(label, dict) and isinstance(label.get("steps"), list)):
            raise DataError(f'{path}: row {n}: expected "label": {{"steps": [...], ...}}')
        if label.get("finish_reason") == "bad_problem":
            continue
        steps, ratings = [], []
        for step in label["steps"]:
            comps = step.get("completions") if isinstance(step, dict) else None
            if not isinstance(comps, list):
                raise DataError(f'{path}: row {n}: step {len(steps) + 1} has no "completions" list')
            comps = [_completion(path, n, c) for c in comps]
            chosen, human = step.get("chosen_completion"), step.get("human_completion")
            if chosen is not None:
                if not (isinstance(chosen, int) and 0 <= chosen < len(comps)):
                    raise DataError(f"{path}: row {n}: chosen_completion {chosen!r} is not a completion index")
                text, rating = comps[chosen]
                if rating is None:
                    break
            elif human is not None:
                text = human.get("text") if isinstance(human, dict) else human
                if not isinstance(text, str):
                    raise DataError(f'{path}: row {n}: human_completion must be a string or {{"text": str}}')
                rating = 1
            else:
                wrong = [t for t, r in comps if r == -1]
                if wrong:
                    steps.append(wrong[0])
                    ratings.append(-1)
                break
            steps.append(text)
            ratings.append(rating)
        if steps:
            rows.append({"prompt": question["problem"].strip() + "\n", "steps": steps, "labels": ratings,
                         "first_error": _first_error(ratings), "source": _source(path, n)})
    return rows


_STEP_TAG = "ки"
_STEP_NUMBER = re.compile(r"^Step \d+:\s*")


def read_math_shepherd(path: str) -> list[dict]:
    """Math-Shepherd rows (``{"input", "label"}``: the question, then "Step 1: ... ки\\nStep 2:
    ... ки"; ``label`` is the same text with "+" or "-" where each "ки" is) as PRM rows with
    bool labels. The question is the text before the first "Step 1:"; steps lose their
    "Step k:" prefix, since the row format numbers them already."""
    rows = []
    for n, row in iter_rows(path):
        text, tagged = row.get("input"), row.get("label")
        if not (isinstance(text, str) and isinstance(tagged, str)):
            raise DataError(f'{path}: row {n}: expected "input" and "label" strings')
        pieces = text.split(_STEP_TAG)
        if len(pieces) < 2 or pieces[-1].strip():
            raise DataError(f'{path}: row {n}: "input" must end each step with "{_STEP_TAG}"')
        start = pieces[0].find("Step 1:")
        if start < 0:
            raise DataError(f'{path}: row {n}: no "Step 1:" in "input"')
        # read each +/- where the input has its tag: the label must be the input with tags replaced
        labels, pos = [], 0
        for piece in pieces[:-1]:
            end = pos + len(piece)
            if tagged[pos:end] != piece or tagged[end:end + 1] not in ("+", "-"):
                raise DataError(f'{path}: row {n}: "label" is not "input" with "+" or "-" in place of each "{_STEP_TAG}"')
            labels.append(tagged[end] == "+")
            pos = end + 1
        pieces[0] = pieces[0][start:]
        steps = [_STEP_NUMBER.sub("", p.strip()) for p in pieces[:-1]]
        rows.append({"prompt": text[:start].strip() + "\n", "steps": steps, "labels": labels,
                     "first_error": _first_error(labels), "source": _source(path, n)})
    return rows


# --- CHAMP first-wrong-step annotations --------------------------------------------------------

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def _champ_file() -> Path:
    if importlib.util.find_spec("champ_dataset") is None:
        raise DataError("the CHAMP annotations need the optional package champ-dataset: pip install champ-dataset")
    from importlib.resources import files

    return Path(str(files("champ_dataset") / "dataset_files" / "v0.json"))


def read_champ(path: str | None = None) -> list[dict]:
    """CHAMP (Mao et al. 2024) first-wrong-step annotations as ProcessBench-style rows
    ``{"problem", "steps", "label", "source"}``; ``path`` defaults to the ``v0.json`` of the
    installed package ``champ-dataset``.

    Each problem has two annotated model solutions (``fws_annotations``): the solution text and
    the character span of its first wrong step, or no span when it has no error. Steps are the
    solution's paragraphs (split at blank lines, as ProcessBench does); the label is the
    paragraph where the span starts, -1 without a span. An annotation whose span lies outside
    its text is skipped. ``source`` is "champ:PROBLEM_ID:MODEL|PROMPT".
    """
    path = str(path or _champ_file())
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None
    problems = data.get("problems") if isinstance(data, dict) else None
    if not isinstance(problems, dict):
        raise DataError(f'{path}: expected an object with "problems" (the CHAMP v0.json layout)')
    rows = []
    for pid, p in problems.items():
        text = p.get("_text") or (p.get("_raw_text") or "").replace("@@", "")  # "@@" marks concept links
        notes = p.get("fws_annotations") or {}
        if not text or not isinstance(notes, dict):
            raise DataError(f"{path}: problem {pid}: expected problem text and fws_annotations")
        for key, note in notes.items():
            solution, start = (note.get("text"), note.get("start_idx")) if isinstance(note, dict) else (None, None)
            if not isinstance(solution, str):
                raise DataError(f"{path}: problem {pid}: annotation {key} has no solution text")
            # (start, end) character spans of the non-blank paragraphs
            spans, at = [], 0
            for m in [*_PARAGRAPH_BREAK.finditer(solution), None]:
                end = m.start() if m else len(solution)
                if solution[at:end].strip():
                    spans.append((at, end))
                at = m.end() if m else at
            label = -1
            if start is not None:
                if not isinstance(start, int) or not 0 <= start < len(solution):
                    continue
                # a span starting in the break between paragraphs belongs to the next one
                label = next((i for i, (_, end) in enumerate(spans) if start < end), None)
                if label is None:
                    continue
            rows.append({"problem": text.strip(), "steps": [solution[a:b].strip() for a, b in spans],
                         "label": label, "source": f"champ:{pid}:{key}"})
    return rows
