"""Kind ``regression``: multi-attribute ratings (HelpSteer-style; the first stage of ArmoRM,
Wang et al. 2024, "Interpretable Preferences via Multi-Objective Reward Modeling and
Mixture-of-Experts").

A row is one completion with absolute ratings per attribute, ``{"helpfulness": 4, ...}``;
missing attributes are allowed and masked out of the loss. One sequence-classification head
with one output per attribute (``num_labels = N``, the names saved as the model's
``id2label``), squared error per rated attribute (losses.pointwise.masked_regression). The
reward is a weighted sum of the attributes (``weights``, saved with the model; default the
mean). Unit: a rated attribute.
"""

from __future__ import annotations

import torch

from dataclasses import dataclass

from ..config import ConfigError, check_choices, option
from ..data.pointwise import parse_regression
from ..data.rows import iter_rows, source_name
from ..eval.pointwise import regression_metrics
from ..losses import masked_regression
from . import points
from .protocol import HeadSpec, ScoreCall

NAME = "regression"
HEADLINE = "mse"  # the metric its evaluation is known by
STATS = ("sq_err", "rated")
batch = points.sequence_batch


@dataclass
class Options:
    """Attribute regression: which attributes, and how they weigh in the reward."""

    attributes: str = option("", "regression: attribute names, comma-separated, in output order (empty: every "
                             "attribute the training data rates, in order of first appearance).", resume=True)
    weights: str = option("", "regression: the reward's weight per attribute, comma-separated (empty: the mean).",
                          score="weights")

    def __post_init__(self):
        check_choices(self)


def read_mode(per_token: bool) -> str:
    return "sequence"


def readout(outputs: torch.Tensor, settings, call: ScoreCall) -> dict:
    """Every attribute's rating; the reward is their weighted sum (the weights saved at training,
    or the call's ``weights``)."""
    ratings = outputs[0].float().tolist()
    names = settings.extras.get("attributes") or [f"attribute_{i}" for i in range(len(ratings))]
    weights = weights_of(call.options, names) if call.options.weights else settings.extras.get("weights")
    weights = weights or [1.0 / len(ratings)] * len(ratings)
    return {"reward": sum(w * r for w, r in zip(weights, ratings)), "attributes": dict(zip(names, ratings))}


def report(path: str, metrics: dict, examples: list, details: list, model: str, data: str, obj) -> str:
    from ..eval.report_kinds import scatter

    outputs = ratings_of(details)
    names = list(metrics.get("attributes", {})) or [f"attribute_{i}" for i in range(len(outputs[0]))]
    sections = []
    for a, name in enumerate(names):
        rated = [(o[a], e.target[a]) for o, e in zip(outputs, examples) if e.target[a] is not None]
        if rated:
            sections.append(scatter([p for p, _ in rated], [t for _, t in rated], name))
    return points.report_page(path, NAME, metrics, sections, model, data)


def attributes(obj: Options, data=None) -> list[str]:
    """``--attributes`` in its order, else every attribute the data rates, in order of first
    appearance (one pass over the rows, before the model is built)."""
    if obj.attributes:
        return [a.strip() for a in obj.attributes.split(",") if a.strip()]
    names: dict[str, None] = {}
    for _, row in iter_rows(data):
        if isinstance(row.get("ratings"), dict):
            names.update(dict.fromkeys(row["ratings"]))
    if not names:
        raise ConfigError(f"{source_name(data)}: no row has 'ratings'; list the attributes with --attributes")
    return list(names)


def weights_of(obj: Options, names: list[str]) -> list[float]:
    if not obj.weights:
        return [1.0 / len(names)] * len(names)
    try:
        w = [float(x) for x in obj.weights.split(",")]
    except ValueError:
        raise ConfigError(f"--weights must be comma-separated numbers, got {obj.weights!r}") from None
    if len(w) != len(names):
        raise ConfigError(f"--weights has {len(w)} numbers for {len(names)} attributes ({', '.join(names)})")
    return w


def head(obj: Options, data=None) -> HeadSpec:
    names = attributes(obj, data)
    return HeadSpec("sequence", len(names), labels=tuple(names),
                    extras={"attributes": names, "weights": weights_of(obj, names)},
                    fixed={} if obj.attributes else {"attributes": ",".join(names)})


def describe(obj: Options) -> str:
    return "kind regression (one output per rated attribute), masked MSE"


def parser(obj: Options, names: list[str] | None = None):
    def parse(row, tokenizer, where, n, allow_empty=True, chat=False):
        return parse_regression(row, tokenizer, where, n, names or attributes(obj), allow_empty, chat)
    return parse


def units(item, obj: Options) -> int:
    return sum(v is not None for v in item[0].target)


def _targets(items: list, device) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.tensor([[v is not None for v in p.target] for p, _ in items], device=device)
    values = torch.tensor([[float("nan") if v is None else v for v in p.target] for p, _ in items], device=device)
    return values, mask


def loss(outputs: torch.Tensor, items: list, obj: Options) -> tuple[torch.Tensor, dict[str, float]]:
    targets, mask = _targets(items, outputs.device)
    value = masked_regression(outputs, targets.to(outputs.dtype), mask, reduction="sum")
    return value, {"sq_err": float(value.detach()), "rated": float(mask.sum())}


def summarize(sums: dict[str, float]) -> dict[str, float]:
    return {"mse": sums["sq_err"] / sums["rated"] if sums["rated"] else float("nan")}


def ratings_of(details: list[list[dict]]) -> list[list[float]]:
    """Every example's predicted rating per attribute, in output order."""
    return [list(d[0]["attributes"].values()) for d in details]


def metrics(examples, details: list, obj: Options) -> dict:
    predictions = ratings_of(details)
    names = attributes(obj) if obj.attributes else [f"attribute_{i}" for i in range(len(predictions[0]))]
    return regression_metrics(predictions, [e.target for e in examples], names)
