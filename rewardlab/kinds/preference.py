"""Kind ``preference``: one reward per completion, learned from an order over K completions.

An example is a prompt with K >= 2 completions and their tiers (see data/preference.py); a
pair is K = 2. Every completion is forwarded once per step; the loss consumes the K rewards:

- ``bt``: Bradley-Terry on every strict pair the order implies (a correct solution above each
  incorrect one...), with the Llama 2 margin, label smoothing and centering. Unit: a pair.
  With ``balance`` (InstructGPT) a prompt's pair losses are averaged. Unit: a prompt.
- ``scaled_bt``: pairs weighted by the preference strength |score difference| (HelpSteer2-
  Preference); rows without scores weigh 1. Unit: a pair (a prompt with ``balance``).
- ``plackett_luce``: the K-wise ranking likelihood, ties by Breslow's rule, partial rankings.
  Unit: a prompt.
- ``davidson``: Bradley-Terry with ties; tied pairs count too. Unit: a pair, strict or tied.

The unit is what the exact accumulation rule counts: the loop divides the summed loss by
the units of the whole optimizer step.
"""

from __future__ import annotations

import math

import torch

from dataclasses import dataclass

from ..config import ConfigError, check_choices, option
from ..data.augment import rrm_augment
from ..data.encode import encode_examples, example_texts
from ..data.features import feature_names, feature_values
from ..data.preference import Example, check_example
from ..errors import DataError
from ..eval.preference import example_metrics, format_metrics
from ..losses import (balanced_bradley_terry, bradley_terry, davidson, disentangle_loss, plackett_luce,
                      preference_strength)
from ..models.ensemble import combine, poisson_weights
from ..models.heads import completion_rewards, make_batch
from ..models.readout import score_rewards
from .protocol import HeadSpec, ScoreCall

NAME = "preference"
LOSSES = ("bt", "scaled_bt", "plackett_luce", "davidson")


@dataclass
class Options:
    """The loss (formulas in rewardlab/losses/preference.py) and how ties are read in evaluation."""

    loss: str = option("bt", "bt: Bradley-Terry on every strict pair implied by the row; scaled_bt: pairs weighted by "
                       "preference strength |score difference| (HelpSteer2-Preference); plackett_luce: K-wise "
                       "ranking likelihood (ties by Breslow's rule); davidson: Bradley-Terry with ties, which also "
                       "learns from tied pairs.", choices=LOSSES, resume=True)
    balance: bool = option(False, "InstructGPT balancing (bt, scaled_bt): average each prompt's pair losses so every "
                           "prompt weighs the same whatever its number of completions K.", resume=True)
    margin: str = option("column", "Llama 2 margin: column (a pair row's `margin` column, 0 if absent), score_diff "
                         "(score difference x --margin-scale, for rows with scores) or none.",
                         choices=("column", "score_diff", "none"), resume=True)
    margin_scale: float = option(1.0, "Multiplies the score difference with --margin score_diff.", resume=True, low=0)
    strength_map: str = option("", "scaled_bt: remap |score difference| to a strength, e.g. '1:1,2:3,3:10' (INF-ORM); "
                               "empty: the difference itself.", resume=True)
    davidson_nu: float = option(1.0, "davidson: the tie parameter nu > 0 (P(tie) grows with it; fixed during "
                                "training).", resume=True, above=0)
    label_smoothing: float = option(0.0, "bt, scaled_bt: conservative Bradley-Terry, eps in [0, 0.5): each pair is "
                                    "taken as mislabelled with probability eps.", resume=True, low=0)
    center_rewards_coefficient: float = option(0.0, "bt, scaled_bt: adds c * (r_better + r_worse)^2 per pair to "
                                               "keep rewards centred (TRL's option).", resume=True, low=0)
    tie_threshold: float = option(0.1, "Evaluation: a tied pair counts as predicted tied when its rewards differ by "
                                  "at most this many standard deviations of the model's rewards.", low=0)
    heads: int = option(1, "Train N independently initialised reward heads on one shared backbone, each on its own "
                        "bootstrap resample of the prompts (Poisson(1) weights), in one forward per step: an "
                        "ensemble at one model's cost, scored as mean and std (members sharing a backbone disagree "
                        "less than separately trained ones: Eisenstein et al. 2023).", resume=True, low=1)
    heads_seed: int = option(0, "--heads: the seed of the bootstrap weights.", resume=True)
    disentangle: str = option("", "ODIN (Chen et al. 2024): a head per named feature (length, markdown, lists; comma-"
                              "separated) beside the quality head, trained on their sum with each feature head "
                              "correlated with its feature and the quality head decorrelated from it (batch Pearson "
                              "correlation); the quality head alone is the reward.", resume=True)
    disentangle_coef: float = option(1.0, "--disentangle: lambda, the weight of the correlation terms (ODIN's "
                                     "reference: 1).", resume=True, low=0)
    rrm: bool = option(False, "RRM (Liu et al. 2024): each training example also ranks itself above two completions "
                       "written for another prompt (tied with each other), so the reward learns what depends on the "
                       "prompt rather than on style; the counts are said at the start.", resume=True)

    def __post_init__(self):
        check_choices(self)
        try:
            feature_names(self.disentangle)
        except ValueError as e:
            raise ConfigError(f"--disentangle: {e}") from None
        if self.disentangle and self.heads > 1:
            raise ConfigError("--disentangle and --heads both set the reward head's outputs: use one of them")
        if self.label_smoothing >= 0.5:
            raise ConfigError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        pairwise = self.loss in ("bt", "scaled_bt")
        if self.balance and not pairwise:
            raise ConfigError(f"--balance applies to bt and scaled_bt; {self.loss} already weighs each prompt once")
        if (self.label_smoothing or self.center_rewards_coefficient) and not pairwise:
            raise ConfigError(f"label_smoothing and center_rewards_coefficient apply to bt and scaled_bt, not {self.loss}")
        if self.strength_map:
            self.strength_table()
            if self.loss != "scaled_bt":
                raise ConfigError("--strength-map applies to --loss scaled_bt")
        if self.margin != "column" and not pairwise:
            raise ConfigError(f"--margin applies to bt and scaled_bt; {self.loss} has no margin")

    def strength_table(self) -> dict[float, float] | None:
        """'1:1,2:3' -> {1.0: 1.0, 2.0: 3.0}."""
        if not self.strength_map:
            return None
        try:
            return {float(k): float(v) for k, v in (part.split(":") for part in self.strength_map.split(","))}
        except ValueError:
            raise ConfigError(f"strength_map must look like '1:1,2:3,3:10', got {self.strength_map!r}") from None


STATS = ("correct", "pairs", "completions")  # summed over a step's micro-batches and processes
FORMATS = ("pairs", "groups")
forward_module = completion_rewards
format_eval = format_metrics
texts = example_texts


def readout(outputs: torch.Tensor, settings, call: ScoreCall) -> dict:
    """The reward: the head's one output. With N heads (``--heads``) the heads are an ensemble:
    their aggregate (the call's ``heads_aggregate``, ``uncertainty_coef``, ``members``; default
    the mean), ``reward_mean`` and ``reward_std``. With ``--disentangle`` the first output, the
    quality head, is the reward; each feature head's output (``reward_length``...) and their sum
    (``reward_total``, what the ranking loss trained) come with it."""
    if outputs.shape[-1] == 1:
        return {"reward": float(outputs[0, 0])}
    if features := settings.extras.get("disentangle"):
        row = outputs[0].tolist()
        return {"reward": row[0], **{f"reward_{name}": x for name, x in zip(features, row[1:])},
                "reward_total": sum(row)}
    return combine(outputs[0].tolist(), call.heads_aggregate, call.uncertainty_coef, call.members)


def score_texts(rm, texts: list, call: ScoreCall):
    """One reward per text, read at its last token; the texts of a prompt share its encoding
    (across rows too: exact, see models/shared_prompt.py) and a server's prefix cache."""
    sizes = [len(g) for g in call.groups] if call.groups else None
    order = [i for g in call.groups for i in g] if call.groups else list(range(len(texts)))
    encoded = [call.encoded[i] for i in order] if call.encoded is not None else None
    rewards, counts = score_rewards(rm.model, rm.tokenizer, [texts[i] for i in order], rm.max_length, sizes,
                                    call.batch_size, call.max_tokens, call.share_prefixes, encoded, call.cache)
    out: list = [None] * len(texts)
    for i, r in zip(order, rewards):
        out[i] = readout(torch.tensor([r if isinstance(r, list) else [r]]), rm.settings, call)
    return out, counts


def report(path: str, metrics: dict, examples: list, details: list, model: str, data: str, obj) -> str:
    from ..eval.report import write_report

    return write_report(path, metrics, examples, rewards_of(details), model, data)


def head(obj: Options, data=None) -> HeadSpec:
    if obj.disentangle:  # output 0: the quality head (the reward), then one head per feature
        features = feature_names(obj.disentangle)
        return HeadSpec("sequence", 1 + len(features), labels=("quality", *features),
                        extras={"disentangle": features})
    return HeadSpec("sequence", obj.heads, ensemble_size=obj.heads)


def parser(obj: Options):
    return check_example


def encode(tokenizer, examples: list[Example], max_length: int, obj: Options, num_proc: int = 1,
           cache_dir: str = ""):
    """Examples -> (example, token ids) items; with ``rrm`` each first gets its two borrowed
    completions (data/augment.py), said in the counts' notes."""
    note = None
    if obj.rrm:
        try:
            examples, note = rrm_augment(examples)
        except ValueError as e:
            raise ConfigError(f"--rrm: {e}" + (" (with --streaming it sees one row at a time: read the data whole)"
                                               if len(examples) == 1 else "")) from None
    items, counts = encode_examples(tokenizer, examples, max_length, num_proc, cache_dir)
    if note:
        counts.notes.append(note)
    return items, counts


def rewards_of(details: list[list[dict]]) -> list[list[float]]:
    """Each example's rewards, one per completion."""
    return [[d["reward"] for d in g] for g in details]


def metrics(examples: list[Example], details: list[list[dict]], obj: Options) -> dict:
    return example_metrics(examples, rewards_of(details), obj.tie_threshold)


def describe(obj: Options) -> str:
    extra = [name for name, on in (("balanced", obj.balance), (f"margin {obj.margin}", obj.margin != "column"),
                                   (f"label smoothing {obj.label_smoothing}", obj.label_smoothing)) if on]
    extra += [f"{obj.heads} bootstrap heads"] if obj.heads > 1 else []
    extra += [f"ODIN heads for {obj.disentangle} (lambda {obj.disentangle_coef:g})"] if obj.disentangle else []
    extra += ["RRM augmentation"] if obj.rrm else []
    return f"kind preference, loss {obj.loss}" + (f" ({', '.join(extra)})" if extra else "")


def check(example: Example, where: str, obj: Options) -> None:
    """What the chosen loss needs of a row, as a one-line DataError."""
    if not example.strict_pairs() and not example.tied_pairs():
        raise DataError(f"{where}: the row compares nothing (no completion is ranked above or tied with another)")
    if obj.loss in ("bt", "scaled_bt") and not example.strict_pairs():
        raise DataError(f"{where}: all completions tie, and loss {obj.loss} cannot use ties "
                        "(--loss davidson or plackett_luce can)")
    if obj.margin == "score_diff" and obj.loss != "plackett_luce" and example.scores is None:
        raise DataError(f"{where}: --margin score_diff needs a 'scores' column")
    if obj.loss == "scaled_bt" and example.scores is not None and obj.strength_table():
        try:
            preference_strength(torch.tensor([example.scores[i] - example.scores[j]
                                              for i, j in example.strict_pairs()]), obj.strength_table())
        except ValueError as e:
            raise DataError(f"{where}: {e}") from None


def units(item, obj: Options) -> int:
    example = item[0]
    if obj.loss == "plackett_luce" or obj.balance:
        return 1
    if obj.loss == "davidson":
        return len(example.strict_pairs()) + len(example.tied_pairs())
    return len(example.strict_pairs())


def batch(items: list, pad_id: int, path: str, device) -> dict:
    return make_batch([g.sequences for _, g in items], pad_id, path, device)


def _pairs(examples: list[Example], obj: Options, device):
    """Index tensors into the flat rewards: better, worse, group, margin, strength, tied."""
    better, worse, group, margin, strength, tied = [], [], [], [], [], []
    offset = 0
    for g, e in enumerate(examples):
        both = [(p, False) for p in e.strict_pairs()]
        if obj.loss == "davidson":
            both += [(p, True) for p in e.tied_pairs()]
        for (i, j), is_tie in both:
            better.append(offset + i)
            worse.append(offset + j)
            group.append(g)
            tied.append(is_tie)
            diff = e.scores[i] - e.scores[j] if e.scores is not None else None
            m = {"column": e.margin, "none": 0.0}.get(obj.margin, (diff or 0.0) * obj.margin_scale)
            margin.append(m)
            strength.append(diff)  # None: a row without scores weighs 1
        offset += len(e.completions)

    def t(values, dtype):
        return torch.tensor(values, dtype=dtype, device=device)

    return (t(better, torch.long), t(worse, torch.long), t(group, torch.long), t(margin, torch.float32),
            strength, t(tied, torch.bool))


def loss(rewards: torch.Tensor, items: list, obj: Options) -> tuple[torch.Tensor, dict[str, float]]:
    """Summed loss over the items' units, and the step statistics (correct / strict pairs).

    With N heads (rewards (S, N)) each head h has its own loss, every unit weighted by its
    prompt's bootstrap count w_{p,h} ~ Poisson(1) (:func:`rewardlab.models.ensemble.poisson_weights`):
    L = (1/N) sum_h sum_units w_{p(unit),h} L_{unit,h}. Units stay the accumulation's
    denominator, so an accumulated step equals one large step; one head is the plain loss."""
    examples = [e for e, _ in items]
    heads = None
    if obj.disentangle:  # the ranking loss on the heads' sum; ODIN's terms on the heads themselves
        heads, rewards = rewards, rewards.sum(-1)
    pairs = _pairs(examples, obj, rewards.device)
    b, w, _, _, _, tied = pairs
    mean = rewards if rewards.dim() == 1 else rewards.mean(-1)
    strict = ~tied
    stats = {"correct": float((mean[b] > mean[w])[strict].sum()), "pairs": float(strict.sum()),
             "completions": float(rewards.shape[0])}  # rows forwarded: each completion exactly once
    if heads is not None:
        return _per_unit(rewards, examples, pairs, obj)[0].sum() + _disentangle(heads, items, obj), stats
    if rewards.dim() == 1:
        return _per_unit(rewards, examples, pairs, obj)[0].sum(), stats
    counts = torch.tensor([poisson_weights(e.prompt, obj.heads, obj.heads_seed) for e in examples],
                          dtype=torch.float32, device=rewards.device)
    total = rewards.new_zeros(())
    for h in range(rewards.shape[1]):
        per_unit, unit_prompt = _per_unit(rewards[:, h], examples, pairs, obj)
        total = total + (per_unit * counts[unit_prompt, h]).sum()
    return total / rewards.shape[1], stats


def _disentangle(heads: torch.Tensor, items: list, obj: Options) -> torch.Tensor:
    """ODIN's terms over this micro-batch's completions, weighted by its units: the loop divides
    by the units of the whole step, so a step averages them over its micro-batches (as the
    reference computes them over each step's batch; with accumulation, not over the whole step)."""
    names = feature_names(obj.disentangle)
    texts = [c for e, _ in items for c in e.completions]
    features = torch.tensor(feature_values(texts, names), dtype=torch.float32, device=heads.device)
    value, _ = disentangle_loss(heads, features, obj.disentangle_coef)
    return value * sum(units(item, obj) for item in items)


def _per_unit(rewards: torch.Tensor, examples: list[Example], pairs, obj: Options) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of each unit for one reward per completion, and each unit's prompt index."""
    b, w, group, margin, strength, tied = pairs
    every = torch.arange(len(examples), device=rewards.device)
    if obj.loss == "plackett_luce":
        return _plackett_luce(rewards, examples), every
    if obj.loss == "davidson":
        value, _ = davidson(rewards[b], rewards[w], tied, math.log(obj.davidson_nu), reduction="none")
        return value, group
    weight = _strengths(strength, obj, rewards.device) if obj.loss == "scaled_bt" else None
    margin = margin if obj.margin != "none" and bool(margin.any()) else None
    if obj.balance:  # every prompt has a strict pair (check), so the units are the prompts in order
        value, _ = balanced_bradley_terry(rewards[b], rewards[w], group, len(examples), margin,
                                          obj.center_rewards_coefficient, "none", obj.label_smoothing, weight)
        return value, every
    value, _ = bradley_terry(rewards[b], rewards[w], margin, obj.center_rewards_coefficient, "none",
                             obj.label_smoothing, weight)
    return value, group


def _strengths(diffs: list, obj: Options, device) -> torch.Tensor:
    """Preference strength per pair from the score difference; pairs of rows without scores weigh 1."""
    scored = [i for i, d in enumerate(diffs) if d is not None]
    out = torch.ones(len(diffs), device=device)
    if scored:
        out[scored] = preference_strength(torch.tensor([diffs[i] for i in scored]), obj.strength_table()).to(device)
    return out


def _plackett_luce(rewards: torch.Tensor, examples: list[Example]) -> torch.Tensor:
    """Pad the K rewards of each prompt to (G, K_max) and call the pure loss."""
    k_max = max(len(e.completions) for e in examples)
    padded = rewards.new_zeros(len(examples), k_max)
    tiers = torch.full((len(examples), k_max), -1, dtype=torch.long)
    unranked = torch.zeros(len(examples), k_max, dtype=torch.bool)
    offset = 0
    for g, e in enumerate(examples):
        k = len(e.completions)
        padded[g, :k] = rewards[offset:offset + k]
        for i, t in enumerate(e.tiers):
            tiers[g, i] = k_max if t is None else t
            unranked[g, i] = t is None
        offset += k
    value, _ = plackett_luce(padded, tiers.to(rewards.device), unranked.to(rewards.device), reduction="none")
    return value


def summarize(sums: dict[str, float]) -> dict[str, float]:
    """Step statistics for the progress bar and metrics.jsonl."""
    return {"accuracy": sums["correct"] / sums["pairs"] if sums["pairs"] else float("nan"),
            "completions": sums["completions"]}
