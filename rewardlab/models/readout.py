"""Head outputs without gradients, read where a kind reads them (``score_points``), and the
helpers kinds share to turn them into scores. Which reads a kind takes and what it makes of
them is the kind's (``read_mode`` and ``readout`` in rewardlab/kinds/)."""

from __future__ import annotations

import math

import torch

from ..data.encode import Counts
from ..data.pointwise import Point, encode_points
from .heads import score_outputs


def step_scores(outputs: torch.Tensor) -> torch.Tensor:
    """P(step correct) from a PRM head's outputs (R, 1) or (R, 3) (wrong, neutral, right)."""
    if outputs.shape[-1] == 3:
        return 1 - torch.softmax(outputs.float(), -1)[:, 0]
    return torch.sigmoid(outputs[:, 0].float())


def aggregate_steps(scores: list[float], how: str) -> float:
    """A solution's reward from its step scores: 'min' (Math-Shepherd), 'prod' (the PRM800K
    paper: the probability that every step is correct), 'last', 'mean'."""
    if not scores:
        raise ValueError("no step scores to aggregate")
    if how == "min":
        return min(scores)
    if how == "prod":
        return math.prod(scores)
    if how == "last":
        return scores[-1]
    if how == "mean":
        return sum(scores) / len(scores)
    raise ValueError(f"unknown aggregate {how!r}: min, prod, last or mean")


def as_json(fields: dict) -> dict:
    """A readout's fields with NaN (a read cut off by truncation) as None: JSON has no NaN."""
    def known(v):
        return None if isinstance(v, float) and v != v else v
    return {k: [known(x) for x in v] if isinstance(v, list) else known(v) for k, v in fields.items()}


def score_points(model, tokenizer, points: list[Point], max_length: int, read: str, batch_size: int = 16,
                 max_tokens: int = 16384, share_prefixes: bool = True) -> tuple[list[torch.Tensor], Counts]:
    """Head outputs per point without gradients: a (reads, labels) float tensor, NaN rows where
    truncation cut a read off. ``read``: 'tokens', 'last', 'steps', or 'sequence' (one output
    vector per text, a (1, labels) tensor). Points that start with the same tokens share one
    encoding of that prefix on causal backbones (``share_prefixes``; exact)."""
    encoded, counts = encode_points(tokenizer, points, max_length, "last" if read == "sequence" else read,
                                    cut_completion=True)
    seqs = [enc.sequences for _, enc in encoded]
    if read == "sequence":
        values = score_outputs(model, seqs, tokenizer.pad_token_id, None, batch_size, max_tokens, share_prefixes)
        return [v[0] for v in values], counts
    kept = [[[r for r in enc.reads[0] if r is not None]] for _, enc in encoded]
    values = score_outputs(model, seqs, tokenizer.pad_token_id, kept, batch_size, max_tokens, share_prefixes)
    out = []
    for (_, enc), v in zip(encoded, values):
        full = torch.full((len(enc.reads[0]), v[0].shape[1]), float("nan"))
        full[[i for i, r in enumerate(enc.reads[0]) if r is not None]] = v[0]
        out.append(full)
    return out, counts
