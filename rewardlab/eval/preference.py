"""Evaluation of preference reward models on pairs and on groups of K completions.

Pairs (every row a chosen/rejected pair): RewardBench-style pairwise accuracy, strict (a pair
counts as right only when r_chosen > r_rejected; a tie is wrong), ties, mean margin, and
per-subset accuracy with a ``subset`` column. Keys: ``accuracy, ties, mean_margin, n`` (+
``subsets``).

Groups (any row with ``completions``): the metrics of :mod:`rewardlab.eval.ranking` over
every strict and tied pair, per-prompt rank correlations, top-1, and best-of-K beside the
random and majority-vote baselines when scores are 0/1; ``accuracy`` repeats
``pairwise_accuracy`` so both forms share a headline key.

Every completion is scored once: a prompt's completions go through the model together
(shared prompt on causal backbones).
"""

from __future__ import annotations

from collections import defaultdict

from ..data.encode import Counts, encode_groups, example_texts
from ..data.preference import Example
from ..models.backbone import score_sequences
from ..models.packed_encoder import score_packed
from ..models.heads import forward_path
from ..models.shared_prompt import score_groups_shared
from .diagnostics import best_of_n_curve, bias_diagnostics, degenerate, pair_calibration
from .ranking import format_group_metrics, group_metrics


def pair_metrics(chosen: list[float], rejected: list[float], subsets: list[str | None] | None = None) -> dict:
    """The evaluation's pair metrics, in float64 over Python lists: accuracy, ties, mean_margin
    (r_c - r_r), n, and per-subset accuracy when subsets are given. (Training's step statistics
    on tensors are :func:`rewardlab.losses.pairwise_metrics`.)"""
    n = len(chosen)
    if n == 0:
        return {"accuracy": 0.0, "ties": 0, "mean_margin": 0.0, "n": 0}
    right = [c > r for c, r in zip(chosen, rejected)]
    out = {
        "accuracy": sum(right) / n,
        "ties": sum(c == r for c, r in zip(chosen, rejected)),
        "mean_margin": sum(c - r for c, r in zip(chosen, rejected)) / n,
        "n": n,
    }
    if subsets and any(s is not None for s in subsets):
        by: dict[str, list[bool]] = defaultdict(list)
        for s, ok in zip(subsets, right):
            by[str(s)].append(ok)
        out["subsets"] = {s: {"accuracy": sum(v) / len(v), "n": len(v)} for s, v in sorted(by.items())}
    return out


def score_examples(model, tokenizer, examples: list[Example], max_length: int,
                   batch_size: int = 16) -> tuple[list[list[float]], Counts]:
    """The reward of every completion of every example, grouped by example. No example is
    dropped: a completion alone too long keeps its last ``max_length`` tokens (counted)."""
    encoded, counts = encode_groups(tokenizer, [example_texts(e) for e in examples], max_length, cut_completion=True)
    groups = [g.sequences for g in encoded]
    path = forward_path(model)
    if path == "shared":  # each prompt encoded once for all its completions (exact)
        return score_groups_shared(model, groups, tokenizer.pad_token_id, batch_size), counts
    flat_seqs = [s for g in groups for s in g]
    flat = score_packed(model, flat_seqs, 2 * batch_size) if path == "packed" else \
        score_sequences(model, flat_seqs, tokenizer.pad_token_id, 2 * batch_size)
    out, at = [], 0
    for g in groups:
        out.append(flat[at:at + len(g)])
        at += len(g)
    return out, counts


def example_metrics(examples: list[Example], rewards: list[list[float]], tie_threshold: float = 0.1) -> dict:
    """Pair metrics when every example is a plain pair, group metrics otherwise (module doc).
    ``tie_threshold`` is in standard deviations of the model's rewards over these completions
    (a fixed number of reward units means nothing across models: one whose rewards spread 0.12
    predicts every pair tied at 0.5); ``tie_threshold`` in the result is that many reward units,
    ``tie_threshold_std`` the number given."""
    subsets = [e.subset for e in examples]
    if all(e.is_pair for e in examples):
        out = pair_metrics([r[0] for r in rewards], [r[1] for r in rewards], subsets)
        if examples:  # what the accuracy hides: length and markdown bias, calibration
            out.update(bias_diagnostics([e.chosen for e in examples], [e.rejected for e in examples],
                                        [r[0] for r in rewards], [r[1] for r in rewards]))
            out["calibration"] = pair_calibration([r[0] for r in rewards], [r[1] for r in rewards])
            if warnings := degenerate([x for r in rewards for x in r], out["accuracy"], out["n"], 0.5):
                out["warnings"] = warnings
        return out
    correct = None
    if all(e.scores is not None and set(e.scores) <= {0.0, 1.0} for e in examples):
        correct = [[s == 1.0 for s in e.scores] for e in examples]
    answers = [e.answers for e in examples] if correct and all(e.answers for e in examples) else None
    flat = [x for r in rewards for x in r]
    mean = sum(flat) / len(flat) if flat else 0.0
    std = (sum((x - mean) ** 2 for x in flat) / max(len(flat) - 1, 1)) ** 0.5
    given, tie_threshold = tie_threshold, tie_threshold * std
    out = group_metrics(rewards, [e.tiers for e in examples], correct, answers, tie_threshold)
    out["tie_threshold_std"] = given
    out["accuracy"] = out["pairwise_accuracy"]
    if warnings := degenerate(flat, out["accuracy"], out.get("n_pairs", 0), 0.5):
        out["warnings"] = warnings
    if correct:
        out["best_of_n"] = best_of_n_curve(rewards, correct)
    if any(s is not None for s in subsets):
        by: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(subsets):
            by[str(s)].append(i)
        out["subsets"] = {s: group_metrics([rewards[i] for i in idx], [examples[i].tiers for i in idx],
                                           None, None, tie_threshold) for s, idx in sorted(by.items())}
        for sub in out["subsets"].values():
            sub["accuracy"], sub["n"] = sub["pairwise_accuracy"], sub["n_pairs"]
    return out


def format_metrics(metrics: dict) -> str:
    """A short human-readable table."""
    if "pairwise_accuracy" in metrics:
        lines = [format_group_metrics(metrics)]
    else:
        lines = [f"accuracy     {metrics['accuracy']:.4f}  ({metrics['n']} pairs, {metrics['ties']} ties)",
                 f"mean margin  {metrics['mean_margin']:+.4f}  (r_chosen - r_rejected)"]
        if "length" in metrics:
            ln, cal = metrics["length"], metrics["calibration"]
            shorter = "n/a" if ln["accuracy_chosen_less"] is None else f"{ln['accuracy_chosen_less']:.4f}"
            longer = "n/a" if ln["accuracy_chosen_more"] is None else f"{ln['accuracy_chosen_more']:.4f}"
            corr = "n/a" if ln["reward_length_correlation"] is None else \
                f"{ln['reward_length_correlation']:+.3f} / {ln.get('reward_length_spearman') or 0:+.3f}"
            lines += [f"length       baseline {ln['baseline_accuracy']:.4f} (longer wins); accuracy when chosen is "
                      f"longer {longer} (n={ln['n_chosen_more']}), shorter {shorter} (n={ln['n_chosen_less']}); "
                      f"reward-length Pearson / Spearman {corr}"
                      + ("; the model tracks length" if ln["tracks_length"] else ""),
                      f"calibration  ECE {cal['ece']:.4f} (sigma(r_c - r_r), equal-mass bins)"]
    for name, sub in metrics.get("subsets", {}).items():
        accuracy = "n/a" if sub["accuracy"] is None else f"{sub['accuracy']:.4f}"  # a subset of ties only
        lines.append(f"  {name:<28} {accuracy:<6}  (n={sub['n']})")
    return "\n".join(lines)
