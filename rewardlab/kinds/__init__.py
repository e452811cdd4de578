"""Model kinds: what differs between them, one small module each (the interface: protocol.py).

- preference: one reward per completion from pairs / K-wise orders (Bradley-Terry, ...);
- orm: outcome reward model, per-token P(correct) (Cobbe et al. 2021);
- prm: process reward model, a label per reasoning step (Lightman et al. 2023);
- value: per-token value function regressed on the (discounted) return;
- regression: N attribute ratings per completion (HelpSteer, ArmoRM's first stage).

Training, scoring, serving and evaluation ask the kind a model was trained as (saved in its
``config.rewardlab["kind"]``) what to do; nothing outside this package names a kind.
"""

from __future__ import annotations

import dataclasses

from ..config import ConfigError, ObjectiveArgs
from . import orm, preference, prm, regression, value
from .protocol import Kind

KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> None:
    """Add a kind (a module providing every member of :class:`Kind`)."""
    KINDS[kind.NAME] = kind


for _module in (preference, orm, prm, value, regression):
    register(_module)

DEFAULT = preference.NAME  # a Hugging Face reward model saved without rewardlab's settings


def get(name: str) -> Kind:
    if name not in KINDS:
        raise ConfigError(f"unknown kind {name!r} (known: {', '.join(KINDS)})")
    return KINDS[name]


def check_options(kind: Kind, obj: ObjectiveArgs) -> None:
    """Another kind's option set away from its default is an error naming its kind (a typo'd
    ``--kind`` never silently ignores the options that were meant for it); then the kind's own rules."""
    defaults = ObjectiveArgs()
    for other in KINDS.values():
        for name in other.OPTIONS:
            if name not in kind.OPTIONS and getattr(obj, name) != getattr(defaults, name):
                raise ConfigError(f"--{name.replace('_', '-')} applies to kind {other.NAME}; kind {kind.NAME} "
                                  "does not use it")
    kind.validate(obj)


def objective_of(settings: dict) -> ObjectiveArgs:
    """The objective a model was trained with (saved in its settings; unknown keys from another
    version are left out)."""
    known = {f.name for f in dataclasses.fields(ObjectiveArgs)}
    return ObjectiveArgs(**{k: v for k, v in settings.get("objective", {}).items() if k in known})


def option_groups() -> dict[str, tuple[str, ...]]:
    """``--help`` sections: each kind's options under its name."""
    return {f"kind {k.NAME}": k.OPTIONS for k in KINDS.values() if k.OPTIONS}
