"""Head outputs without gradients, read where a kind reads them (``score_points``), or one
reward per text (``score_rewards``: shared prompts, a server's prefix cache), and the helpers
kinds share to turn them into scores. Which reads a kind takes and what it makes of
them is the kind's (``read_mode`` and ``readout`` in rewardlab/kinds/)."""

from __future__ import annotations

import math

import torch

from ..data.encode import Counts, encode_texts, fit_groups
from ..data.pointwise import Point, encode_points
from .backbone import score_sequences
from .heads import forward_path, score_outputs
from .layout import group_by_prefix, tokens_processed
from .packed_encoder import score_packed
from .shared_prompt import can_use_prefix_cache, score_groups_shared


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


def score_rewards(model, tokenizer, texts: list, max_length: int, sizes: list[int] | None = None,
                  batch_size: int = 16, max_tokens: int = 16384, share_prefixes: bool = True,
                  encoded: list | None = None, cache=None) -> tuple[list, Counts]:
    """One output per text of a sequence head (a reward, or a list: N reward heads), read at its
    last token, and the counts (truncated groups; ``sent`` and ``processed`` tokens).

    ``sizes``: texts in groups of these sizes (a row's completions), one after another;
    truncation is counted per group, and each sequence loses only what it must (a reward never
    depends on the texts scored with it). On causal backbones texts that start with the same
    tokens share one encoding of that prefix (``share_prefixes``; exact), and ``cache`` (a
    server's :class:`PrefixCache`) keeps and reuses prompts' keys and values. ``encoded``: the
    texts already tokenized by :func:`rewardlab.data.encode.encode_texts`."""
    if encoded is None:
        encoded = encode_texts(tokenizer, texts)
    elif len(encoded) != len(texts):
        raise ValueError(f"{len(encoded)} encodings for {len(texts)} texts")
    groups, counts = fit_groups(sizes or [1] * len(texts), [e[:3] for e in encoded], max_length, cut_completion=True)
    seqs = [s for g in groups for s in g.sequences]
    cache = cache if cache is not None and can_use_prefix_cache(model) else None
    path = forward_path(model)
    if share_prefixes and (len(seqs) > 1 or cache is not None) and path == "shared":
        return _score_shared(model, tokenizer, seqs, batch_size, max_tokens, cache, counts), counts
    counts.sent = counts.processed = sum(map(len, seqs))
    return _score_flat(model, tokenizer, seqs, batch_size, max_tokens, path), counts


def _score_shared(model, tokenizer, seqs: list[list[int]], batch_size: int, max_tokens: int, cache,
                  counts: Counts) -> list:
    """Texts that start with the same tokens (the samples of one prompt) go through the
    shared-prompt forward together, their common prefix encoded once."""
    found = group_by_prefix(seqs)
    processed, sent = tokens_processed([[seqs[i] for i in g] for g in found])
    reused = cache.reused_tokens if cache is not None else 0
    rewards = score_groups_shared(model, [[seqs[i] for i in g] for g in found], tokenizer.pad_token_id,
                                  batch_size, max_tokens, cache)
    counts.sent = sent
    counts.processed = processed - ((cache.reused_tokens if cache is not None else 0) - reused)
    out: list = [0.0] * len(seqs)
    for g, r in zip(found, rewards):
        for i, x in zip(g, r):
            out[i] = x
    return out


def _score_flat(model, tokenizer, seqs: list[list[int]], batch_size: int, max_tokens: int, path: str) -> list:
    """Packed padding-free on BERT-style encoders (CPU), padded and length-sorted otherwise."""
    if path == "packed":
        return score_packed(model, seqs, batch_size, max_tokens)
    return score_sequences(model, seqs, tokenizer.pad_token_id, batch_size, max_tokens)
