"""An ensemble of reward models as a folder: ``ensemble.json`` naming its members (paths
relative to the folder), each member's reward statistics, and the default aggregation.

    rewardlab ensemble --model A --model B --model C --output runs/ens
    RewardModel.from_pretrained("runs/ens").score(prompts, completions)   # the aggregate

Each member's reward is standardised with its own statistics, (r - mean_m) / std_m (saved at
training with ``train --reward-stats``, or measured on ``--calibration-data`` and kept in
``ensemble.json``), then combined by ``aggregate`` (models/ensemble.py: mean, min,
mean_minus_std). A text's answer holds ``reward`` (the aggregate), ``reward_mean``,
``reward_std`` and, asked for, ``members``. Members are any reward models with one reward per
text (different backbones and kinds too), as long as they read rows alike: the same chat
template use and step marker. A model trained with ``--heads N`` is a member like any other
(its reward is the mean of its heads).

This module loads members through a ``load`` function it is given (``RewardModel.from_pretrained``
passes itself), so imports point one way.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..config import ENSEMBLE_OPTIONS, ScoreOptions, score_options
from ..data.encode import Counts
from ..errors import ConfigError, ModelError
from ..models.ensemble import AGGREGATES, combine, standardise
from .scoring import Scores

FILE = "ensemble.json"


def is_ensemble(path: str) -> bool:
    return Path(path, FILE).is_file()


def _tokenizer_identity(rm) -> str:
    """Members with the same vocabulary and rules tokenize alike (their encodings can be shared)."""
    tok = rm.tokenizer
    return hashlib.sha256(json.dumps([type(tok).__name__, sorted(tok.get_vocab().items()),
                                      tok.eos_token, tok.bos_token]).encode()).hexdigest()


def check_members(members: list, names: list[str]) -> None:
    """Members must each be one model and read rows alike (one line otherwise)."""
    if len(members) < 2:
        raise ConfigError(f"an ensemble needs at least 2 members, got {len(members)}")
    first = members[0]
    for rm, name in zip(members, names):
        if isinstance(rm, Ensemble):
            raise ConfigError(f"{name}: an ensemble folder; give its members instead")
        if rm.chat != first.chat or (rm.chat and rm.tokenizer.chat_template != first.tokenizer.chat_template):
            raise ConfigError(f"{name}: renders conversations differently from {names[0]} (chat template use or "
                              "template); members must read rows alike")
        if rm.step_marker != first.step_marker:
            def reads(m):
                return f"steps ending at {m.step_marker!r}" if m.step_marker is not None else "a solution as one text"
            raise ConfigError(f"{name} (kind {rm.kind}) reads {reads(rm)}, {names[0]} (kind {first.kind}) reads "
                              f"{reads(first)}: members must read rows alike (process reward models with the same "
                              "step marker, or models that read whole texts)")


def reward_stats(rm, name: str, calibration: list | None) -> dict:
    """A member's reward mean and std: measured on ``calibration`` rewards when given, else the
    statistics saved at training (``--reward-stats``)."""
    if calibration is not None:
        flat = [r for r in calibration if r is not None]
        if len(flat) < 2:
            raise ConfigError(f"{name}: fewer than 2 rewards read from --calibration-data")
        mean = sum(flat) / len(flat)
        std = (sum((r - mean) ** 2 for r in flat) / (len(flat) - 1)) ** 0.5
        return {"reward_mean": mean, "reward_std": std, "n": len(flat), "from": "calibration"}
    stats = rm.settings.reward_stats
    if stats is None:
        raise ConfigError(f"{name}: no saved reward statistics to standardise its rewards with: train it with "
                          "--reward-stats, or give --calibration-data ROWS")
    return {"reward_mean": stats.mean, "reward_std": stats.std, "n": stats.n, "from": "training"}


def write_ensemble(output: str, names: list[str], stats: list[dict], aggregate: str, coef: float,
                   calibration_data: str = "") -> dict:
    """Write ``output/ensemble.json``; member paths are kept relative to ``output``."""
    if aggregate not in AGGREGATES:
        raise ConfigError(f"--aggregate must be one of {', '.join(AGGREGATES)}, not {aggregate!r}")
    Path(output).mkdir(parents=True, exist_ok=True)
    spec = {"format": "rewardlab-ensemble", "version": 1, "aggregate": aggregate, "uncertainty_coef": coef,
            "calibration_data": calibration_data or None,
            "members": [{"path": os.path.relpath(Path(n).resolve(), Path(output).resolve()), **s}
                        for n, s in zip(names, stats)]}
    Path(output, FILE).write_text(json.dumps(spec, indent=2) + "\n")
    return spec


class Ensemble(Scores):
    """Reward models scored together; the same scoring methods as :class:`RewardModel`.
    ``aggregate`` and ``coef`` are the ensemble's own (saved in its folder); ``options``: the
    score-time options this view reads with (``ensemble_aggregate``, ``uncertainty_coef`` and
    ``members`` are the ensemble's; the members were loaded with the others)."""

    kind = "ensemble"
    reward_stats = None  # members are standardised with their own; the aggregate has none saved

    def __init__(self, members: list, stats: list[dict], aggregate: str = "mean", coef: float = 1.0,
                 names: list[str] | None = None, options: ScoreOptions | None = None, name: str = ""):
        self.members, self.stats, self.name = members, stats, name
        self.names = names or [f"member {i + 1}" for i in range(len(members))]
        first = members[0]
        self.tokenizer, self.chat, self.max_length = first.tokenizer, first.chat, first.max_length
        self.rules, self.step_marker, self.device = first.rules, first.step_marker, first.device
        self.ensemble_size = len(members)
        self.saved = {"aggregate": aggregate, "uncertainty_coef": coef}
        self.options = options or ScoreOptions()
        o = self.options
        self.aggregate = o.ensemble_aggregate if o.ensemble_aggregate != "saved" else aggregate
        self.uncertainty_coef = o.uncertainty_coef if o.uncertainty_coef >= 0 else coef
        self.with_members = o.members
        same = _tokenizer_identity(first)
        self._shares = [i == 0 or _tokenizer_identity(m) == same for i, m in enumerate(members)]
        self._caches: dict = {}

    def with_options(self, options=None, **more) -> "Ensemble":
        """The same members read with other score-time options (the ensemble's; the rest each member's)."""
        options = score_options(options, **more)
        theirs = {k: v for k, v in options.given().items() if k not in ENSEMBLE_OPTIONS}
        return Ensemble([m.with_options(theirs) for m in self.members], self.stats, self.saved["aggregate"],
                        self.saved["uncertainty_coef"], self.names, options, self.name)

    @property
    def reading(self) -> dict:
        """How the members' rewards are combined in this view: aggregate, uncertainty_coef, members."""
        return {"aggregate": self.aggregate, "uncertainty_coef": self.uncertainty_coef, "members": self.with_members}

    @classmethod
    def from_pretrained(cls, path: str, load, options: ScoreOptions | None = None) -> "Ensemble":
        """The folder's members, each loaded by ``load(member_path)`` (with the score-time
        options that are not the ensemble's); ``options``: all of them."""
        try:
            spec = json.loads(Path(path, FILE).read_text())
            entries = spec["members"]
            aggregate, coef = spec.get("aggregate", "mean"), float(spec.get("uncertainty_coef", 1.0))
            paths = [str(Path(path, e["path"])) for e in entries]
            stats = [{"reward_mean": float(e["reward_mean"]), "reward_std": float(e["reward_std"])} for e in entries]
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(f"{path}/{FILE}: not a rewardlab ensemble ({type(e).__name__}: {e})") from None
        for p in paths:
            if not Path(p).exists():
                raise ModelError(f"{path}/{FILE}: member {p} does not exist (member paths are relative to the "
                                 "ensemble folder)")
        return cls([load(p) for p in paths], stats, aggregate, coef, paths, options, path)

    def _combine(self, per_member: list[list[dict]]) -> list[dict]:
        out = []
        for reads in zip(*per_member):
            values = [standardise(d["reward"], s["reward_mean"], s["reward_std"]) for d, s in zip(reads, self.stats)]
            out.append(combine(values, self.aggregate, self.uncertainty_coef, self.with_members))
        return out

    @staticmethod
    def _counts(all_counts: list) -> Counts:
        """Truncated: the most any member cut; tokens: every member's."""
        known = [c for c in all_counts if c is not None]
        if not known:
            return None
        return Counts(total=known[0].total, truncated=max(c.truncated for c in known),
                      sent=sum(c.sent for c in known), processed=sum(c.processed for c in known))

    def score_details(self, texts: list, batch_size: int = 16, max_tokens: int = 16384, share_prefixes: bool = True,
                      encoded: list | None = None, cache=None, groups: list | None = None) -> tuple[list[dict], Counts]:
        """Every member scores the texts (a member with the first member's tokenizer reuses
        ``encoded``; each member keeps its own prefix cache), then the aggregate."""
        per_member, counts = [], []
        for i, rm in enumerate(self.members):
            details, c = rm.score_details(texts, batch_size, max_tokens, share_prefixes,
                                          encoded if self._shares[i] else None, self._cache(i, cache), groups)
            per_member.append(details)
            counts.append(c)
        return self._combine(per_member), self._counts(counts)

    def _cache(self, i: int, cache):
        """The first member uses the server's prefix cache; the others one each of the same size."""
        if cache is None or i == 0:
            return cache
        if i not in self._caches:
            self._caches[i] = type(cache)(cache.max_bytes, cache.block)
        return self._caches[i]
