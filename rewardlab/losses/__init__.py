"""Reward-model losses: pure functions of reward tensors, ``(loss, metrics)`` out.

Preference objectives (:mod:`rewardlab.losses.preference`):

- :func:`bradley_terry`: BT with margin (Llama 2), label smoothing, per-pair weights, centering.
- :func:`bradley_terry_log1p`: the log(1 + e^-d) form of BT (tests that both forms agree).
- :func:`balanced_bradley_terry`: InstructGPT's per-prompt averaging of the C(K, 2) pairs.
- :func:`scaled_bradley_terry` and :func:`preference_strength`: HelpSteer2-Preference scaled BT.
- :func:`davidson`: BT with ties (Davidson 1970), fixed or learned tie parameter.
- :func:`plackett_luce`: K-wise rankings, with ties (Breslow), partial rankings and padding.
- :func:`pairwise_metrics`: accuracy (strict), ties, mean margin, mean reward.
"""

from .preference import (
    balanced_bradley_terry,
    bradley_terry,
    bradley_terry_log1p,
    davidson,
    pairwise_metrics,
    plackett_luce,
    preference_strength,
    scaled_bradley_terry,
)

__all__ = [
    "balanced_bradley_terry",
    "bradley_terry",
    "bradley_terry_log1p",
    "davidson",
    "pairwise_metrics",
    "plackett_luce",
    "preference_strength",
    "scaled_bradley_terry",
]
