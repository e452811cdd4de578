"""What a saved model carries about itself: :class:`ModelSettings`, written by training into the
model's ``config.json`` (under ``rewardlab``) and read, never changed, by everything that loads it.

A folder stays a standard Hugging Face folder: plain ``transformers`` loads it and ignores this
key. The settings are typed and versioned; :meth:`ModelSettings.from_dict` also reads the flat
dictionary of version 1 (folders saved before the settings had a version), so older folders
load as they did. A folder from a newer rewardlab (a higher version) is refused in one line.

What is here: the kind and the options it was trained with (``objective``; the kind reads them
typed, ``rewardlab.kinds.saved_options``), how text is encoded (``max_length``,
``apply_chat_template``), the head (``head``, ``num_labels``, ``ensemble_size``), where training
started (``backbone``, ``trust_remote_code``), what the kind's head fixed from the tokenizer or the
data (``extras``: token ids, attribute names, a verifier's question), and the reward statistics
measured after training (``reward_stats``, ``train --reward-stats``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelError

VERSION = 2
_V1_STATS = ("reward_mean", "reward_std", "reward_stats_n")
_V1_MERGE = ("merged_from", "merge_weights")


@dataclass(frozen=True)
class RewardStats:
    """Mean and standard deviation of a model's rewards over ``n`` completions (training's with
    ``--reward-stats``): ``serve --normalize`` and ensembles standardise with them."""

    mean: float
    std: float
    n: int | None = None


@dataclass(frozen=True)
class ModelSettings:
    """A saved reward model's own description (see the module docstring). Frozen: a command
    that reads a model differently (a PRM's aggregate, an ensemble's) passes score-time options
    (:class:`rewardlab.config.ScoreOptions`) instead of editing these."""

    kind: str = "preference"
    objective: dict = field(default_factory=dict)
    head: str = "sequence"
    num_labels: int = 1
    max_length: int = 512
    apply_chat_template: bool = False
    backbone: str = ""
    trust_remote_code: bool = False
    ensemble_size: int = 1
    extras: dict = field(default_factory=dict)
    reward_stats: RewardStats | None = None
    merged: dict | None = None
    version: int = VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON object saved as ``config.rewardlab`` (round trip: :meth:`from_dict`)."""
        out = dataclasses.asdict(self)
        out["objective"], out["extras"] = dict(self.objective), dict(self.extras)
        return out

    @classmethod
    def from_dict(cls, raw: dict | None, where: str = "the model") -> "ModelSettings":
        """Settings as saved: version 2 (this layout) or the flat version-1 dictionary."""
        raw = dict(raw or {})
        version = raw.get("version", 1)
        if not isinstance(version, int) or version > VERSION:
            raise ModelError(f"{where}: its settings have version {version!r}; this rewardlab reads up to "
                             f"{VERSION} (saved by a newer rewardlab?)")
        if version == 1:
            raw = _from_v1(raw)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ModelError(f"{where}: unknown settings {', '.join(unknown)} (saved by a newer rewardlab?)")
        stats = raw.get("reward_stats")
        raw["reward_stats"] = RewardStats(**stats) if isinstance(stats, dict) else None
        raw["version"] = VERSION
        return cls(**raw)

    @classmethod
    def of(cls, model) -> "ModelSettings":
        """The settings in a loaded model's config (defaults for a folder without them)."""
        return cls.from_dict(getattr(model.config, "rewardlab", None))

    def replace(self, **changes) -> "ModelSettings":
        return dataclasses.replace(self, **changes)


def _from_v1(raw: dict) -> dict:
    """Version 1 kept everything at the top level: the common keys, the reward statistics, the
    merge's record, and whatever the kind's head added (its extras)."""
    common = {f.name for f in dataclasses.fields(ModelSettings)} - {"extras", "reward_stats", "merged", "version"}
    out = {k: raw[k] for k in common if k in raw}
    if "reward_std" in raw:
        out["reward_stats"] = {"mean": raw["reward_mean"], "std": raw["reward_std"], "n": raw.get("reward_stats_n")}
    if any(k in raw for k in _V1_MERGE):
        out["merged"] = {k: raw[k] for k in _V1_MERGE if k in raw}
    out["extras"] = {k: v for k, v in raw.items() if k not in common and k not in (*_V1_STATS, *_V1_MERGE, "version",
                                                                                   "ensemble")}
    return out
