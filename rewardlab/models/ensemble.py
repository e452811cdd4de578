"""Reward ensembles: how member rewards combine into one, and the bootstrap weights of reward
heads trained together on one backbone. Pure functions; the ensemble folder is
inference/ensemble.py, the weight average (WARM) inference/merge.py.

Why ensembles: an RL loop exploits a proxy reward's mistakes (reward over-optimisation, Gao et
al. 2022, arXiv 2210.10760). Members disagree most where the data said least, so a conservative
aggregate penalises exactly the texts a policy drifts to (Coste et al. 2023, arXiv 2310.02743,
"Reward Model Ensembles Help Mitigate Overoptimization"; Eisenstein et al. 2023, arXiv
2312.09244, "Helping or Herding?").
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

AGGREGATES = ("mean", "min", "mean_minus_std")
AGGREGATE_HELP = ("How member rewards combine (Coste et al. 2023): mean (mean optimisation), min (worst-case "
                  "optimisation, WCO) or mean_minus_std (uncertainty-weighted optimisation, UWO: mean - "
                  "coef x std).")


def spread(values: list[float]) -> tuple[float, float]:
    """(mean, std) of member rewards; std is the population std (divides by M, as Coste et al.'s
    variance over the ensemble), 0 for one member."""
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def aggregate(values: list[float], how: str = "mean", coef: float = 1.0) -> float:
    """One reward from the members' rewards r_1..r_M of a text:

    - ``mean``: (1/M) sum_m r_m;
    - ``min``: min_m r_m (WCO);
    - ``mean_minus_std``: mean - coef * sqrt((1/M) sum_m (r_m - mean)^2) (UWO; Coste et al.'s
      lambda is ``coef``).

    Members' rewards must be on one scale first (each standardised with its own statistics:
    :func:`standardise`), or the largest-scale member decides alone."""
    if how == "min":
        return min(values)
    mean, std = spread(values)
    if how == "mean":
        return mean
    if how == "mean_minus_std":
        return mean - coef * std
    raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, not {how!r}")


def standardise(reward: float | None, mean: float, std: float) -> float | None:
    """(r - mean) / std with a member's own reward statistics (None stays None: nothing read)."""
    return None if reward is None else (reward - mean) / (std or 1.0)


def combine(values: list[float | None], how: str, coef: float, members: bool = False) -> dict:
    """What an ensemble answers for one text: ``reward`` (the aggregate), ``reward_mean``,
    ``reward_std`` and with ``members`` each member's reward. A member that read nothing (None:
    a text cut before its reward) makes the whole answer None."""
    if any(v is None for v in values):
        out = {"reward": None, "reward_mean": None, "reward_std": None}
    else:
        mean, std = spread(values)
        out = {"reward": aggregate(values, how, coef), "reward_mean": mean, "reward_std": std}
    if members:
        out["members"] = list(values)
    return out


@lru_cache(maxsize=1 << 18)
def poisson_weights(key: str, heads: int, seed: int = 0) -> tuple[int, ...]:
    """Each head's bootstrap weight for one training prompt: a Poisson(1) count per head, drawn
    from a hash of (seed, head, key), so a prompt weighs the same in every epoch, micro-batch
    split, process and resumed run. Poisson(1) weights are the online bootstrap (Oza & Russell
    2001): as N grows each head sees a resample of the prompts with replacement."""
    out = []
    for h in range(heads):
        digest = hashlib.sha256(f"{seed}\x00{h}\x00{key}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2.0 ** 64
        k, p = 0, math.exp(-1.0)
        cdf = p
        while u > cdf and k < 64:  # inverse CDF of Poisson(1)
            k += 1
            p /= k
            cdf += p
        out.append(k)
    return tuple(out)
