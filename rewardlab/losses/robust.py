"""Losses that keep a reward from riding a feature of the text: pure functions of tensors.

ODIN (Chen et al. 2024, "ODIN: Disentangled Reward Mitigates Hacking in RLHF", ICML; reference
code RLHFlow/RLHF-Reward-Modeling ``odin/``). The reward model has two linear heads on one
backbone, a quality head r_Q and a length head r_L; the ranking loss is applied to their sum
r = r_Q + r_L, and two more terms, over the completions of a batch, disentangle them:

    L = L_rank(r_Q + r_L) + lambda * (L_L + L_Q)
    L_L = 1 - rho(r_L, len)          the length head correlates with the response's length
    L_Q = | rho(r_Q, len) |           the quality head does not

where rho is the Pearson correlation over the batch (the paper's Eq. 4-6 write L_L as -rho; the
reference code's 1 - rho has the same gradient) and lambda is the reference's
``correlation_with_length`` (1.0). Only r_Q is the reward an RL loop gets. The paper also states an
orthogonality penalty between the two heads' weights; the reference implementation leaves it out
(commented), and so does rewardlab. With several features (length, markdown, lists) every feature
has its own head, correlated with its feature, and the quality head is decorrelated from each:
L_L and L_Q sum over the features.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def pearson_correlation(x: Tensor, y: Tensor, eps: float = 1e-12) -> Tensor:
    """rho(x, y) over a batch of scalars, differentiable; 0 when either is constant (nothing to correlate)."""
    x = x if x.dtype == torch.float64 else x.float()  # fp32 maths; float64 stays (gradcheck)
    y = y.to(x.dtype)
    dx, dy = x - x.mean(), y - y.mean()
    var = (dx * dx).sum() * (dy * dy).sum()
    if float(var) <= eps:
        return (dx * dy).sum() * 0.0  # keeps the graph, no gradient
    return (dx * dy).sum() / torch.sqrt(var)


def disentangle_loss(heads: Tensor, features: Tensor, coef: float = 1.0) -> tuple[Tensor, dict[str, float]]:
    """ODIN's terms (module doc) for ``heads`` (S, 1 + F): column 0 the quality head, column 1 + f
    the head of feature f; ``features`` (S, F): each completion's feature values (its length...).
    Returns coef * (sum_f (1 - rho(r_f, x_f)) + sum_f |rho(r_Q, x_f)|) and the correlations."""
    if heads.shape[1] != features.shape[1] + 1:
        raise ValueError(f"{heads.shape[1]} heads for {features.shape[1]} features: expected features + 1")
    total, out = heads.new_zeros((), dtype=torch.float64 if heads.dtype == torch.float64 else torch.float32), {}
    for f in range(features.shape[1]):
        own = pearson_correlation(heads[:, 1 + f], features[:, f])
        quality = pearson_correlation(heads[:, 0], features[:, f])
        total = total + (1 - own) + quality.abs()
        out[f"corr_feature_head_{f}"], out[f"corr_quality_head_{f}"] = float(own), float(quality)
    return coef * total, out
