"""Drift: are the rewards a server answers still distributed as the model's were in training?

A policy optimised against a reward model moves its samples where the reward is high, and often
where the model has never seen text; the rewards it gets then drift from the distribution the
model produced on its training data. The server keeps the last ``window`` rewards it answered
(per model; for an ensemble, per member, each in its own standardised units) and compares them
with the statistics saved with the model (``train --reward-stats``, or an ensemble's
calibration):

    mean shift = (mean_served - mean_train) / std_train
    std ratio  = std_served / std_train
    PSI        = sum_b (p_b - q_b) ln(p_b / q_b)

over ten bins of equal mass under N(mean_train, std_train) (q_b = 0.1; p_b the served share, at
least 1e-4). A PSI of 0.1 is the usual "watch", 0.25 the usual "act" (the default warning).
Exported as Prometheus gauges, reported in ``GET /health``, and said once in the server's log
when the PSI passes ``--drift-threshold``. Optionally each served text's length and reward is
appended to a JSONL file (``--drift-log``, bounded by ``--drift-log-mb``).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import threading
from collections import deque
from pathlib import Path

_NORMAL = statistics.NormalDist()
EDGES = [_NORMAL.inv_cdf(k / 10) for k in range(1, 10)]  # the deciles of a standard normal


def psi(values: list[float], mean: float, std: float) -> float:
    """The population-stability index of ``values`` against N(mean, std) over ten equal-mass bins."""
    counts = [0] * 10
    for v in values:
        z = (v - mean) / std if std > 0 else 0.0
        counts[sum(z > e for e in EDGES)] += 1
    out = 0.0
    for c in counts:
        p = max(c / len(values), 1e-4)
        out += (p - 0.1) * math.log(p / 0.1)
    return out


class Watch:
    """The served rewards of one model (or ensemble member) against its saved mean and std."""

    def __init__(self, name: str, mean: float, std: float, window: int = 10000):
        self.name, self.mean, self.std = name, mean, std or 1.0
        self.values: deque = deque(maxlen=window)

    def add(self, rewards: list) -> None:
        self.values.extend(r for r in rewards if isinstance(r, (int, float)) and r == r)

    def report(self) -> dict:
        n = len(self.values)
        if n < 2:
            return {"n": n, "mean_shift": None, "std_ratio": None, "psi": None}
        values = list(self.values)
        mean, std = statistics.fmean(values), statistics.stdev(values)
        return {"n": n, "mean_shift": (mean - self.mean) / self.std, "std_ratio": std / self.std,
                "psi": psi(values, self.mean, self.std)}


class Drift:
    """Every watched distribution of a server, the warning said once, and the optional log."""

    def __init__(self, watches: list[Watch], threshold: float = 0.25, log: str = "", log_mb: float = 64.0,
                 min_samples: int = 200, say=None):
        self.watches, self.threshold, self.min_samples = watches, threshold, min_samples
        self.say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.warned: set[str] = set()
        self.log, self.log_left = log, int(log_mb * 2**20)
        self.lock = threading.Lock()

    @classmethod
    def of(cls, rm, threshold: float, log: str = "", log_mb: float = 64.0, window: int = 10000) -> "Drift | None":
        """The watches a served model allows: its own statistics, or for an ensemble each member's
        (members are standardised, so each is watched against N(0, 1)); None when there is nothing
        to compare with and no log."""
        members = getattr(rm, "members", None)
        if members is not None:
            watches = [Watch(name, 0.0, 1.0, window) for name in rm.names]
        elif rm.reward_stats is not None:
            watches = [Watch(rm.name or "model", rm.reward_stats.mean, rm.reward_stats.std, window)]
        else:
            watches = []
        return cls(watches, threshold, log, log_mb, min_samples=min(200, window)) if watches or log else None

    def add(self, details: list[dict], lengths: list[int]) -> None:
        """The answers of one batch (before any normalisation) and their texts' lengths in tokens."""
        with self.lock:
            if len(self.watches) > 1:  # an ensemble: each member's standardised reward
                for m, watch in enumerate(self.watches):
                    watch.add([d["members"][m] for d in details if d.get("members")])
            elif self.watches:
                self.watches[0].add([d["reward"] for d in details])
            self._log(details, lengths)
            for watch in self.watches:
                r = watch.report()
                if r["psi"] is not None and r["n"] >= self.min_samples and r["psi"] > self.threshold \
                        and watch.name not in self.warned:
                    self.warned.add(watch.name)
                    self.say(f"rewardlab serve: warning: the rewards of {watch.name} drifted from its training "
                             f"distribution: PSI {r['psi']:.3f} > {self.threshold:g} over the last {r['n']} "
                             f"(mean shift {r['mean_shift']:+.2f} std, std ratio {r['std_ratio']:.2f})")

    def _log(self, details: list[dict], lengths: list[int]) -> None:
        if not self.log or self.log_left <= 0:
            return
        data = b""
        for d, n in zip(details, lengths):  # whole lines only, until the size bound
            line = (json.dumps({"tokens": n, "reward": d.get("reward")}) + "\n").encode()
            if len(data) + len(line) > self.log_left:
                self.log_left = 0
                break
            data += line
        Path(self.log).parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as f:
            f.write(data)
        self.log_left = max(0, self.log_left - len(data)) if self.log_left else 0

    def report(self) -> dict:
        """Per watched name: n, mean_shift, std_ratio, psi; and the threshold."""
        with self.lock:
            return {"threshold": self.threshold, "models": {w.name: w.report() for w in self.watches}}
