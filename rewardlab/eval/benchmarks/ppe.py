"""PPE, Preference Proxy Evaluations (Frick et al. 2024, "How to Evaluate Reward Models for
RLHF", arXiv 2410.14872): real human preferences from Chatbot Arena, and best-of-K sets whose
responses are graded for correctness.

Rows (the Hub's ``lmarena-ai/PPE-*`` sets):
- human preference (``PPE-Human-Preference-V1``): ``prompt``, ``response_1``, ``response_2``,
  ``winner`` (``model_a``: response_1 won, ``model_b``: response_2 won; anything else, a tie,
  is not a preference and is counted apart), and optional category columns (any boolean column
  is a category: the rows where it is true; a ``language`` column gives one per language);
- correctness (``PPE-MMLU-Pro-Best-of-K``, MATH, GPQA, IFEval, MBPP-Plus): ``prompt``,
  ``response_1`` .. ``response_K``, ``scores`` (one 0/1 correctness per response) and
  optionally ``sampled_conflict_pairs`` (0-based index pairs, one correct and one wrong).

The official scorer (lmarena/PPE, ``utils/scorers.py``) could not be read here; the metrics
are implemented from the paper, which defines them:
- human preference accuracy: the share of preference rows whose human-preferred response gets
  the higher reward (a reward tie counts wrong, as in every other benchmark here), overall and
  per category (paper, section 3);
- correctness, pairwise accuracy: over ``sampled_conflict_pairs`` (all correct x wrong pairs
  when a row has none), the share where the correct response scores higher (paper, 4.2);
- best-of-K: for K = 1..N, the expected correctness of the response the reward model picks
  from a uniformly random K-subset of a row's responses, computed exactly (a reward tie shares
  the pick), beside the oracle (any correct response in the subset) and random (the mean
  correctness); reported as the curve, its value at K = N (``end``) and its maximum (``max``)
  (paper, 4.2: "best-of-K curves", "end score", "max achieved");
- ROC AUC of the rewards for a correct response (ties count half) and the Brier score of
  sigmoid(reward) against correctness (paper, 4.2 "Brier"; it depends on the reward's scale,
  and a Bradley-Terry reward's sigmoid is a probability only for differences).
The headline ``accuracy`` is the human preference accuracy on a human-preference file and the
pairwise accuracy on a correctness file.
"""

from __future__ import annotations

import math
from collections import defaultdict

from ...data.text import Text
from ...errors import DataError

CATEGORY, KNOWN = "category", ()  # categories are the rows' own boolean columns: nothing to check
HEADLINE = "accuracy"
CONVERSATIONS = True
WINNERS = {"model_a": 0, "model_b": 1}


def category_of(row: dict, path: str = "") -> None:
    return None


def responses(row: dict) -> list[str]:
    out, k = [], 1
    while f"response_{k}" in row:
        out.append(row[f"response_{k}"])
        k += 1
    return out


def is_correctness(row: dict) -> bool:
    return "scores" in row


def texts(row: dict, where: str, render) -> list[Text]:
    answers = responses(row)
    if len(answers) < 2 or not all(isinstance(a, str) for a in answers):
        raise DataError(f"{where}: ppe rows need 'response_1', 'response_2', ... as strings")
    prompt = row.get("prompt")
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if is_correctness(row):
        scores = row["scores"]
        if not isinstance(scores, list) or len(scores) != len(answers) or not all(s in (0, 1, True, False)
                                                                                    for s in scores):
            raise DataError(f"{where}: ppe 'scores' must hold one 0/1 correctness per response ({len(answers)})")
    elif "winner" not in row:
        raise DataError(f"{where}: ppe rows need 'winner' (human preference) or 'scores' (correctness)")
    return [render.text(prompt, a, where, f"response_{k + 1}") for k, a in enumerate(answers)]


def best_of_k(rewards: list[float], correct: list[float]) -> list[float]:
    """Expected correctness of the highest-reward response of a uniformly random K-subset, for
    K = 1..N. The response at rank i (0-based, best first) is the pick with probability
    C(N-1-i, K-1) / C(N, K); tied responses share their group's mean correctness, which is exact
    (the pick within a tie is uniform)."""
    n = len(rewards)
    order = sorted(range(n), key=lambda i: -rewards[i])
    value = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j < n and rewards[order[j]] == rewards[order[i]]:
            j += 1
        mean = sum(correct[order[t]] for t in range(i, j)) / (j - i)
        for t in range(i, j):
            value[t] = mean
        i = j
    return [sum(math.comb(n - 1 - i, k - 1) * value[i] for i in range(n)) / math.comb(n, k) for k in range(1, n + 1)]


def oracle_of_k(correct: list[float]) -> list[float]:
    """P(a random K-subset holds a correct response)."""
    n, wrong = len(correct), sum(1 for c in correct if not c)
    return [1 - math.comb(wrong, k) / math.comb(n, k) for k in range(1, n + 1)]


def roc_auc(pos: list[float], neg: list[float]) -> float | None:
    if not pos or not neg:
        return None
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _mean(v: list) -> float:
    return sum(v) / len(v) if v else 0.0


def _human(rows: list[dict], rewards: list[list[float]]) -> dict:
    right, cats, ties = [], defaultdict(list), 0
    for row, r in zip(rows, rewards):
        if row.get("winner") not in WINNERS:
            ties += 1
            continue
        w = WINNERS[row["winner"]]
        ok = r[w] > r[1 - w]
        right.append(ok)
        for key, value in row.items():
            if value is True:
                cats[key].append(ok)
        if isinstance(row.get("language"), str):
            cats[f"language: {row['language']}"].append(ok)
    return {"accuracy": _mean(right), "pairs": len(right), "human_ties": ties,
            "categories": {c: _mean(v) for c, v in sorted(cats.items())}}


def _correctness(rows: list[dict], rewards: list[list[float]]) -> dict:
    pairs, curves, oracles, pos, neg, brier = [], [], [], [], [], []
    for row, r in zip(rows, rewards):
        c = [float(s) for s in row["scores"]]
        conflicts = row.get("sampled_conflict_pairs") or [(i, j) for i in range(len(c)) for j in range(len(c))
                                                          if c[i] > c[j]]
        for i, j in conflicts:
            good, bad = (i, j) if c[i] > c[j] else (j, i)
            pairs.append(r[good] > r[bad])
        curves.append(best_of_k(r, c))
        oracles.append(oracle_of_k(c))
        pos += [x for x, s in zip(r, c) if s]
        neg += [x for x, s in zip(r, c) if not s]
        brier += [(_sigmoid(x) - s) ** 2 for x, s in zip(r, c)]
    k = min(len(v) for v in curves)  # rows of different sizes: the curve up to the smallest
    curve = [_mean([v[i] for v in curves]) for i in range(k)]
    return {"accuracy": _mean(pairs), "conflict_pairs": len(pairs), "best_of_k": curve,
            "oracle_of_k": [_mean([v[i] for v in oracles]) for i in range(k)], "end": curve[-1], "max": max(curve),
            "random": len(pos) / max(1, len(pos) + len(neg)), "roc_auc": roc_auc(pos, neg),
            "brier": _mean(brier), "categories": {}}


def score(rows: list[dict], rewards: list[list[float]], path: str = "") -> dict:
    """Human preference or correctness metrics (both, under ``human`` and ``correctness``, for a
    mix); the headline ``accuracy`` is the human one when there are human rows."""
    human = [(row, r) for row, r in zip(rows, rewards) if not is_correctness(row)]
    graded = [(row, r) for row, r in zip(rows, rewards) if is_correctness(row)]
    parts = {}
    if human:
        parts["human"] = _human(*map(list, zip(*human)))
    if graded:
        parts["correctness"] = _correctness(*map(list, zip(*graded)))
    head = parts.get("human") or parts["correctness"]
    return {"accuracy": head["accuracy"], "categories": head["categories"], **parts, "n": len(rows)}


def by_category(rows: list[dict], rewards: list[list[float]], path: str = "") -> dict[str, float]:
    return score(rows, rewards, path)["categories"]


def format_scores(m: dict) -> str:
    lines = [f"accuracy {m['accuracy']:.4f}  ({m['n']} rows)"]
    if (h := m.get("human")):
        lines.append(f"  human preference accuracy {h['accuracy']:.4f} on {h['pairs']} pairs"
                     + (f" ({h['human_ties']} rows without a human preference left out)" if h["human_ties"] else ""))
        lines += [f"    {c:<28} {v:.4f}" for c, v in h["categories"].items()]
    if (c := m.get("correctness")):
        auc = "n/a" if c["roc_auc"] is None else f"{c['roc_auc']:.4f}"
        lines.append(f"  correctness: pairwise accuracy {c['accuracy']:.4f} on {c['conflict_pairs']} conflict pairs; "
                     f"best-of-K end {c['end']:.4f}, max {c['max']:.4f} (oracle {c['oracle_of_k'][-1]:.4f}, "
                     f"random {c['random']:.4f}); ROC AUC {auc}; Brier {c['brier']:.4f}")
    return "\n".join(lines)
