"""Weight-averaged reward models (WARM: Rame et al. 2024, arXiv 2401.12187, "WARM: On the
Benefits of Weight Averaged Reward Models"): members fine-tuned from one pre-trained base stay
linearly connected in weight space, so their parameter mean theta = sum_m w_m theta_m is a
reward model that is more robust than each member at the cost of one (unlike an ensemble,
which costs M forwards). Members that do not share a base do not average into anything
useful; the check here is the one that can be made (same kind, architecture, parameter names
and shapes, tokenizer), the shared base is the user's to ensure.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import ModelSettings
from ..errors import ConfigError
from .ensemble import _tokenizer_identity


def parse_weights(text: str, n: int) -> list[float]:
    """'1,2,1' -> [0.25, 0.5, 0.25]; empty: equal weights."""
    if not text:
        return [1.0 / n] * n
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"--weights must be comma-separated numbers, got {text!r}") from None
    if len(values) != n:
        raise ConfigError(f"--weights has {len(values)} values for {n} --model")
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ConfigError(f"--weights must be >= 0 with a positive sum, got {text!r}")
    return [v / sum(values) for v in values]


def _plain(rm):
    """A loaded member's transformers model, a LoRA adapter merged into its base (once: the
    member then holds the merged model)."""
    if hasattr(rm.model, "merge_and_unload"):
        rm.model = rm.model.merge_and_unload()
    return rm.model


def check_mergeable(members: list, names: list[str]) -> None:
    """One line naming the first member that cannot be averaged with the first."""
    if len(members) < 2:
        raise ConfigError(f"merge needs at least 2 models, got {len(members)}")
    first, first_state = members[0], _plain(members[0]).state_dict()
    for rm, name in zip(members[1:], names[1:]):
        if getattr(rm, "ensemble_size", 1) > 1 and hasattr(rm, "members"):
            raise ConfigError(f"{name}: an ensemble folder; merge its members instead")
        if rm.kind != first.kind:
            raise ConfigError(f"{name}: kind {rm.kind}, but {names[0]} is {first.kind}; only models of one kind "
                              "average")
        if type(_plain(rm)).__name__ != type(_plain(first)).__name__:
            raise ConfigError(f"{name}: a {type(_plain(rm)).__name__}, but {names[0]} is a "
                              f"{type(_plain(first)).__name__}")
        state = _plain(rm).state_dict()
        if state.keys() != first_state.keys():
            extra = sorted(set(state) ^ set(first_state))[:3]
            raise ConfigError(f"{name}: parameters differ from {names[0]}'s (e.g. {', '.join(extra)})")
        for key, value in state.items():
            if value.shape != first_state[key].shape:
                raise ConfigError(f"{name}: {key} has shape {tuple(value.shape)}, {names[0]}'s "
                                  f"{tuple(first_state[key].shape)}; fine-tune both from the same base")
        if _tokenizer_identity(rm) != _tokenizer_identity(first):
            raise ConfigError(f"{name}: its tokenizer differs from {names[0]}'s")


@torch.no_grad()
def average(members: list, weights: list[float]) -> torch.nn.Module:
    """The first member's model holding sum_m w_m theta_m (accumulated in float64, stored in
    each tensor's own dtype); integer buffers (position ids) are the first member's."""
    models = [_plain(rm) for rm in members]
    states = [m.state_dict() for m in models]
    merged = {}
    for key, value in states[0].items():
        if not value.is_floating_point():
            merged[key] = value
            continue
        total = sum(w * s[key].double() for w, s in zip(weights, states))
        merged[key] = total.to(value.dtype)
    out = models[0]
    out.load_state_dict(merged)
    return out


def merged_settings(settings: ModelSettings, names: list[str], weights: list[float]) -> ModelSettings:
    """The first member's settings, without reward statistics (they described one member), and
    where the weights came from."""
    return settings.replace(reward_stats=None, merged={"merged_from": [str(Path(n).resolve()) for n in names],
                                                       "merge_weights": weights})
