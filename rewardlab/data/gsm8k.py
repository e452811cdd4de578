"""GSM8K model solutions (the verifier data of Cobbe et al. 2021) as reward-model rows.

The file ``gsm8k/model_solutions.jsonl.gz`` has one row per test question: ``question``,
``ground_truth`` and four graded solutions ``{"solution", "is_correct"}`` by the 6B and 175B
GPT-3 generators (finetuned, and the samples used for verification). A solution is steps with
calculator annotations (``16 - 3 = <<16-3=13>>13 eggs``), one per line, ending in a line
``A: 18``; a few were cut off before it. This module turns the file into K-wise groups (four
completions per question, scored by correctness) for ranking and best-of-4 evaluation, or into
one labelled row per solution for outcome reward models, and extracts each final answer for
the majority-vote baseline. It imports nothing from rewardlab, so it runs standalone.

    python -m rewardlab.data.gsm8k --input model_solutions.jsonl.gz --output groups.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import json
import re

SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
PROMPT_FORMAT = "Question: {question}\nAnswer:"

# A number as written in a solution: "1,234", "-2.5", "$5.00". The sign is a minus only where
# it cannot be subtraction (not right after a digit or a bracket, as in "16-3" or "(2)-1").
_NUMBER = re.compile(r"(?<![\d)])-?\$?\s*(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def final_answer(solution: str) -> str | None:
    """The final numeric answer of a GSM8K-style solution: the text after the last ``####`` if
    there is one (the GSM8K reference format), else the last number in the text (``A: 18`` in
    model_solutions). Normalised so that equal numbers compare equal: no commas, ``$`` or
    spaces, no trailing decimal zeros ("1,234" -> "1234", "$5.00" -> "5", "2.50" -> "2.5").
    None if no number."""
    text = solution.rsplit("####", 1)[1] if "####" in solution else solution
    numbers = _NUMBER.findall(text)
    if not numbers:
        return None
    answer = re.sub(r"[,$\s]", "", numbers[-1])
    if "." in answer:
        answer = answer.rstrip("0").rstrip(".")
    return "0" if answer == "-0" else answer


def _read(path: str) -> list[dict]:
    """Rows of a .jsonl or .jsonl.gz file, checked; ValueError names the file and line."""
    opener = gzip.open if str(path).endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                _check_row(row)
            except ValueError as e:  # json.JSONDecodeError is one
                raise ValueError(f"{path}: line {line_no}: {e}") from None
            rows.append(row)
    return rows


def _check_row(row) -> None:
    """A question (text) with a graded solution (text, bool) for every solver."""
    if not isinstance(row, dict) or not isinstance(row.get("question"), str):
        raise ValueError('expected an object with a "question" string')
    for name in SOLVERS:
        sol = row.get(name)
        if not (isinstance(sol, dict) and isinstance(sol.get("solution"), str)
                and isinstance(sol.get("is_correct"), bool)):
            raise ValueError(f'"{name}" must be {{"solution": str, "is_correct": bool}}')


def solution_groups(path: str) -> list[dict]:
    """One row per question, in file order: ``prompt``, the four ``completions`` (SOLVERS
    order), ``scores`` (1.0 correct / 0.0 not), final ``answers`` and ``question_id`` (0-based row)."""
    groups = []
    for i, row in enumerate(_read(path)):
        solutions = [row[name]["solution"] for name in SOLVERS]
        groups.append({"prompt": PROMPT_FORMAT.format(question=row["question"]),
                       "completions": [" " + s.strip() for s in solutions],
                       "scores": [1.0 if row[name]["is_correct"] else 0.0 for name in SOLVERS],
                       "answers": [final_answer(s) for s in solutions],
                       "question_id": i})
    return groups


def solution_rows(path: str) -> list[dict]:
    """One row per solution (4 per question, SOLVERS order): ``prompt``, ``completion``,
    ``label`` (1 correct, 0 not) and ``question_id``, for outcome reward models."""
    return [{"prompt": g["prompt"], "completion": c, "label": int(s), "answer": a, "question_id": g["question_id"]}
            for g in solution_groups(path) for c, s, a in zip(g["completions"], g["scores"], g["answers"])]


def solution_step_rows(path: str) -> list[dict]:
    """One row per solution with its lines as ``steps`` and the outcome as ``correct``, for
    best-of-N with a process reward model (no step labels: only the final answer is graded)."""
    return [{"prompt": r["prompt"], "steps": [x.strip() for x in r["completion"].split("\n") if x.strip()],
             "correct": bool(r["label"]), "answer": r["answer"], "question_id": r["question_id"]}
            for r in solution_rows(path)]


def main(argv: list[str] | None = None) -> None:
    """Write questions A..B-1 of a model_solutions file as JSONL groups (or per-solution rows)."""
    ap = argparse.ArgumentParser(prog="python -m rewardlab.data.gsm8k", description=__doc__.split("\n")[0])
    ap.add_argument("--input", required=True, help="model_solutions.jsonl(.gz)")
    ap.add_argument("--output", required=True, help="JSONL file to write")
    ap.add_argument("--per-solution", action="store_true", help="one row per solution (ORM labels)")
    ap.add_argument("--steps", action="store_true", help="one row per solution split into steps at newlines, "
                    "with its outcome as 'correct' (best-of-N with a process reward model)")
    ap.add_argument("--start", type=int, default=0, help="first question (0-based)")
    ap.add_argument("--stop", type=int, default=None, help="stop before this question")
    args = ap.parse_args(argv)
    try:
        rows = (solution_step_rows if args.steps else solution_rows if args.per_solution else solution_groups)(args.input)
    except (OSError, ValueError) as e:
        ap.exit(1, f"error: {e}\n")
    # question ids are row numbers, so the slice selects whole questions in either mode
    stop = float("inf") if args.stop is None else args.stop
    rows = [r for r in rows if args.start <= r["question_id"] < stop]
    with open(args.output, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    print(f"wrote {len(rows)} rows to {args.output}")


if __name__ == "__main__":
    main()
