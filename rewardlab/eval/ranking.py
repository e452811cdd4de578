"""Metrics for groups of K completions per prompt: K-wise rankings and best-of-K selection.

Pure Python (``math`` and ``collections`` only) so that it runs anywhere, without torch.

Per prompt the input is ``rewards`` (the model's score of each of the K completions) and
``tiers`` (the preference label of each completion: 0 = best tier, 1 = next, ...; equal tiers
are ties; ``None`` = not ranked in a partial top-k ranking, i.e. below every ranked completion
and unordered among the unranked). :func:`tiers_from_scores` and :func:`tiers_from_ranking`
build tiers from per-completion scores (e.g. correctness) or from a best-first ranking.

:func:`group_metrics` returns a flat dict whose keys are a stable interface (JSON output):

- ``n_prompts``: number of prompts.
- ``n_pairs``: strict (better, worse) pairs over all prompts (see :func:`strict_pairs`).
- ``pairwise_accuracy``: fraction of strict pairs with r_better > r_worse (a reward tie is
  wrong, as in RewardBench); None when there is no strict pair.
- ``n_tied_pairs``: pairs labelled as ties (see :func:`tied_pairs`).
- ``tie_accuracy``: fraction of tied pairs with |r_i - r_j| <= ``tie_threshold``; None when
  there is no tied pair. ``tie_threshold``: the threshold used.
- ``kendall_tau``, ``spearman``: Kendall's tau-b and Spearman's rho between the rewards and
  the label order, per prompt, averaged over the ``n_prompts_rank`` prompts where both are
  defined; None when there is none.
- ``top1_accuracy``: fraction of prompts whose highest-reward completion (the first one on
  equal rewards) is in the best tier (the lowest ranked tier: 0 from the helpers below), over
  the prompts with a ranked completion; None when there is none.
- ``best_of_k``, ``random_baseline``, ``oracle``: best-of-K selection by reward, a uniform
  random pick, and "at least one completion is correct"; None unless ``correct`` is given.
- ``majority_vote``: self-consistency (the most frequent final answer); None unless both
  ``correct`` and ``answers`` are given (ties: see :func:`majority_answer`).
"""

from __future__ import annotations

import math
from collections import Counter

from ..data.preference import strict_pairs, tied_pairs, tiers_from_ranking, tiers_from_scores  # noqa: F401 (API)


def _label_values(tiers: list[int | None]) -> list[float]:
    """The label order as numbers, higher = better: -tier, and every unranked completion in
    one bottom tier below all ranked ones."""
    bottom = max((t for t in tiers if t is not None), default=-1) + 1
    return [-(bottom if t is None else t) for t in tiers]


def kendall_tau_b(x: list[float], y: list[float]) -> float | None:
    """Kendall's tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)), with C / D the concordant /
    discordant pairs, n0 = n(n-1)/2 and n1, n2 the pairs tied in x, in y (Kendall 1945).
    None when x or y has fewer than two distinct values."""
    s = untied_x = untied_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = (x[i] > x[j]) - (x[i] < x[j]), (y[i] > y[j]) - (y[i] < y[j])
            s += dx * dy  # +1 concordant, -1 discordant, 0 when tied on either side
            untied_x += dx != 0
            untied_y += dy != 0
    return s / math.sqrt(untied_x * untied_y) if untied_x and untied_y else None


def average_ranks(v: list[float]) -> list[float]:
    """1-based ranks, ascending, where tied values share the mean of their positions
    ([10, 20, 20, 30] -> [1, 2.5, 2.5, 4]): the ranks Spearman's rho uses with ties."""
    order = sorted(range(len(v)), key=lambda i: v[i])
    ranks = [0.0] * len(v)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and v[order[end + 1]] == v[order[start]]:
            end += 1
        for pos in range(start, end + 1):
            ranks[order[pos]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman_rho(x: list[float], y: list[float]) -> float | None:
    """Spearman's rho: the Pearson correlation of the average ranks of x and y (the tie-
    corrected definition). None when x or y has fewer than two distinct values."""
    rx, ry = average_ranks(x), average_ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def _argmax(values: list[float]) -> int:
    """Index of the largest value; the first one on equal values."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


def majority_answer(answers: list[str | None]) -> str | None:
    """The most frequent answer, None answers ignored (self-consistency, Wang et al. 2022);
    None when every answer is None. Between equally frequent answers the one that appears first:
    on GSM8K model_solutions (1,000 questions, 4 solutions each) this rule reproduces the
    published majority vote 0.443 when answers are compared as written after "A:"; the
    expected value over the tied answers gives 0.485. With numbers normalised ("3,000" ==
    "3000", rewardlab.data.gsm8k.final_answer) the first-appearance rule gives 0.444."""
    counts = Counter(a for a in answers if a is not None)  # keeps first-appearance order
    if not counts:
        return None
    top = max(counts.values())
    return next(a for a, c in counts.items() if c == top)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _check_shapes(rewards, tiers, correct, answers) -> None:
    """Every prompt needs a completion, and every per-prompt list one entry per completion."""
    for p, r in enumerate(rewards):
        if not r:
            raise ValueError(f"prompt {p}: no completions")
    for name, other in (("tiers", tiers), ("correct", correct), ("answers", answers)):
        if other is None:
            continue
        if len(other) != len(rewards):
            raise ValueError(f"{len(rewards)} prompts of rewards but {len(other)} of {name}")
        for p, (r, o) in enumerate(zip(rewards, other)):
            if len(r) != len(o):
                raise ValueError(f"prompt {p}: {len(r)} rewards but {len(o)} {name}")


def _ranking_metrics(rewards, tiers, tie_threshold: float) -> dict:
    """Pair, tie, rank-correlation and top-1 metrics over all prompts."""
    right = [r[i] > r[j] for r, t in zip(rewards, tiers) for i, j in strict_pairs(t)]
    close = [abs(r[i] - r[j]) <= tie_threshold for r, t in zip(rewards, tiers) for i, j in tied_pairs(t)]
    taus, rhos = [], []
    for r, t in zip(rewards, tiers):
        label = _label_values(t)
        tau, rho = kendall_tau_b(r, label), spearman_rho(r, label)
        if tau is not None and rho is not None:  # defined on the same prompts (>= 2 distinct values each)
            taus.append(tau)
            rhos.append(rho)
    top1 = [t[_argmax(r)] == min(x for x in t if x is not None)
            for r, t in zip(rewards, tiers) if any(x is not None for x in t)]
    return {"n_pairs": len(right), "pairwise_accuracy": _mean(right),
            "n_tied_pairs": len(close), "tie_accuracy": _mean(close), "tie_threshold": tie_threshold,
            "kendall_tau": _mean(taus), "spearman": _mean(rhos), "n_prompts_rank": len(taus),
            "top1_accuracy": _mean(top1)}


def _selection_metrics(rewards, correct, answers) -> dict:
    """Best-of-K by reward and its baselines: random pick, majority vote, oracle."""
    out = {"best_of_k": None, "random_baseline": None, "oracle": None, "majority_vote": None}
    if correct is None:
        return out
    groups = [(r, [bool(c) for c in cs]) for r, cs in zip(rewards, correct)]
    out["best_of_k"] = _mean([c[_argmax(r)] for r, c in groups])
    out["random_baseline"] = _mean([sum(c) / len(c) for _, c in groups])  # expected accuracy of a uniform pick
    out["oracle"] = _mean([any(c) for _, c in groups])
    if answers is not None:
        votes = []
        for cs, ans in zip(correct, answers):
            winner = majority_answer(ans)  # all None: no answer, counted wrong
            votes.append(winner is not None and any(c and a == winner for c, a in zip(cs, ans)))
        out["majority_vote"] = _mean(votes)
    return out


def group_metrics(rewards: list[list[float]], tiers: list[list[int | None]], correct: list[list[bool]] | None = None,
                  answers: list[list[str | None]] | None = None, tie_threshold: float = 0.5) -> dict:
    """All metrics of K completions per prompt, as the flat dict described in the module docstring.

    ``correct`` (0/1 per completion) adds best-of-K and its baselines; ``answers`` (the final
    answer per completion, None when there is none) adds the majority vote.
    """
    _check_shapes(rewards, tiers, correct, answers)
    return {"n_prompts": len(rewards), **_ranking_metrics(rewards, tiers, tie_threshold),
            **_selection_metrics(rewards, correct, answers)}


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def format_group_metrics(m: dict) -> str:
    """A short human-readable table of :func:`group_metrics`'s result."""
    lines = [f"prompts            {m['n_prompts']}",
             f"pairwise accuracy  {_fmt(m['pairwise_accuracy']):<6}  ({m['n_pairs']} strict pairs)",
             f"tie accuracy       {_fmt(m['tie_accuracy']):<6}  ({m['n_tied_pairs']} tied pairs, "
             f"|r_i - r_j| <= {m['tie_threshold']:.4g}"
             + (f" = {m['tie_threshold_std']:g} std of the rewards)" if "tie_threshold_std" in m else ")"),
             f"kendall tau-b      {_fmt(m['kendall_tau']):<6}  (mean over {m['n_prompts_rank']} prompts)",
             f"spearman rho       {_fmt(m['spearman']):<6}",
             f"top-1 accuracy     {_fmt(m['top1_accuracy']):<6}"]
    if m.get("best_of_k") is not None:
        baselines = [f"{name} {_fmt(m.get(key))}" for name, key in
                     (("random", "random_baseline"), ("majority", "majority_vote"), ("oracle", "oracle"))
                     if m.get(key) is not None]
        lines.append(f"best-of-k          {_fmt(m['best_of_k']):<6}  ({', '.join(baselines)})")
    return "\n".join(line.rstrip() for line in lines)
