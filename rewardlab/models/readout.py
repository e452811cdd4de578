"""How a saved model's head outputs become scores, for every model kind (the rules are saved
with the model in ``config.rewardlab``, so scoring and serving need no flags).

- preference: the reward, one number per completion (last token / pooler);
- orm: P(correct) = sigmoid(logit) at the last token (``token_rewards``: at every completion
  token, with ``per_token``);
- prm: a score per step, read at each step marker's last token: sigmoid of the logit, or with
  the 3-class head 1 - P(wrong); the reward aggregates them (min, prod, last, mean);
- value: the value of every completion token (``values``); the reward is the last one;
- regression: every attribute's rating (``attributes``); the reward is their weighted sum.
"""

from __future__ import annotations

import math

import torch

from ..data.encode import Counts
from ..data.pointwise import Point, encode_points
from .heads import score_outputs

# What each kind reads: 'sequence' (one output vector per text), 'last', 'tokens' or 'steps'.
READ = {"preference": "sequence", "orm": "last", "prm": "steps", "value": "tokens", "regression": "sequence"}


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


def _known(values: list[float]) -> list[float | None]:
    """NaN (a read cut off by truncation) as None: JSON has no NaN."""
    return [None if v != v else v for v in values]


def read_fields(kind: str, outputs: torch.Tensor, settings: dict, per_token: bool = False) -> dict:
    """The scores of one text from its head outputs (reads x labels; NaN rows: cut off by
    truncation, written as None). Always has ``reward`` (None when nothing could be read)."""
    fields = _read_fields(kind, outputs, settings, per_token)
    return {k: _known(v) if isinstance(v, list) else None if isinstance(v, float) and v != v else v
            for k, v in fields.items()}


def _read_fields(kind: str, outputs: torch.Tensor, settings: dict, per_token: bool) -> dict:
    if kind == "orm":
        probs = torch.sigmoid(outputs[:, 0].float()).tolist()
        return {"reward": probs[-1], **({"token_rewards": probs} if per_token else {})}
    if kind == "prm":
        scores = step_scores(outputs).tolist()
        how = settings.get("objective", {}).get("aggregate", "min")
        known = [s for s in scores if s == s]
        return {"step_rewards": scores, "reward": aggregate_steps(known, how) if known else float("nan"),
                "aggregate": how}
    if kind == "value":
        values = outputs[:, 0].float().tolist()
        return {"reward": values[-1], "values": values}
    if kind == "regression":
        names, weights = settings.get("attributes", []), settings.get("weights", [])
        ratings = outputs[0].float().tolist()
        names = names or [f"attribute_{i}" for i in range(len(ratings))]
        weights = weights or [1.0 / len(ratings)] * len(ratings)
        return {"reward": sum(w * r for w, r in zip(weights, ratings)), "attributes": dict(zip(names, ratings))}
    return {"reward": float(outputs[0, 0])}


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
