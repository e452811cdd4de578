"""RewardMATH (Kim et al. 2024, "Evaluating Robustness of Reward Models for Mathematical
Reasoning"): one correct solution against nine wrong ones per MATH problem.

Rows (``dataset/benchmark/RewardMATH_direct.json`` of kimsh0507/RewardMATH_official, and the
full set on the Hub in the same layout): one solution each, ``problem``, ``eval_solution`` (its
steps), ``solution_reference``, ``subject``, ``level``, ``problem_id``. Rows of one problem
share ``problem_id`` (or, without it, the ``problem`` text).

The benchmark's own rule, read from ``src/evaluation/eval.py`` (``RewardMATHEvaluation``:
``processing_results``, ``_calculate_final_reward``, ``_calculate_MRR``, ``get_results``):

- the correct solution is the one whose ``solution_reference`` is ``human_to_GPT-4``; the
  others (9 in the release) are the rejected ones;
- accuracy: the correct solution scores strictly above every rejected one; "with ties": at
  least as high;
- MRR: 1 / the rank of the correct solution when all are sorted by score, ties ranked
  pessimistically (a rejected solution with the same score comes first): rank = 1 + the number
  of rejected solutions scoring at least as high;
- each is a plain mean over problems (the benchmark prints it x 100, rounded to 3 places);
- a process reward model's step scores are reduced per solution with each of the benchmark's
  reducers (min, max, prod, geometric_mean, mean, mean_logit = sigmoid of the mean logit,
  mean_odd = max(0, mean of p / (1 - p)), last), each reported; the headline is the reward the
  model itself gives (its saved step aggregate).

A model without steps reads each solution as its steps joined by newlines after the problem.
"""

from __future__ import annotations

import math
from collections import defaultdict

from ...data.text import Text
from ...errors import DataError

CORRECT = "human_to_GPT-4"
SUBJECTS = ("Algebra", "Counting & Probability", "Geometry", "Intermediate Algebra", "Number Theory", "Prealgebra",
            "Precalculus")
CATEGORY, KNOWN = "subject", SUBJECTS
HEADLINE = "accuracy"


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


REDUCERS = {
    "min": min, "max": max, "prod": math.prod, "last": lambda s: s[-1],
    "geometric_mean": lambda s: math.prod(s) ** (1 / len(s)),
    "mean": lambda s: sum(s) / len(s),
    "mean_logit": lambda s: 1 / (1 + math.exp(-sum(map(_logit, s)) / len(s))),
    "mean_odd": lambda s: max(0.0, sum(p / (1 - p) if p < 1 else 1e12 for p in s) / len(s)),
}


def _known(x) -> bool:
    """A score that was read: not None (cut off, through JSON) and not NaN."""
    return x is not None and x == x


def category_of(row: dict, path: str = "") -> str | None:
    return row.get("subject")


def read(detail: dict):
    """The reward, and a process reward model's step scores for the benchmark's reducers."""
    steps = detail.get("step_rewards")
    return {"reward": detail["reward"], "steps": steps} if steps is not None else detail["reward"]


def texts(row: dict, where: str, render) -> list[Text]:
    if not isinstance(row.get("problem"), str) or not isinstance(row.get("solution_reference"), str):
        raise DataError(f"{where}: rewardmath rows need 'problem' and 'solution_reference' as strings")
    steps = row.get("eval_solution")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise DataError(f"{where}: rewardmath 'eval_solution' must be a non-empty list of step strings")
    return [render.steps(row["problem"], steps)]


def problem_metrics(correct: list[float], rejected: list[float]) -> dict[str, float]:
    """One problem: accuracy, accuracy with ties and reciprocal rank (ties pessimistic)."""
    top = max(correct)
    return {"accuracy": float(min(correct) > max(rejected)), "accuracy_with_ties": float(min(correct) >= max(rejected)),
            "mrr": 1.0 / (1 + sum(r >= top for r in rejected))}


def unit_of(row: dict):
    """A problem: its rows are resampled together (eval/benchmarks/__init__.py, ``interval``)."""
    return row.get("problem_id", row["problem"])


def _problems(rows: list[dict]) -> dict:
    by: dict = defaultdict(list)
    for k, row in enumerate(rows):
        by[(row.get("_draw"), unit_of(row))].append(k)
    return by


def _mean(values: list[dict], key: str) -> float:
    return sum(v[key] for v in values) / len(values) if values else 0.0


def _table(rows: list[dict], values: list[float]) -> tuple[dict, dict]:
    per, subjects = [], defaultdict(list)
    for key, idx in _problems(rows).items():
        correct = [values[k] for k in idx if rows[k]["solution_reference"] == CORRECT]
        rejected = [values[k] for k in idx if rows[k]["solution_reference"] != CORRECT]
        if not correct or not rejected:
            raise DataError(f"rewardmath problem {key[1]!r}: needs one solution with solution_reference "
                            f"{CORRECT!r} and rejected ones; it has {len(correct)} and {len(rejected)}")
        m = problem_metrics(correct, rejected)
        per.append(m)
        if (subject := rows[idx[0]].get("subject")) is not None:
            subjects[subject].append(m)
    out = {k: _mean(per, k) for k in ("accuracy", "accuracy_with_ties", "mrr")}
    return out, {s: _mean(v, "accuracy") for s, v in sorted(subjects.items())}


def score(rows: list[dict], rewards: list[list], path: str = "") -> dict:
    """``{"accuracy", "accuracy_with_ties", "mrr", "categories": {subject: accuracy}, "n":
    problems, "reducers": {name: {...}} (process reward models)}``."""
    read_values = [r[0] for r in rewards]
    rewards_only = [v["reward"] if isinstance(v, dict) else v for v in read_values]
    # A solution with no reward read (every step cut by max_length) ranks below every other: the
    # pessimistic choice, counted under "unread".
    unread = sum(not _known(r) for r in rewards_only)
    headline, subjects = _table(rows, [r if _known(r) else -math.inf for r in rewards_only])
    out = {**headline, "categories": subjects, "n": len(_problems(rows)), "solutions": len(rows), "unread": unread}
    if read_values and all(isinstance(v, dict) for v in read_values):
        steps = [[s for s in v["steps"] if _known(s)] for v in read_values]  # steps cut by max_length: not read
        if all(steps):
            out["reducers"] = {name: _table(rows, [f(s) for s in steps])[0] for name, f in REDUCERS.items()}
    return out


def by_category(rows: list[dict], rewards: list, path: str = "") -> dict[str, float]:
    return score(rows, rewards, path)["categories"]


def format_scores(m: dict) -> str:
    lines = [f"accuracy {m['accuracy']:.4f}  with ties {m['accuracy_with_ties']:.4f}  MRR {m['mrr']:.4f}  "
             f"({m['n']} problems, {m['solutions']} solutions; the benchmark prints x 100: "
             f"{100 * m['accuracy']:.3f} / {100 * m['accuracy_with_ties']:.3f} / {100 * m['mrr']:.3f})"]
    if m.get("unread"):
        lines.append(f"  note: {m['unread']} solutions had no reward read (cut by max_length) and rank last")
    lines += [f"  {s:<24} {v:.4f}" for s, v in m["categories"].items()]
    for name, r in (m.get("reducers") or {}).items():
        lines.append(f"  steps reduced by {name:<15} accuracy {r['accuracy']:.4f}  with ties "
                     f"{r['accuracy_with_ties']:.4f}  MRR {r['mrr']:.4f}")
    return "\n".join(lines)
