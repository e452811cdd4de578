"""Evaluation of reward models on preference pairs (RewardBench-style pairwise accuracy).

Accuracy is strict: a pair counts as right only when r_chosen > r_rejected; a tie is wrong
(RewardBench). With a ``subset`` column the result also has per-subset accuracies.
"""

from __future__ import annotations

from collections import defaultdict

from .data import Pair, Text
from .encode import Counts, encode_groups
from .models import score_sequences
from .shared_prompt import score_groups_shared, supports_shared_prompt


def pairwise_metrics(chosen: list[float], rejected: list[float], subsets: list[str | None] | None = None) -> dict:
    """accuracy, ties, mean_margin (r_c - r_r), n, and per-subset accuracy when subsets are given."""
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


def score_pairs(model, tokenizer, pairs: list[Pair], max_length: int,
                batch_size: int = 16) -> tuple[list[float], list[float], Counts]:
    """Rewards of every pair's chosen and rejected completion. No pair is dropped: one whose
    completion alone is too long keeps its last ``max_length`` tokens (counted as truncated)."""
    groups = [[Text(p.prompt, p.chosen, p.templated), Text(p.prompt, p.rejected, p.templated)] for p in pairs]
    encoded, counts = encode_groups(tokenizer, groups, max_length, cut_completion=True)
    if supports_shared_prompt(model):  # each prompt encoded once for both replies (exact)
        both = score_groups_shared(model, [g.sequences for g in encoded], tokenizer.pad_token_id, batch_size)
        return [r[0] for r in both], [r[1] for r in both], counts
    seqs = [g.sequences[0] for g in encoded] + [g.sequences[1] for g in encoded]
    rewards = score_sequences(model, seqs, tokenizer.pad_token_id, 2 * batch_size)
    return rewards[:len(pairs)], rewards[len(pairs):], counts


def evaluate_pairs(model, tokenizer, pairs: list[Pair], max_length: int, batch_size: int = 16) -> tuple[dict, Counts]:
    chosen, rejected, counts = score_pairs(model, tokenizer, pairs, max_length, batch_size)
    return pairwise_metrics(chosen, rejected, [p.subset for p in pairs]), counts


def format_metrics(metrics: dict) -> str:
    """A short human-readable table."""
    lines = [f"accuracy     {metrics['accuracy']:.4f}  ({metrics['n']} pairs, {metrics['ties']} ties)",
             f"mean margin  {metrics['mean_margin']:+.4f}  (r_chosen - r_rejected)"]
    for name, sub in metrics.get("subsets", {}).items():
        lines.append(f"  {name:<28} {sub['accuracy']:.4f}  (n={sub['n']})")
    return "\n".join(lines)
