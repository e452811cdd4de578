"""Kind ``value``: a value function V(s_t) over completion tokens (the critic of PPO-style RL).

A row is one completion with its return R. The only reward arrives after the last token, so
the target of completion token t (of n) is the discounted return G_t = gamma^(n-1-t) R
(gamma = 1: R everywhere); the loss regresses every completion token's value on it (MSE, or
Huber with ``value_loss: huber``; losses.pointwise). The model is a token classifier with one
output; scoring returns the value of every completion token and, as ``reward``, the value at
the last token. Unit: a completion token.
"""

from __future__ import annotations

import torch

from dataclasses import dataclass

from ..config import ConfigError, check_choices, option
from ..data.pointwise import parse_value
from ..eval.pointwise import value_metrics
from ..losses import discounted_returns, value_regression
from . import points
from .protocol import ScoreCall

NAME = "value"
HEADLINE = "mse"  # the metric its evaluation is known by
STATS = ("sq_err_last", "examples")


@dataclass
class Options:
    """Value function: the regression loss and the discount of the return."""

    value_loss: str = option("mse", "value: regression loss.", choices=("mse", "huber"), resume=True)
    huber_delta: float = option(1.0, "value: the Huber loss's delta.", resume=True, above=0)
    gamma: float = option(1.0, "value: discount of the return over completion tokens (1: every token's target is "
                          "the final reward).", resume=True, low=0)

    def __post_init__(self):
        check_choices(self)
        if self.gamma > 1.0:
            raise ConfigError(f"gamma must be in [0, 1], got {self.gamma}")


def read_mode(per_token: bool) -> str:
    return "tokens"


def readout(outputs: torch.Tensor, settings, call: ScoreCall) -> dict:
    """The value of every completion token; the reward is the last one."""
    values = outputs[:, 0].float().tolist()
    return {"reward": values[-1], "values": values}


def report(path: str, metrics: dict, examples: list, details: list, model: str, data: str, obj) -> str:
    from ..eval.report_kinds import scatter

    section = scatter([v[-1] for v in points.only(details, "values")], [e.target for e in examples],
                      "value at the last token")
    return points.report_page(path, NAME, metrics, [section], model, data)


def describe(obj: Options) -> str:
    return f"kind value, {obj.value_loss} on discounted returns (gamma {obj.gamma:g})"


def parser(obj: Options):
    return parse_value


def returns_of(items: list, gamma: float) -> torch.Tensor:
    return torch.cat([discounted_returns(p.target, len(enc.reads[0]), gamma) for p, enc in items])


def loss(outputs: torch.Tensor, items: list, obj: Options) -> tuple[torch.Tensor, dict[str, float]]:
    targets = returns_of(items, obj.gamma).to(outputs.device)
    last = torch.stack([o[-1, 0] for o in points.split(outputs.detach(), items)])
    rewards = torch.tensor([p.target for p, _ in items], device=outputs.device, dtype=last.dtype)
    stats = {"sq_err_last": float(((last - rewards) ** 2).sum()), "examples": float(len(items))}
    return value_regression(outputs[:, 0], targets, obj.value_loss, obj.huber_delta, reduction="sum"), stats


def summarize(sums: dict[str, float]) -> dict[str, float]:
    return {"mse_last": sums["sq_err_last"] / sums["examples"] if sums["examples"] else float("nan")}


def metrics(examples, details: list, obj: Options) -> dict:
    """MSE and explained variance of the last token's value against the return, and the MSE
    of every token against its discounted return."""
    values = points.only(details, "values")
    out = value_metrics([v[-1] for v in values], [e.target for e in examples])
    gamma = obj.gamma if obj is not None else 1.0
    errors = [(x - float(g)) ** 2 for e, v in zip(examples, values)
              for x, g in zip(v, discounted_returns(e.target, len(v), gamma)) if x == x]
    out["token_mse"] = sum(errors) / len(errors) if errors else None
    return out
