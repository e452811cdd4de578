"""Pointwise metrics: one score per completion (ORM), per step (PRM), per state (value
function) or per attribute (multi-attribute regression). Pure functions of numbers, no torch.

- Outcome reward models (Cobbe et al. 2021, "Training Verifiers to Solve Math Word Problems"):
  P(correct) per completion against its 0/1 label. ``accuracy`` at 0.5; ``auroc``, the
  Mann-Whitney U statistic / (P * N), i.e. the probability that a random correct completion
  scores above a random wrong one, ties counting 1/2 (Hanley & McNeil 1982); ``brier``, the mean
  squared error of the probability (Brier 1950); ``ece`` over equal-mass bins
  (:func:`rewardlab.eval.diagnostics.expected_calibration_error`). With completions grouped by
  prompt: best-of-N (PRM800K, Lightman et al. 2023: the argmax-score pick, first on ties) beside a
  uniform random pick, the oracle (any correct) and self-consistency majority vote (Wang et al.
  2022), all from :mod:`rewardlab.eval.ranking` so the conventions match ``group_metrics``.
- Process reward models, step level (PRMBench, Song et al. 2025): a step is predicted correct when
  its score > threshold; F1 of the correct class, of the wrong class, and their mean.
- Process reward models, first error (ProcessBench, Zheng et al. 2024): the label is the index
  of the first wrong step (-1: all correct); the prediction is the first step scored below a
  threshold (-1: none). acc_error / acc_correct are the accuracies on erroneous / correct
  samples, F1 their harmonic mean; the threshold is chosen for the best F1 on a validation split.
- Step aggregation for best-of-N with a PRM: min (Math-Shepherd, Wang et al. 2024), product
  (PRM800K), last, mean.
- Value functions: MSE and explained variance 1 - Var(G - V) / Var(G) (as reported by PPO
  implementations, e.g. OpenAI baselines / CleanRL).
- Multi-attribute regression (HelpSteer / ArmoRM style): MSE and Pearson r per attribute over the
  rows that have a target, and the mean of the attribute MSEs.

Undefined values (AUROC with one class, F1 with a class absent, ...) are None.
"""

from __future__ import annotations


from ..models.readout import aggregate_steps  # noqa: F401  (a PRM's reward from its steps, re-exported)
from .diagnostics import degenerate, expected_calibration_error, pearson
from .ranking import _fmt, _mean, _selection_metrics, average_ranks

AGGREGATIONS = ("min", "prod", "last", "mean")


def _same_length(a: list, b: list, what: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{what}: {len(a)} vs {len(b)} entries")


def _variance(values: list[float]) -> float:
    m = sum(values) / len(values)
    return sum((v - m) ** 2 for v in values) / len(values)


def auroc(scores: list[float], labels: list[float]) -> float | None:
    """P(score of a positive > score of a negative) + 1/2 P(equal); None without both classes."""
    _same_length(scores, labels, "scores / labels")
    positive = [y >= 0.5 for y in labels]
    n_pos = sum(positive)
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return None
    # Rank-sum form of U: with average ranks a tie between a positive and a negative adds 1/2.
    # Ranks are half-integers, so the sum is exact in floating point.
    rank_sum = sum(r for r, p in zip(average_ranks(scores), positive) if p)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def brier(probs: list[float], labels: list[float]) -> float | None:
    """Mean (p - y)^2; soft labels allowed. None when empty."""
    _same_length(probs, labels, "probs / labels")
    return _mean([(p - y) ** 2 for p, y in zip(probs, labels)])


def orm_metrics(probs: list[float], labels: list[float], groups: list[list[int]] | None = None,
                answers: list[str | None] | None = None) -> dict:
    """ORM metrics of P(correct) per completion (module doc). ``groups``: row indices sharing a
    prompt (K >= 2 each) add best_of_n / random / oracle / n_groups; ``answers`` (the final answer
    per row, None when unparsed) adds majority."""
    _same_length(probs, labels, "probs / labels")
    correct = [y >= 0.5 for y in labels]
    out = {"n": len(probs),
           "accuracy": _mean([(p >= 0.5) == c for p, c in zip(probs, correct)]),
           "auroc": auroc(probs, labels),
           "brier": brier(probs, labels),
           "ece": expected_calibration_error(probs, labels)["ece"] if probs else None,
           "positive_rate": _mean(correct)}  # share labelled correct: the base rate behind accuracy
    if probs and (w := degenerate(probs, out["accuracy"], len(probs), max(out["positive_rate"], 1 - out["positive_rate"]),
                                  "majority-class", threshold=0.5)):
        out["warnings"] = w
    if groups is None:
        return out
    if answers is not None:
        _same_length(probs, answers, "probs / answers")
    for g, rows in enumerate(groups):
        if len(rows) < 2 or not all(0 <= i < len(probs) for i in rows):
            raise ValueError(f"group {g}: {rows!r} needs >= 2 row indices in 0..{len(probs) - 1}")
    # The selection helpers of ranking.py, so best-of-N ties (first row as listed in the group)
    # and majority-vote ties (first answer to appear) follow the same rules as group_metrics.
    sel = _selection_metrics([[probs[i] for i in g] for g in groups],
                             [[correct[i] for i in g] for g in groups],
                             None if answers is None else [[answers[i] for i in g] for g in groups])
    out.update(best_of_n=sel["best_of_k"], random=sel["random_baseline"], oracle=sel["oracle"],
               n_groups=len(groups))
    if answers is not None:
        out["majority"] = sel["majority_vote"]
    return out


def _f1(tp: int, fp: int, fn: int) -> float | None:
    """2TP / (2TP + FP + FN), the harmonic mean of precision and recall; None when the class
    is neither present nor predicted."""
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None


def step_f1(step_scores: list[list[float]], step_labels: list[list[bool]], threshold: float = 0.5) -> dict:
    """PRMBench-style step classification: predicted correct when score > threshold."""
    _same_length(step_scores, step_labels, "step_scores / step_labels")
    pairs = []
    for i, (s, y) in enumerate(zip(step_scores, step_labels)):
        _same_length(s, y, f"sample {i} scores / labels")
        pairs += [(score > threshold, bool(label)) for score, label in zip(s, y)]
    tp = sum(p and y for p, y in pairs)  # correct steps predicted correct
    tn = sum(not p and not y for p, y in pairs)  # wrong steps predicted wrong
    fp = sum(p and not y for p, y in pairs)
    fn = sum(not p and y for p, y in pairs)
    f1_correct, f1_wrong = _f1(tp, fp, fn), _f1(tn, fn, fp)  # the wrong class swaps FP and FN
    good = _mean([y for _, y in pairs])
    accuracy = _mean([p == y for p, y in pairs])
    warnings = degenerate([x for s in step_scores for x in s], accuracy, len(pairs),
                          None if good is None else max(good, 1 - good), "majority-class", threshold)
    return {"f1_correct": f1_correct, "f1_wrong": f1_wrong,
            "f1_mean": None if f1_correct is None or f1_wrong is None else (f1_correct + f1_wrong) / 2,
            "n_steps": len(pairs), "accuracy": accuracy, **({"warnings": warnings} if warnings else {})}


def first_error(step_scores: list[float], threshold: float) -> int:
    """Index of the first step scored below threshold, -1 when none (ProcessBench)."""
    return next((i for i, s in enumerate(step_scores) if s < threshold), -1)


def processbench(step_scores: list[list[float]], labels: list[int], threshold: float) -> dict:
    """ProcessBench accuracy on erroneous and on correct samples, and their harmonic mean."""
    _same_length(step_scores, labels, "step_scores / labels")
    hits = [(first_error(s, threshold) == y, y == -1) for s, y in zip(step_scores, labels)]
    acc_error = _mean([h for h, ok in hits if not ok])
    acc_correct = _mean([h for h, ok in hits if ok])
    if acc_error is None or acc_correct is None:
        f1 = None
    else:
        f1 = 2 * acc_error * acc_correct / (acc_error + acc_correct) if acc_error and acc_correct else 0.0
    return {"acc_error": acc_error, "acc_correct": acc_correct, "f1": f1, "threshold": threshold,
            "n_error": sum(not ok for _, ok in hits), "n_correct": sum(ok for _, ok in hits)}


def best_threshold(step_scores: list[list[float]], labels: list[int], candidates: list[float] | None = None) -> float:
    """The threshold with the best ProcessBench F1 on a validation set; the smallest on ties.
    Candidates default to the grid 0.01, 0.02, ..., 0.99."""
    grid = sorted(candidates) if candidates is not None else [i / 100 for i in range(1, 100)]
    if not grid:
        raise ValueError("no candidate thresholds")
    if -1 not in labels or all(y == -1 for y in labels):
        raise ValueError("best_threshold needs both erroneous (label >= 0) and correct (-1) samples")
    best, best_f1 = grid[0], -1.0
    for t in grid:
        f1 = processbench(step_scores, labels, t)["f1"]
        if f1 > best_f1:  # strict: an equal F1 later in the ascending grid keeps the smaller threshold
            best, best_f1 = t, f1
    return best


def value_metrics(predictions: list[float], targets: list[float]) -> dict:
    """MSE and explained variance 1 - Var(target - pred) / Var(target) (None if Var(target) = 0)."""
    _same_length(predictions, targets, "predictions / targets")
    if not targets:
        return {"mse": None, "explained_variance": None, "n": 0}
    var_t = _variance(targets)
    residual = [t - p for p, t in zip(predictions, targets)]
    explained = 1 - _variance(residual) / var_t if var_t > 0 else None
    warnings = degenerate(predictions)
    if explained is not None and explained <= 0:
        warnings.append(f"explained variance {explained:.4f} <= 0: the predictions explain none of the targets' spread")
    return {"mse": _mean([r * r for r in residual]), "explained_variance": explained, "n": len(targets),
            **({"warnings": warnings} if warnings else {})}


def regression_metrics(predictions: list[list[float | None]], targets: list[list[float | None]],
                       names: list[str]) -> dict:
    """Per attribute, over the rows whose target is present: MSE, Pearson r and n; and the mean
    of the attribute MSEs (attributes without any target left out)."""
    _same_length(predictions, targets, "predictions / targets")
    attributes = {}
    for a, name in enumerate(names):
        pred, true = [], []
        for row, (p, t) in enumerate(zip(predictions, targets)):
            if len(p) != len(names) or len(t) != len(names):
                raise ValueError(f"row {row}: expected {len(names)} attributes")
            if t[a] is None:  # attribute not annotated for this row: masked
                continue
            if p[a] is None:  # dropping it silently would hide a missing prediction
                raise ValueError(f"row {row}: no prediction for {name!r}, which has a target")
            pred.append(p[a])
            true.append(t[a])
        attributes[name] = {"mse": _mean([(p - t) ** 2 for p, t in zip(pred, true)]),
                            "pearson": pearson(pred, true), "n": len(true)}
        if warnings := [f"{name}: {w}" for w in degenerate(pred)]:
            attributes[name]["warnings"] = warnings
    return {"attributes": attributes,
            "mse": _mean([m["mse"] for m in attributes.values() if m["mse"] is not None])}


# (key, label, note) in display order; format_pointwise prints the ones present.
_LINES = (("accuracy", "accuracy", ""), ("auroc", "AUROC", ""), ("brier", "brier", "mean (p - y)^2"),
          ("ece", "ECE", "equal-mass bins"), ("positive_rate", "positive rate", "labelled correct"),
          ("best_of_n", "best-of-n", ""), ("random", "random pick", ""), ("majority", "majority vote", ""),
          ("oracle", "oracle", "any correct"),
          ("f1_correct", "F1 correct", "steps"), ("f1_wrong", "F1 wrong", "steps"), ("f1_mean", "F1 mean", ""),
          ("acc_error", "acc error", "first error found"), ("acc_correct", "acc correct", "no error flagged"),
          ("f1", "ProcessBench F1", ""), ("mse", "MSE", ""), ("explained_variance", "explained var", ""))


def format_pointwise(m: dict) -> str:
    """A short human-readable table of any of the dicts above."""
    notes = {"accuracy": f"n={m['n']}" if "n" in m else f"{m.get('n_steps')} steps",
             "best_of_n": f"{m.get('n_groups')} groups",
             "f1": f"threshold {m['threshold']:g}" if "threshold" in m else "",
             "acc_error": f"n={m.get('n_error')}", "acc_correct": f"n={m.get('n_correct')}",
             "mse": f"n={m['n']}" if "n" in m else "mean over attributes"}
    lines = []
    for key, label, note in _LINES:
        if key in m:
            note = notes.get(key) or note
            lines.append(f"{label:<16} {_fmt(m[key]):<6}  {f'({note})' if note else ''}".rstrip())
    for name, a in m.get("attributes", {}).items():
        lines.append(f"  {name:<14} MSE {_fmt(a['mse'])}  pearson {_fmt(a['pearson'])}  (n={a['n']})")
    return "\n".join(lines)
