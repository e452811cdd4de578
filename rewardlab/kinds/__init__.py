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
settings) what to do; nothing outside this package names a kind. :func:`register` turns a
module into a :class:`Kind`: the members it writes, and the defaults of protocol.py for the rest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from ..config import KIND_OPTIONS, ConfigError, ObjectiveArgs, ScoreOptions
from ..errors import ModelError
from . import genrm, implicit_prm, judge, orm, points, preference, prm, regression, value
from .protocol import REQUIRED, HeadSpec, ScoreCall


@dataclass(frozen=True)
class Kind:
    """A registered kind: every member of the interface (protocol.py), by role."""

    NAME: str
    Options: type
    parser: Callable
    describe: Callable
    # training
    STATS: tuple
    head: Callable
    check: Callable
    encode: Callable
    units: Callable
    batch: Callable
    forward_module: Callable
    loss: Callable
    summarize: Callable
    prepare: Callable
    # scoring
    PER_TOKEN: bool
    step_marker: Callable
    read_mode: Callable
    scored_point: Callable
    readout: Callable | None
    score_texts: Callable
    # evaluation
    FORMATS: tuple
    HEADLINE: str
    texts: Callable
    metrics: Callable
    format_eval: Callable
    report: Callable
    module: Any = None


KINDS: dict[str, Kind] = {}


def build(module) -> Kind:
    """A module's members, and the defaults (kinds/points.py) for those it leaves out."""
    missing = [m for m in REQUIRED if not hasattr(module, m) and not (m == "readout" and hasattr(module, "score_texts"))]
    if missing:
        raise TypeError(f"kind module {module.__name__} lacks {', '.join(missing)} (see rewardlab/kinds/protocol.py)")
    own = {f.name: getattr(module, f.name) for f in dataclasses.fields(Kind) if hasattr(module, f.name)}
    defaults = points.defaults(own)
    return Kind(**{**defaults, **own, "module": module})


def register(module) -> Kind:
    """Add a kind (a module written to protocol.py); its ``Options`` become flags and YAML keys of ``train``."""
    kind = build(module)
    KINDS[kind.NAME] = kind
    KIND_OPTIONS[kind.NAME] = kind.Options
    return kind


for _module in (preference, orm, prm, value, regression, genrm, judge, implicit_prm):
    register(_module)

DEFAULT = preference.NAME  # a Hugging Face reward model saved without rewardlab's settings


def get(name: str) -> Kind:
    if name not in KINDS:
        raise ConfigError(f"unknown kind {name!r} (known: {', '.join(KINDS)})")
    return KINDS[name]


def of_model(settings, where: str = "this model") -> Kind:
    """The kind a model was trained as."""
    try:
        return get(settings.kind)
    except ConfigError as e:
        raise ModelError(f"{where} was trained as {e} (a newer rewardlab?)") from None


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


def saved_options(kind: Kind, settings, **overrides):
    """The options a model of this kind was trained with (saved in its settings; keys from
    another version are left out), with ``overrides`` for the fields this kind has."""
    known = {f.name for f in dataclasses.fields(kind.Options)}
    values = {k: v for k, v in {**settings.objective, **overrides}.items() if k in known}
    return kind.Options(**values)


def score_fields(kind: Kind) -> dict[str, str]:
    """Score option name -> the ``Options`` field it sets, for the fields a kind marks ``score=``."""
    return {f.metadata["score"]: f.name for f in dataclasses.fields(kind.Options) if f.metadata.get("score")}


def takers(name: str) -> list[str]:
    """The kinds that take score option ``name``."""
    return [k for k, kind in KINDS.items() if name in score_fields(kind) or (name == "per_token" and kind.PER_TOKEN)]


def scoring_options(kind: Kind, settings, given: ScoreOptions | None = None, **evaluation):
    """The kind's options for one scoring call: as saved, with the score-time options ``given``
    (those of the kind's; one it does not take is an error naming the kinds that do) and
    ``evaluation`` options (a threshold) where the kind has them."""
    wanted = given.of_kind() if given is not None else {}
    fields = score_fields(kind)
    for name in wanted:
        if name not in fields:
            raise ConfigError(f"--{name.replace('_', '-')}: a model of kind {kind.NAME} does not take it (it applies "
                              f"to {', '.join(takers(name)) or 'no kind'})")
    if given is not None and given.per_token and not kind.PER_TOKEN:
        raise ConfigError(f"--per-token: a model of kind {kind.NAME} has no per-token rewards (they apply to "
                          f"{', '.join(takers('per_token'))})")
    evaluation = {fields[k]: v for k, v in evaluation.items() if k in fields}
    try:
        return saved_options(kind, settings, **{fields[k]: v for k, v in wanted.items()}, **evaluation)
    except ConfigError as e:
        raise ConfigError(f"score options: {e}") from None


__all__ = ["DEFAULT", "HeadSpec", "KINDS", "Kind", "ScoreCall", "build", "get", "of_model", "options", "register",
           "saved_options", "score_fields", "scoring_options"]
