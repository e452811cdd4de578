"""Kind ``orm``: outcome reward model (Cobbe et al. 2021, "Training Verifiers to Solve Math
Word Problems").

A row is one completion with its outcome label (0/1, or a float in [0, 1]). Every completion
token carries the label (``orm_loss_on: all_tokens``, the paper's per-token verifier; prompt
tokens carry none) or only the last one (``last_token``). The default, ``auto``, is the first on
a causal model and the second on a bidirectional encoder: there every token already sees the
whole completion, so a per-token loss only re-weights one sequence loss by the completion's
length (long solutions count more, whatever they say). The loss is binary cross-entropy on
the head's logit (losses.pointwise.token_bce). With ``lm_coef`` the paper's joint objective
adds lm_coef x the next-token cross-entropy of each completion token (causal backbones whose
output embeddings are their input embeddings: the token classifier keeps no LM head). The model
is a token classifier with one output; its score for a completion is P(correct) =
sigmoid(logit) at the last token. Unit: a labelled token (the mean over labelled tokens).
"""

from __future__ import annotations

import torch

from dataclasses import dataclass

from ..config import ConfigError, check_choices, option
from ..data.pointwise import parse_orm
from ..eval.pointwise import orm_metrics
from ..losses import token_bce
from ..models.heads import make_batch
from . import points
from .protocol import HeadSpec, ScoreCall

NAME = "orm"
STATS = ("correct", "examples")
PER_TOKEN = True  # token_rewards: P(correct) at every completion token


@dataclass
class Options:
    """Outcome reward model: which tokens carry the label, and the joint language-model loss."""

    orm_loss_on: str = option("auto", "orm: label every completion token (all_tokens, Cobbe et al.) or the last "
                              "token only (last_token); auto: every token on a causal model, the last on a "
                              "bidirectional encoder (whose every token sees the whole completion).",
                              choices=("auto", "all_tokens", "last_token"), resume=True)
    lm_coef: float = option(0.0, "orm: adds lm_coef x the next-token cross-entropy of every completion token (Cobbe "
                            "et al.'s joint objective; causal backbones whose output embeddings are their input "
                            "embeddings, as SmolLM2's).", resume=True, low=0)

    def __post_init__(self):
        check_choices(self)
        if self.lm_coef and self.orm_loss_on == "last_token":
            raise ConfigError("--lm-coef applies to kind orm with --orm-loss-on all_tokens")


def head(obj: Options, data=None) -> HeadSpec:
    """One output per token; ``auto`` is fixed from the backbone once it is loaded."""
    def loss_on(model) -> dict:
        from ..models.backbone import is_causal

        if obj.orm_loss_on != "auto":
            return {}
        if obj.lm_coef and not is_causal(model):
            raise ConfigError("--lm-coef needs a causal backbone (an encoder predicts no next token)")
        return {"orm_loss_on": "all_tokens" if is_causal(model) else "last_token"}
    return HeadSpec("token", 1, fixed_by_model=loss_on)


def read_mode(per_token: bool) -> str:
    return "tokens" if per_token else "last"


def readout(outputs: torch.Tensor, settings, call: ScoreCall) -> dict:
    """P(correct) at the last token; with ``per_token`` at every completion token too."""
    probs = torch.sigmoid(outputs[:, 0].float()).tolist()
    return {"reward": probs[-1], **({"token_rewards": probs} if call.per_token else {})}


def report(path: str, metrics: dict, examples: list, details: list, model: str, data: str, obj) -> str:
    from ..eval.report_kinds import orm_sections

    return points.report_page(path, NAME, metrics, orm_sections(examples, points.only(details)), model, data)


def describe(obj: Options) -> str:
    on = "every token on a causal model, the last on an encoder" if obj.orm_loss_on == "auto" else \
        obj.orm_loss_on.replace("_", " ")
    return f"kind orm (outcome reward model), BCE on {on}"


def parser(obj: Options):
    return parse_orm


def encode(tokenizer, examples, max_length: int, obj: Options, num_proc: int = 1, cache_dir: str = ""):
    items, counts = points.encoder("last" if obj.orm_loss_on == "last_token" else "tokens")(tokenizer, examples,
                                                                                            max_length)
    if obj.lm_coef:  # each completion token predicted from the position before it
        for _, enc in items:
            enc.lm = [[r - 1 for r in enc.reads[0] if r > 0]]
    return items, counts


def batch(items: list, pad_id: int, path: str, device) -> dict:
    lm = [enc.lm for _, enc in items] if items and items[0][1].lm is not None else None
    return make_batch([enc.sequences for _, enc in items], pad_id, path, device,
                      reads=[enc.reads for _, enc in items], hidden_reads=lm)


def loss(outputs, items: list, obj: Options) -> tuple[torch.Tensor, dict[str, float]]:
    lm_logits = None
    if isinstance(outputs, tuple):
        outputs, lm_logits = outputs
    targets = torch.cat([torch.full((len(enc.reads[0]),), p.target) for p, enc in items]).to(outputs.device)
    last = torch.stack([o[-1, 0] for o in points.split(outputs.detach(), items)])
    labels = torch.tensor([p.target >= 0.5 for p, _ in items], device=outputs.device)
    stats = {"correct": float(((last >= 0) == labels).sum()), "examples": float(len(items))}
    value = token_bce(outputs[:, 0], targets, reduction="sum")
    if lm_logits is not None:
        next_ids = torch.tensor([enc.sequences[0][r + 1] for _, enc in items for r in enc.lm[0]], device=outputs.device)
        value = value + obj.lm_coef * torch.nn.functional.cross_entropy(lm_logits.float(), next_ids, reduction="sum")
    return value, stats


def summarize(sums: dict[str, float]) -> dict[str, float]:
    return {"accuracy": sums["correct"] / sums["examples"] if sums["examples"] else float("nan")}


def metrics(examples, details: list, obj: Options) -> dict:
    """AUROC, calibration and (rows sharing a prompt) best-of-N of P(correct) at the last token."""
    probs, answers = points.only(details), [e.answer for e in examples]
    return orm_metrics(probs, [e.target for e in examples], points.groups_of(examples),
                       answers if all(a is not None for a in answers) else None)
