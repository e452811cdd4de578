"""What a reward model's accuracy hides: length and formatting bias, calibration, best-of-N
curves, and paired bootstrap intervals for comparing models. Pure functions of numbers.

- Length bias (RewardBench issue #267: "pick the longer answer" scores 100% on two subsets):
  the accuracy of the length baseline on the same pairs, the model's accuracy split by
  whether the chosen answer is the longer one, the correlation of reward with length, and
  how often the model's preference is simply "the longer one".
- Formatting bias (RM-Bench's style bias): the same split by markdown (headers, list items,
  bold, code).
- Calibration: P(chosen > rejected) = sigma(r_c - r_r) against the outcome, each pair counted
  in both orders (p with outcome 1 and 1 - p with outcome 0), so the result does not depend on
  which side a file lists first; ECE over equal-mass bins.
- Best-of-N: the accuracy of the top-scored candidate among n, averaged over every subset of
  size n (exactly when there are few, else a seeded sample), beside random and oracle.
- Paired bootstrap: the confidence interval of the difference in accuracy of two models scored
  on the same items (resampling items, keeping the pairing).
"""

from __future__ import annotations

import math
import random
import re
from itertools import combinations

from ..data.features import markdown_count


def pearson(x: list[float], y: list[float]) -> float | None:
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation: Pearson's on the ranks (ties share their mean rank)."""
    def ranks(v):
        order = sorted(range(len(v)), key=v.__getitem__)
        out, i = [0.0] * len(v), 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out
    return pearson(ranks(x), ranks(y)) if len(x) >= 2 else None


def _split(right: list[bool], chosen_more: list[int]) -> dict:
    """Accuracy where the chosen answer has more / less of a feature (equal: left out)."""
    out = {}
    for name, sign in (("chosen_more", 1), ("chosen_less", -1)):
        idx = [i for i, d in enumerate(chosen_more) if d * sign > 0]
        out[f"accuracy_{name}"] = sum(right[i] for i in idx) / len(idx) if idx else None
        out[f"n_{name}"] = len(idx)
    return out


def bias_diagnostics(chosen: list[str], rejected: list[str], r_chosen: list[float], r_rejected: list[float]) -> dict:
    """Length and markdown diagnostics of pairwise predictions (see the module doc)."""
    right = [c > r for c, r in zip(r_chosen, r_rejected)]
    n = len(right)
    longer = [len(c) - len(r) for c, r in zip(chosen, rejected)]
    model_prefers_longer = [(rc > rr) == (lc > lr) for rc, rr, lc, lr in
                            zip(r_chosen, r_rejected, map(len, chosen), map(len, rejected))]
    length = {"baseline_accuracy": sum(d > 0 for d in longer) / n if n else None,
              "agreement_with_longer": sum(model_prefers_longer) / n if n else None,
              "reward_length_correlation": pearson([float(len(t)) for t in chosen + rejected],
                                                   list(r_chosen) + list(r_rejected)),
              "reward_length_spearman": spearman([float(len(t)) for t in chosen + rejected],
                                                 list(r_chosen) + list(r_rejected)),
              **_split(right, longer)}
    # A model whose preference is "the longer one" on (nearly) every pair, and that gets the
    # pairs where the chosen answer is shorter mostly wrong, is tracking length.
    shorter = length["accuracy_chosen_less"]
    length["tracks_length"] = bool(n and length["agreement_with_longer"] >= 0.9 and shorter is not None and shorter < 0.5)
    marks = [markdown_count(c) - markdown_count(r) for c, r in zip(chosen, rejected)]
    markdown = {"baseline_accuracy": sum(d > 0 for d in marks) / n if n else None, **_split(right, marks)}
    return {"length": length, "markdown": markdown}


def expected_calibration_error(probs: list[float], outcomes: list[float], bins: int = 10) -> dict:
    """ECE over equal-mass bins: sum_b |B_b|/N |mean outcome_b - mean p_b|; also the bins."""
    order = sorted(range(len(probs)), key=lambda i: probs[i])
    n = len(order)
    table, ece = [], 0.0
    for b in range(bins):
        idx = order[b * n // bins:(b + 1) * n // bins]
        if not idx:
            continue
        conf = sum(probs[i] for i in idx) / len(idx)
        acc = sum(outcomes[i] for i in idx) / len(idx)
        ece += len(idx) / n * abs(acc - conf)
        table.append({"confidence": conf, "accuracy": acc, "n": len(idx)})
    return {"ece": ece, "bins": table}


def pair_calibration(r_chosen: list[float], r_rejected: list[float], bins: int = 10) -> dict:
    """Calibration of sigma(r_c - r_r), each pair in both orders (module doc)."""
    p = [1 / (1 + math.exp(-max(-60.0, min(60.0, c - r)))) for c, r in zip(r_chosen, r_rejected)]
    # Interleaved, so a stable sort keeps the two orders of a pair with equal p side by side.
    probs = [x for q in p for x in (q, 1 - q)]
    bins = max(1, min(bins, len(probs) // 2))  # never split a pair's two orders into bins of one
    return expected_calibration_error(probs, [float(i % 2 == 0) for i in range(len(probs))], bins)


def best_of_n_curve(rewards: list[list[float]], correct: list[list[bool]], max_subsets: int = 200,
                    seed: int = 0) -> dict:
    """For n = 1..K: mean accuracy of the top-scored of n candidates (first on equal rewards),
    of a random one, and of an oracle, averaged over subsets of size n and over prompts."""
    rng = random.Random(seed)
    k_min = min(len(r) for r in rewards)
    curve = {"n": [], "model": [], "random": [], "oracle": []}
    for n in range(1, k_min + 1):
        model = rand = oracle = 0.0
        for r, c in zip(rewards, correct):
            subsets = list(combinations(range(len(r)), n))
            if len(subsets) > max_subsets:
                subsets = rng.sample(subsets, max_subsets)
            model += sum(c[max(s, key=lambda i: (r[i], -i))] for s in subsets) / len(subsets)
            rand += sum(sum(c[i] for i in s) / n for s in subsets) / len(subsets)
            oracle += sum(any(c[i] for i in s) for s in subsets) / len(subsets)
        for key, value in (("n", n), ("model", model / len(rewards)), ("random", rand / len(rewards)),
                           ("oracle", oracle / len(rewards))):
            curve[key].append(value)
    return curve


def paired_bootstrap(right_a: list[bool], right_b: list[bool], samples: int = 1000, level: float = 0.95,
                     seed: int = 0) -> dict:
    """Difference in accuracy (a - b) on the same items, with a percentile bootstrap interval."""
    n = len(right_a)
    rng = random.Random(seed)
    diffs = [int(a) - int(b) for a, b in zip(right_a, right_b)]
    stats = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(samples))
    lo, hi = stats[int((1 - level) / 2 * samples)], stats[min(samples - 1, int((1 + level) / 2 * samples))]
    return {"difference": sum(diffs) / n, "low": lo, "high": hi, "level": level}


def bias_intervals(chosen: list[str], rejected: list[str], r_chosen: list[float], r_rejected: list[float],
                   samples: int = 1000, level: float = 0.95, seed: int = 0) -> dict:
    """Each bias number of a pair set with a percentile bootstrap interval over the pairs:
    accuracy, reward-length Pearson and Spearman, accuracy when the chosen answer is the longer
    and when it is the shorter one. ``{name: {"value", "low", "high"}}``."""
    def stats(idx):
        c, r = [chosen[i] for i in idx], [rejected[i] for i in idx]
        rc, rr = [r_chosen[i] for i in idx], [r_rejected[i] for i in idx]
        ln = bias_diagnostics(c, r, rc, rr)["length"]
        return {"accuracy": sum(a > b for a, b in zip(rc, rr)) / len(idx) if idx else None,
                "reward_length_pearson": ln["reward_length_correlation"],
                "reward_length_spearman": ln["reward_length_spearman"],
                "accuracy_chosen_longer": ln["accuracy_chosen_more"], "accuracy_chosen_shorter": ln["accuracy_chosen_less"]}
    n, rng = len(chosen), random.Random(seed)
    point, draws = stats(list(range(n))), []
    for _ in range(samples if n > 1 else 0):
        draws.append(stats([rng.randrange(n) for _ in range(n)]))
    out = {}
    for key, value in point.items():
        got = sorted(d[key] for d in draws if d[key] is not None)
        lo, hi = (got[int((1 - level) / 2 * len(got))], got[min(len(got) - 1, int((1 + level) / 2 * len(got)))]) \
            if got else (None, None)
        out[key] = {"value": value, "low": lo, "high": hi}
    return out


def degenerate(rewards: list, accuracy: float | None = None, n: int = 0, baseline: float | None = None,
               baseline_name: str = "random", threshold: float | None = None) -> list[str]:
    """What makes a model that learned nothing look fine, one line each: every reward the same
    (it tells no text from another); every reward on one side of ``threshold`` (a classifier
    answering one class for every row); ``accuracy`` over ``n`` items within one standard error
    of ``baseline`` (random, or the majority class)."""
    out = []
    known = [r for r in rewards if isinstance(r, (int, float)) and r == r]
    if len(known) >= 2:
        lo, hi = min(known), max(known)
        if hi - lo <= 1e-6 * max(1.0, abs(hi)):
            out.append(f"every reward is {lo:.4g}: the model gives every text the same reward")
        elif threshold is not None and (lo >= threshold or hi < threshold):
            out.append(f"every score is {'above' if lo >= threshold else 'below'} {threshold:g}: the model predicts "
                       "one class for every row")
    if accuracy is not None and baseline is not None and n > 0:
        se = math.sqrt(baseline * (1 - baseline) / n) if 0 < baseline < 1 else 0.0
        if abs(accuracy - baseline) <= se:
            out.append(f"accuracy {accuracy:.4f} is within one standard error ({se:.4f}) of the {baseline_name} "
                       f"baseline {baseline:.4f} (n={n})")
    return out


def lift_warnings(metrics: dict) -> list[str]:
    """Every ``warnings`` list in ``metrics`` and the dicts in it, gathered at the top (in order,
    once each): what an evaluation says first."""
    found: list[str] = []

    def walk(d: dict) -> None:
        for w in d.pop("warnings", []):
            if w not in found:
                found.append(w)
        for v in d.values():
            if isinstance(v, dict):
                walk(v)
    walk(metrics)
    if found:
        metrics["warnings"] = found
    return found


def warned(text: str, warnings: list[str]) -> str:
    """An evaluation's summary with its warnings first (``warning: ...`` lines)."""
    return "\n".join([*(f"warning: {w}" for w in warnings), text])
