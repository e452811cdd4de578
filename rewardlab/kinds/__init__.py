"""Model kinds: what differs between them, one small module each (the interface: protocol.py).

- preference: one reward per completion from pairs / K-wise orders (Bradley-Terry, ...);
- orm: outcome reward model, per-token P(correct) (Cobbe et al. 2021);
- prm: process reward model, a label per reasoning step (Lightman et al. 2023);
- value: per-token value function regressed on the (discounted) return;
- regression: N attribute ratings per completion (HelpSteer, ArmoRM's first stage);
- genrm: a generative verifier, p(Yes) after a verification question (Zhang et al. 2024);
- judge: a pairwise judge trained on MT-Bench's prompt, both orders ([[A]] / [[B]] / [[C]]);
- implicit_prm: implicit process rewards beta log(pi / pi_ref) from outcome labels (Yuan et al. 2024).

Training, scoring, serving and evaluation ask the kind a model was trained as (saved in its
``config.rewardlab["kind"]``) what to do; nothing outside this package names a kind.
"""

from __future__ import annotations

import dataclasses

from ..config import KIND_OPTIONS, ConfigError, ObjectiveArgs
from . import genrm, implicit_prm, judge, orm, preference, prm, regression, value
from .protocol import Kind

KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> None:
    """Add a kind (a module providing every member of :class:`Kind`); its ``Options`` become
    flags and YAML keys of ``train``."""
    KINDS[kind.NAME] = kind
    KIND_OPTIONS[kind.NAME] = kind.Options


for _module in (preference, orm, prm, value, regression, genrm, judge, implicit_prm):
    register(_module)

DEFAULT = preference.NAME  # a Hugging Face reward model saved without rewardlab's settings


def get(name: str) -> Kind:
    if name not in KINDS:
        raise ConfigError(f"unknown kind {name!r} (known: {', '.join(KINDS)})")
    return KINDS[name]


def options(kind: Kind, objective: ObjectiveArgs):
    """The kind's own options from a run's objective. Another kind's option set away from its
    default is an error naming that kind (a typo'd ``--kind`` never silently ignores the
    options that were meant for it)."""
    for name, given in objective.options.items():
        if name == kind.NAME:
            continue
        default = KIND_OPTIONS[name]()
        for f in dataclasses.fields(given):
            if getattr(given, f.name) != getattr(default, f.name):
                raise ConfigError(f"--{f.name.replace('_', '-')} applies to kind {name}; kind {kind.NAME} "
                                  "does not use it")
    return objective.of(kind.NAME)


def objective_of(settings: dict, **overrides):
    """The options a model of this kind was trained with (saved in its settings; keys from
    another version or another kind are left out), with ``overrides`` for the fields this kind has."""
    cls = get(settings.get("kind", DEFAULT)).Options
    known = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in {**settings.get("objective", {}), **overrides}.items() if k in known}
    return cls(**values)
