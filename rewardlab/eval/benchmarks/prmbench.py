"""PRMBench (Song et al. 2025, "PRMBench: A Fine-grained and Challenging Benchmark for
Process-Level Reward Models"): does a process reward model find the wrong steps?

Rows (the released ``mr_eval/tasks/prmtest_classified/data/*.jsonl`` of ssmisya/PRMBench, all
25 files together): ``modified_question``, ``modified_process`` (the steps scored),
``error_steps`` (1-indexed), ``classification``, ``idx``, and ``original_question`` /
``original_process`` (the solution before an error was put in).

The benchmark's own rule, read from ``mr_eval/tasks/prmtest_classified/task.py``
(``load_data_function``, ``evaluate_function``, ``eval_on_hallucination_step``) and the notebook
that forms its tables (``mr_visualize/eval_res_view/draw_tabs/form_latex_strs.ipynb``,
``get_prmscore_from_current_res_dict``):

- a step is judged valid when its score is strictly above the threshold (0.5, as the
  benchmark's PRM wrappers; ``eval --threshold`` sets it);
- positive class = valid step: a step outside ``error_steps`` judged valid is a TP, judged
  invalid an FN; an error step judged invalid a TN, judged valid an FP. Counts are pooled over
  the steps of all items (overall) and of each classification; a step without a score (cut by
  max_length) is not counted, as the benchmark does not count a step its model did not label,
  and error steps past the last step are never counted (100 such rows in the release);
- F1 = 2PR/(P+R) on valid steps, negative F1 the same on error steps (a zero denominator
  gives 0, and a score is clamped at 0, as the notebook does);
- PRMScore = 0.5 F1 + 0.5 negative F1 per classification (``multi_solutions``, which has no
  error steps: F1 only); the overall PRMScore from the counts pooled over every item
  (``multi_solutions`` included), not a mean of the classifications;
- groups, each the plain mean of its classifications' PRMScores: Simplicity (redundency,
  circular), Soundness (counterfactual, step_contradiction, domain_inconsistency, confidence),
  Sensitivity (missing_condition, deception, multi_solutions);
- the first time a ``redundency`` row's ``idx`` is seen, its original question and steps are
  scored too, as an item with no error step in a ``correct`` bucket of its own, which is
  reported apart and enters no PRMScore; items are told apart by (classification, idx) and a
  repeated one is counted once (the first: multi_solutions repeats 5 ids).

Steps that start with "Step N. " or "N. " have that prefix removed before scoring, as the
benchmark's model wrappers remove it (``remove_step_prefix``). Reported as fractions (the
benchmark's tables print them x 100).
"""

from __future__ import annotations

import re
from collections import defaultdict

from ...data.text import Text
from ...errors import DataError

GROUPS = {"Simplicity": ("redundency", "circular"),
          "Soundness": ("counterfactual", "step_contradiction", "domain_inconsistency", "confidence"),
          "Sensitivity": ("missing_condition", "deception", "multi_solutions")}
CATEGORY, KNOWN = "classification", tuple(c for members in GROUPS.values() for c in members)
HEADLINE = "prmscore"
THRESHOLD = 0.5  # the benchmark's PRM wrappers: valid when the step score is > 0.5
STEPS = True  # scored step by step: a process reward model's step scores
F1_ONLY = ("multi_solutions",)  # no error steps: negative F1 is undefined
PREFIX = re.compile(r"^(Step\s*\d+\.\s*|\d+\.\s*)", re.IGNORECASE)


def category_of(row: dict, path: str = "") -> str:
    return str(row.get("classification"))


def read(detail: dict) -> list[float]:
    return detail["step_rewards"]


def _steps(row: dict, key: str, where: str) -> list[str]:
    steps = row.get(key)
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise DataError(f"{where}: prmbench rows need '{key}' as a non-empty list of strings")
    return [PREFIX.sub("", s) for s in steps]


def texts(row: dict, where: str, render) -> list[Text]:
    """The modified solution; for a ``redundency`` row also the original one (the benchmark's
    ``correct`` item), so every row's texts are known from the row alone."""
    for key in ("modified_question", "classification"):
        if not isinstance(row.get(key), str):
            raise DataError(f"{where}: prmbench rows need '{key}' as a string")
    errors = row.get("error_steps")
    if not isinstance(errors, list) or not all(isinstance(e, int) and not isinstance(e, bool) and e >= 1
                                               for e in errors):
        raise DataError(f"{where}: prmbench 'error_steps' must be a list of 1-indexed step numbers, got {errors!r}")
    out = [render.steps(row["modified_question"], _steps(row, "modified_process", where))]
    if row["classification"] == "redundency":
        if not isinstance(row.get("original_question"), str):
            raise DataError(f"{where}: prmbench redundency rows need 'original_question' as a string")
        out.append(render.steps(row["original_question"], _steps(row, "original_process", where)))
    return out


def counts(scores: list[float], error_steps: list[int], threshold: float) -> dict[str, int]:
    """TP/FP/TN/FN of one item: valid steps are the positive class; unscored steps (cut off by
    max_length: NaN, or None through JSON) are left out and counted."""
    wrong = {e - 1 for e in error_steps}
    c = {"tp": 0, "fp": 0, "tn": 0, "fn": 0, "unscored": 0}
    for i, s in enumerate(scores):
        if s is None or s != s:
            c["unscored"] += 1
            continue
        valid = s > threshold
        c[("fp" if valid else "tn") if i in wrong else ("tp" if valid else "fn")] += 1
    return c


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def f1s(c: dict[str, int]) -> dict[str, float]:
    """F1 on valid steps and on error steps (negative F1) from pooled counts, clamped at 0."""
    p, r = _ratio(c["tp"], c["tp"] + c["fp"]), _ratio(c["tp"], c["tp"] + c["fn"])
    np_, nr = _ratio(c["tn"], c["tn"] + c["fn"]), _ratio(c["tn"], c["tn"] + c["fp"])
    return {"f1": max(0.0, _ratio(2 * p * r, p + r)), "negative_f1": max(0.0, _ratio(2 * np_ * nr, np_ + nr))}


def prmscore(c: dict[str, int], f1_only: bool = False) -> float:
    f = f1s(c)
    return f["f1"] if f1_only else 0.5 * f["f1"] + 0.5 * f["negative_f1"]


def _add(into: dict, c: dict) -> None:
    for k, v in c.items():
        into[k] += v


def score(rows: list[dict], rewards: list[list[list[float]]], path: str = "", threshold: float = THRESHOLD) -> dict:
    """``{"prmscore", "f1", "negative_f1", "categories": {classification: PRMScore}, "groups",
    "correct": {...}, "n", "steps_unscored", "threshold"}``."""
    total = defaultdict(int)
    by: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    seen, n = set(), 0
    for row, scored in zip(rows, rewards):
        cls, idx = row["classification"], str(row.get("idx"))
        if (cls, idx) in seen:
            continue
        seen.add((cls, idx))
        if cls == "redundency" and ("correct", idx) not in seen:
            seen.add(("correct", idx))
            _add(by["correct"], counts(scored[1], [], threshold))
        c = counts(scored[0], row["error_steps"], threshold)
        _add(by[cls], c), _add(total, c)
        n += 1
    categories = {cls: prmscore(c, cls in F1_ONLY) for cls, c in sorted(by.items()) if cls != "correct"}
    groups = {g: sum(categories[c] for c in members) / len(members)
              for g, members in GROUPS.items() if all(c in categories for c in members)}
    correct = {**f1s(by["correct"]), "items": len(seen) - n} if "correct" in by else None
    return {"prmscore": prmscore(total), **f1s(total), "categories": categories, "groups": groups,
            "correct": correct, "n": n, "steps_unscored": total["unscored"], "threshold": threshold,
            "counts": {k: total[k] for k in ("tp", "fp", "tn", "fn")}}


def by_category(rows: list[dict], rewards: list, path: str = "") -> dict[str, float]:
    return score(rows, rewards, path)["categories"]


def format_scores(m: dict) -> str:
    lines = [f"PRMScore {m['prmscore']:.4f}  F1 {m['f1']:.4f}  negative F1 {m['negative_f1']:.4f}  "
             f"({m['n']} items, step valid when score > {m['threshold']:g}"
             + (f"; {m['steps_unscored']} steps cut by max_length not counted" if m["steps_unscored"] else "") + ")"]
    lines += [f"  {g:<12} {v:.4f}" for g, v in m["groups"].items()]
    lines += [f"    {c:<22} {v:.4f}" for c, v in m["categories"].items()]
    if m.get("correct"):
        lines.append(f"  correct originals (not in PRMScore): F1 {m['correct']['f1']:.4f} on {m['correct']['items']} items")
    return "\n".join(lines)
