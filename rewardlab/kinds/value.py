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
from ..eval.pointwise import format_pointwise, value_metrics
from ..losses import discounted_returns, value_regression
from ..models.heads import HeadOutputs
from . import points

NAME = "value"
COMPARES = False  # a text's reward does not depend on the texts scored with it
STATS = ("sq_err_last", "examples")
ONE_REWARD_HEAD, FORMATS = points.ONE_REWARD_HEAD, points.FORMATS
forward_module = HeadOutputs
batch = points.batch
head, check, units, texts = points.token_head, points.no_check, points.units, points.texts
step_marker, scored_point = points.no_marker, points.scored_point
score_texts, prepare = points.score_texts, points.no_prepare
format_eval = format_pointwise


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


def readout(outputs: torch.Tensor, settings: dict, per_token: bool = False) -> dict:
    """The value of every completion token; the reward is the last one."""
    values = outputs[:, 0].float().tolist()
    return {"reward": values[-1], "values": values}


def report(path: str, metrics: dict, examples: list, outputs: list, model: str, data: str, obj) -> str:
    from ..eval.report_kinds import scatter

    section = scatter([v[-1] for v in outputs], [e.target for e in examples], "value at the last token")
    return points.report_page(path, NAME, metrics, [section], model, data)


def describe(obj: Options) -> str:
    return f"kind value, {obj.value_loss} on discounted returns (gamma {obj.gamma:g})"


def parser(obj: Options):
    return parse_value


def encode(tokenizer, examples, max_length: int, obj: Options, num_proc: int = 1, cache_dir: str = ""):
    return points.encoder("tokens")(tokenizer, examples, max_length)


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


def score(model, tokenizer, examples, max_length: int, batch_size: int = 16, obj: Options | None = None):
    """The value of every completion token, one list per example (NaN where truncation cut it)."""
    outputs, counts = points.score(model, tokenizer, examples, max_length, batch_size, "tokens")
    return [o[:, 0].tolist() for o in outputs], counts


def metrics(examples, values: list[list[float]], obj: Options) -> dict:
    """MSE and explained variance of the last token's value against the return, and the MSE
    of every token against its discounted return."""
    out = value_metrics([v[-1] for v in values], [e.target for e in examples])
    gamma = obj.gamma if obj is not None else 1.0
    errors = [(x - float(g)) ** 2 for e, v in zip(examples, values)
              for x, g in zip(v, discounted_returns(e.target, len(v), gamma)) if x == x]
    out["token_mse"] = sum(errors) / len(errors) if errors else None
    return out
