"""Kind ``orm``: outcome reward model (Cobbe et al. 2021, "Training Verifiers to Solve Math
Word Problems").

A row is one completion with its outcome label (0/1, or a float in [0, 1]). Every completion
token carries the label (``orm_loss_on: all_tokens``, the paper's per-token verifier; prompt
tokens carry none) or only the last one (``last_token``); the loss is binary cross-entropy on
the head's logit (losses.pointwise.token_bce). The model is a token classifier with one
output; its score for a completion is P(correct) = sigmoid(logit) at the last token. Unit: a
labelled token (the mean over labelled tokens, as in the paper).
"""

from __future__ import annotations

import torch

from ..config import ObjectiveArgs
from ..data.pointwise import parse_orm
from ..eval.pointwise import format_pointwise, orm_metrics
from ..losses import token_bce
from ..models.heads import HeadOutputs
from . import points

STATS = ("correct", "examples")
forward_module = HeadOutputs
batch = points.batch
head, check, units = points.token_head, points.no_check, points.units
format_eval = format_pointwise


def describe(obj: ObjectiveArgs) -> str:
    return f"kind orm (outcome reward model), BCE on {obj.orm_loss_on.replace('_', ' ')}"


def parser(obj: ObjectiveArgs):
    return parse_orm


def encode(tokenizer, examples, max_length: int, obj: ObjectiveArgs, num_proc: int = 1, cache_dir: str = ""):
    return points.encoder("tokens" if obj.orm_loss_on == "all_tokens" else "last")(tokenizer, examples, max_length)


def loss(outputs: torch.Tensor, items: list, obj: ObjectiveArgs) -> tuple[torch.Tensor, dict[str, float]]:
    targets = torch.cat([torch.full((len(enc.reads[0]),), p.target) for p, enc in items]).to(outputs.device)
    last = torch.stack([o[-1, 0] for o in points.split(outputs.detach(), items)])
    labels = torch.tensor([p.target >= 0.5 for p, _ in items], device=outputs.device)
    stats = {"correct": float(((last >= 0) == labels).sum()), "examples": float(len(items))}
    return token_bce(outputs[:, 0], targets, reduction="sum"), stats


def summarize(sums: dict[str, float]) -> dict[str, float]:
    return {"accuracy": sums["correct"] / sums["examples"] if sums["examples"] else float("nan")}


def score(model, tokenizer, examples, max_length: int, batch_size: int = 16, obj: ObjectiveArgs | None = None):
    """P(correct) at each completion's last token, one float per example."""
    outputs, counts = points.score(model, tokenizer, examples, max_length, batch_size, "last")
    return [float(torch.sigmoid(o[-1, 0])) for o in outputs], counts


def metrics(examples, probs: list[float], obj: ObjectiveArgs) -> dict:
    answers = [e.answer for e in examples]
    return orm_metrics(probs, [e.target for e in examples], points.groups_of(examples),
                       answers if all(a is not None for a in answers) else None)
