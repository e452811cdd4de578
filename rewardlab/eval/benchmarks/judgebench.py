"""JudgeBench (Tan et al. 2024, "JudgeBench: A Benchmark for Evaluating LLM-based Judges").

Rows (the released ``data/dataset=judgebench,response_model=*.jsonl``): ``question``,
``response_A``, ``response_B``, ``label`` ("A>B" or "B>A": which response is objectively
correct) and ``source`` (its category by prefix: mmlu-pro -> knowledge, livebench-reasoning ->
reasoning, livebench-math -> math, livecodebench -> coding).

The benchmark's own rule (``utils/metrics.py``, ``compute_final_metrics`` with both orders): a
judge decides twice, the second time with the responses swapped; each decision that matches the
label counts +1, each that matches the opposite -1, a tie 0; a pair is correct when the sum is
positive. Accuracy is the share of correct pairs, overall and per category (the source
prefixes of ``run_judge.py``). A scalar reward model decides by comparing r(A) and r(B), the
same in both orders: a pair is correct when the correct response's reward is higher, and a tie
of rewards is not correct. A trained pairwise judge (``--kind judge``) gives each response its net
vote over both orders (+1 per order it wins, -1 per order it loses, 0 for [[C]]), which the same
comparison turns into exactly the benchmark's rule. Reported as fractions (the benchmark prints percentages). Each
response is scored after the question and a newline.
"""

from __future__ import annotations

from collections import defaultdict

from ...data.text import Text
from ...errors import DataError

CATEGORIES = {"mmlu-pro": "knowledge", "livebench-reasoning": "reasoning", "livebench-math": "math",
              "livecodebench": "coding"}
VOTES = True  # a pairwise judge's net votes over both orders stand in for rewards (the rule below)
CATEGORY, KNOWN = "source", tuple(CATEGORIES.values())  # a source outside them: eval --outside-categories
HEADLINE = "overall"  # the benchmark's own score
LABELS = ("A>B", "B>A")


def category_of(row: dict, path: str = "") -> str:
    source = str(row.get("source", ""))
    return next((name for prefix, name in CATEGORIES.items() if source.startswith(prefix)), source)


def texts(row: dict, where: str, render=None) -> list[Text]:
    for key in ("question", "response_A", "response_B", "source"):
        if not isinstance(row.get(key), str):
            raise DataError(f"{where}: judgebench rows need '{key}' as a string")
    if row.get("label") not in LABELS:
        raise DataError(f"{where}: judgebench 'label' must be \"A>B\" or \"B>A\", got {row.get('label')!r}")
    question = row["question"] if row["question"].endswith(("\n", " ")) else row["question"] + "\n"
    return [Text(question, row["response_A"]), Text(question, row["response_B"])]


def decision(reward_a: float, reward_b: float) -> str:
    return "A>B" if reward_a > reward_b else "B>A" if reward_b > reward_a else "A=B"


def flip(d: str) -> str:
    return {"A>B": "B>A", "B>A": "A>B"}.get(d, d)


def pair_correct(label: str, first: str, second_flipped: str) -> bool:
    """The benchmark's net vote over the two orders (the second decision already flipped back)."""
    vote = sum((d == label) - (d == flip(label)) for d in (first, second_flipped))
    return vote > 0


def score(rows: list[dict], rewards: list[list[float]], path: str = "") -> dict:
    """``{"overall": accuracy, "categories": {name: accuracy}, "n": pairs, "ties": reward ties}``."""
    right: dict[str, list[bool]] = defaultdict(list)
    ties = 0
    for row, (a, b) in zip(rows, rewards):
        d = decision(a, b)
        ties += d == "A=B"
        right[category_of(row)].append(pair_correct(row["label"], d, d))  # a reward ignores the order
    every = [x for v in right.values() for x in v]
    return {"overall": sum(every) / len(every) if every else 0.0,
            "categories": {c: sum(v) / len(v) for c, v in sorted(right.items())}, "n": len(every), "ties": ties}


def by_category(rows: list[dict], rewards: list[list[float]], path: str = "") -> dict[str, float]:
    return score(rows, rewards, path)["categories"]


def format_scores(m: dict) -> str:
    lines = [f"overall      {m['overall']:.4f}  ({m['n']} pairs, {m['ties']} reward ties counted wrong)"]
    lines += [f"  {name:<11} {value:.4f}" for name, value in m["categories"].items()]
    return "\n".join(lines)
