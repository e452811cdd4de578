"""Flags and YAML files -> configs: one flag per field, the precedence rules, and the
dictionaries a run saves (see the package docstring)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, NamedTuple, get_type_hints

import yaml

from ..errors import ConfigError


def _groups(cls: type) -> dict[str, type]:
    """Group name -> group class, for the fields of ``cls`` that are config groups."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


class Leaf(NamedTuple):
    """One flag: its group (None: a top-level field), the field, its type, and the sub-group it
    sits in (a kind's options inside ``objective``; None elsewhere)."""

    group: str | None
    field: dataclasses.Field
    type: type
    sub: str | None = None


def _subgroups(group_cls: type) -> tuple[str | None, dict[str, type]]:
    """A group's field that holds sub-groups (``ObjectiveArgs.options``: each kind's options
    dataclass, by kind) and those sub-groups; (None, {}) for a plain group."""
    for f in dataclasses.fields(group_cls):
        if "groups" in f.metadata:
            return f.name, dict(f.metadata["groups"])
    return None, {}


def _leaves(cls: type) -> dict[str, Leaf]:
    """Flat field name -> where it sits; every flag and YAML key of ``cls``."""
    groups, hints, out = _groups(cls), get_type_hints(cls), {}

    def add(name: str, leaf: Leaf) -> None:
        assert name not in out, f"field {name} is defined twice"
        out[name] = leaf

    for f in dataclasses.fields(cls):
        if f.name not in groups:
            add(f.name, Leaf(None, f, hints[f.name]))
            continue
        holder, subs = _subgroups(groups[f.name])
        group_hints = get_type_hints(groups[f.name])
        for g in dataclasses.fields(groups[f.name]):
            if g.name != holder:
                add(g.name, Leaf(f.name, g, group_hints[g.name]))
        for sub, sub_cls in subs.items():
            sub_hints = get_type_hints(sub_cls)
            for g in dataclasses.fields(sub_cls):
                add(g.name, Leaf(f.name, g, sub_hints[g.name], sub))
    return out


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# The names TRL (RewardConfig / TrainingArguments) and OpenRLHF (train_rm) users bring, and rewardlab's.
PEER_NAMES = {
    "learning_rate": "lr", "per_device_train_batch_size": "batch_size", "train_batch_size": "batch_size",
    "micro_train_batch_size": "batch_size", "gradient_accumulation_steps": "grad_accum",
    "accumulation_steps": "grad_accum", "num_train_epochs": "epochs", "max_epochs": "epochs", "max_len": "max_length",
    "output_dir": "output", "save_path": "output", "model_name_or_path": "model", "pretrain": "model",
    "dataset": "data", "train_dataset": "data", "eval_dataset": "eval_data", "lr_scheduler_type": "lr_schedule",
    "lr_scheduler": "lr_schedule", "warmup_steps": "warmup_ratio", "save_steps": "save_every",
    "logging_steps": "log_every", "eval_steps": "eval_every", "lora_rank": "lora_r", "lora_dropout": "lora_dropout",
    "per_device_eval_batch_size": "eval_batch_size", "center_rewards_coefficient": "center_rewards_coefficient",
    "resume_from_checkpoint": "resume", "report_to": "report_to", "gradient_checkpointing": "gradient_checkpointing",
    "input_key": "prompt_key", "chosen_key": "chosen_key", "rejected_key": "rejected_key",
}


def suggest(name: str, known) -> str:
    """'; did you mean X?' for an unknown option: the rewardlab name of a TRL or OpenRLHF option,
    else the closest known name; empty when nothing is close."""
    import difflib

    name = name.replace("-", "_")
    ours = PEER_NAMES.get(name)
    if ours in known:
        return f"; did you mean {ours}?"
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.7)
    return f"; did you mean {close[0]}?" if close else ""


def add_arguments(parser: argparse.ArgumentParser, cls: type, choices: dict[str, tuple] | None = None) -> None:
    """One flag per field, with the field's doc as help, in one argparse group per config
    group (each kind's options in a section of their own). Defaults are left unset (None) so
    we can tell which flags the user typed. ``choices``: allowed values of fields whose list
    is not known here (``--kind``: the registered kinds)."""
    sections = {g: parser.add_argument_group(g, sub.__doc__) for g, sub in _groups(cls).items()}
    for sub_cls in _groups(cls).values():
        for sub, options in _subgroups(sub_cls)[1].items():
            sections[sub] = parser.add_argument_group(f"kind {sub}", options.__doc__)
    leaves = _leaves(cls)
    for name, (group, f, kind, sub) in leaves.items():
        target = sections.get(sub or group, parser)
        default = f.default
        printed = repr(default) if isinstance(default, str) and not default.isprintable() else default  # "\\n"
        shown = "" if default in ("", None) or kind is bool and default is False else f" (default: {printed})"
        if kind is bool and default is True:
            shown = " (default: on)"
        help_text = (f.metadata["help"] + shown).replace("%", "%%")
        allowed = f.metadata.get("choices") or (choices or {}).get(name)
        extra = {"choices": allowed} if allowed else {}
        if extra:
            help_text = help_text.replace("%%", "%").replace("%", "%%")
        if kind is bool:
            target.add_argument(_flag(name), dest=name, default=None, action=argparse.BooleanOptionalAction,
                                help=help_text)
        elif f.metadata.get("repeat"):
            target.add_argument(_flag(name), dest=name, default=None, action="append", metavar=name.upper(),
                                help=help_text)
        elif f.metadata.get("bare"):
            target.add_argument(_flag(name), dest=name, default=None, nargs="?", const=f.metadata["bare"],
                                metavar=name.upper(), help=help_text)
        else:
            target.add_argument(_flag(name), dest=name, default=None, type=kind, help=help_text,
                                metavar=name.upper() if not extra else "{" + ",".join(extra["choices"]) + "}",
                                **extra)


def load_config(cls: type, yaml_path: str | None, args: argparse.Namespace | dict | None = None):
    """Build ``cls`` from defaults, then the YAML file, then flags that were given."""
    leaves = _leaves(cls)
    groups = _groups(cls)
    values: dict[str, Any] = {}
    if yaml_path:
        path = Path(yaml_path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot read config: {e}".replace("\n", " ")) from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: config must be a mapping of field: value")
        flat_items = []
        for key, value in loaded.items():
            key = str(key).replace("-", "_")
            if key in groups and isinstance(value, dict):
                flat_items += [(str(k).replace("-", "_"), v, f"{key}.") for k, v in value.items()]
            else:
                flat_items.append((key, value, ""))
        for key, value, prefix in flat_items:
            if key not in leaves or (prefix and leaves[key][0] != prefix[:-1]):
                raise ConfigError(f"{path}: unknown key {prefix + key!r}{suggest(key, leaves)} (valid keys: "
                                  f"{', '.join(sorted(leaves))})")
            meta = leaves[key][1].metadata
            if meta.get("repeat") and isinstance(value, list):
                values[key] = [_coerce(v, str, f"{path}: key {key!r}") for v in value]
            else:
                values[key] = _coerce(value, leaves[key][2], f"{path}: key {key!r}", bool(meta.get("bare")))
    given = vars(args) if isinstance(args, argparse.Namespace) else (args or {})
    for key, value in given.items():
        if key in leaves and value is not None:
            values[key] = value
        elif key not in leaves and key not in ("command", "config"):
            raise ConfigError(f"unknown option {key!r}{suggest(key, leaves)}")
    parts: dict[str | None, dict] = {g: {} for g in groups}
    parts[None] = {}
    subs: dict[str, dict[str, dict]] = {g: {} for g in groups}
    for key, value in values.items():
        leaf = leaves[key]
        if leaf.sub is None:
            parts[leaf.group][key] = value
        else:
            subs[leaf.group].setdefault(leaf.sub, {})[key] = value
    built = {}
    for g, group_cls in groups.items():
        holder, sub_classes = _subgroups(group_cls)
        if holder is not None:  # every kind's options, from the values given for it
            parts[g][holder] = {sub: sub_classes[sub](**vals) for sub, vals in subs[g].items()}
        built[g] = group_cls(**parts[g])
    return cls(**parts[None], **built)


def _coerce(value: Any, typ: type, where: str, bare: bool = False) -> Any:
    if typ is bool or isinstance(value, bool) and bare:  # resume: true in YAML
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if typ in (int, float) and isinstance(value, str):
        try:  # YAML 1.1 reads 2e-5 (no dot) as a string
            return typ(value)
        except ValueError:
            raise ConfigError(f"{where}: expected {typ.__name__}, got {value!r}") from None
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if typ is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{where}: expected {typ.__name__}, got {value!r}")


def to_dict(config) -> dict[str, Any]:
    """Flat ``{field: value}``, whatever the grouping (what checkpoints and trackers record)."""
    out = {}
    for name, leaf in _leaves(type(config)).items():
        holder = getattr(config, leaf.group) if leaf.group else config
        if leaf.sub is not None:
            holder = holder.of(leaf.sub)
        out[name] = getattr(holder, name)
    return out


def resume_values(config) -> dict[str, Any]:
    """The fields marked ``resume``: a resumed run must have the same values."""
    flat = to_dict(config)
    return {name: flat[name] for name, leaf in _leaves(type(config)).items() if leaf.field.metadata.get("resume")}
