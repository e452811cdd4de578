"""Reward-model losses: pure functions of reward tensors.

Preference losses return ``(loss, metrics)``; pointwise losses return the loss alone.

Preference objectives (:mod:`rewardlab.losses.preference`):

- :func:`bradley_terry`: BT with margin (Llama 2), label smoothing, per-pair weights, centering.
- :func:`bradley_terry_log1p`: the log(1 + e^-d) form of BT (tests that both forms agree).
- :func:`balanced_bradley_terry`: InstructGPT's per-prompt averaging of the C(K, 2) pairs.
- :func:`scaled_bradley_terry` and :func:`preference_strength`: HelpSteer2-Preference scaled BT.
- :func:`davidson`: BT with ties (Davidson 1970), fixed or learned tie parameter.
- :func:`plackett_luce`: K-wise rankings, with ties (Breslow), partial rankings and padding.
- :func:`pairwise_metrics`: accuracy (strict), ties, mean margin, mean reward.

Robust rewards (:mod:`rewardlab.losses.robust`):

- :func:`disentangle_loss`: ODIN's terms, a head per feature (length...) correlated with it and the
  quality head decorrelated from it (Chen et al. 2024); :func:`pearson_correlation`.

Pointwise objectives (:mod:`rewardlab.losses.pointwise`):

- :func:`token_bce`: per-token / per-step BCE from logits, soft labels kept (ORM, binary/soft PRM).
- :func:`step_cross_entropy`: the 3-class PRM800K step head.
- :func:`discounted_returns` and :func:`value_regression`: value targets and MSE / Huber regression.
- :func:`masked_regression` and :func:`attribute_errors`: multi-attribute ratings, unrated ones masked.
"""

from .pointwise import (
    attribute_errors,
    discounted_returns,
    masked_regression,
    step_cross_entropy,
    token_bce,
    value_regression,
)
from .robust import disentangle_loss, pearson_correlation
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
    "attribute_errors",
    "balanced_bradley_terry",
    "bradley_terry",
    "bradley_terry_log1p",
    "davidson",
    "discounted_returns",
    "disentangle_loss",
    "masked_regression",
    "pairwise_metrics",
    "pearson_correlation",
    "plackett_luce",
    "preference_strength",
    "scaled_bradley_terry",
    "step_cross_entropy",
    "token_bce",
    "value_regression",
]
