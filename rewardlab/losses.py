"""Reward-model losses: pure functions of reward tensors.

Every function takes rewards (any float dtype; the maths runs in fp32) and returns
``(loss, metrics)`` where ``loss`` is a scalar tensor with gradient and ``metrics`` is a
dict of detached floats. No function here sees a model or a tokenizer, so each one can be
unit-tested against a value worked out by hand.

Sums and means: ``reduction="sum"`` returns the sum over examples instead of the mean. The
training loop uses it to divide by the number of examples in the *whole* accumulated batch,
which makes gradient accumulation exactly equal to one large batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _reduce(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    raise ValueError(f"reduction must be 'mean' or 'sum', not {reduction!r}")


def pairwise_metrics(chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, float]:
    """Accuracy (strict: a tie counts as wrong, as in RewardBench), ties and mean margin."""
    diff = (chosen.detach().float() - rejected.detach().float())
    return {
        "accuracy": (diff > 0).float().mean().item(),
        "ties": int((diff == 0).sum().item()),
        "mean_margin": diff.mean().item(),
        "reward_mean": torch.cat([chosen.detach(), rejected.detach()]).float().mean().item(),
    }


def bradley_terry(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_coefficient: float = 0.0,
    reduction: str = "mean",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Bradley-Terry pairwise loss, with the optional Llama 2 margin and reward centering.

    L_i = -log sigma(r_c,i - r_r,i - m_i)  [+ c * (r_c,i + r_r,i)^2]

    - Bradley & Terry (1952); as a reward-model loss: Ouyang et al. 2022 (InstructGPT).
      ``-log sigma(d)`` equals ``log(1 + exp(-d))`` (Askell et al. 2021), see
      :func:`bradley_terry_log1p`; computed with ``logsigmoid`` it cannot overflow.
    - Margin m >= 0 (Touvron et al. 2023, Llama 2): the chosen reward must exceed the
      rejected one by at least m before the loss flattens. ``margin=None`` or 0 is plain BT.
    - Centering (Eisenstein et al. 2023; TRL ``center_rewards_coefficient``) keeps rewards
      near zero mean.

    Args:
        chosen, rejected: rewards, shape (B,).
        margin: per-pair margins, shape (B,), or None.
        center_coefficient: c above; 0 disables it.
        reduction: "mean" or "sum" over the B pairs.
    """
    rc, rr = chosen.float(), rejected.float()
    diff = rc - rr
    if margin is not None:
        diff = diff - margin.float()
    per_pair = -F.logsigmoid(diff)
    if center_coefficient:
        per_pair = per_pair + center_coefficient * (rc + rr) ** 2
    return _reduce(per_pair, reduction), pairwise_metrics(chosen, rejected)


def bradley_terry_log1p(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """The second form of the BT loss in the seed (Askell et al. 2021): mean log(1 + e^(r_r - r_c)).

    Written with ``softplus`` so large gaps do not overflow. Kept to test that both forms agree.
    """
    return F.softplus(rejected.float() - chosen.float()).mean()


def plackett_luce(rewards: torch.Tensor, reduction: str = "mean") -> tuple[torch.Tensor, dict[str, float]]:
    """K-wise Plackett-Luce loss (Zhu et al. 2023, "Principled RLHF"; Starling 7B).

    ``rewards`` has shape (B, K) with each row already in rank order: column 0 is the most
    preferred completion. For one row,

        L = -sum_{k=0}^{K-1} [ r_k - logsumexp_{j >= k} r_j ]

    The last term is always 0 (one item left), so K=2 gives exactly -log sigma(r_0 - r_1),
    the Bradley-Terry loss.
    """
    r = rewards.float()
    # logsumexp over the suffix j >= k, for every k: flip, cumulative logsumexp, flip back.
    suffix_lse = torch.logcumsumexp(r.flip(-1), dim=-1).flip(-1)
    per_row = -(r - suffix_lse)[:, :-1].sum(-1)
    acc = (r[:, :-1] > r[:, 1:]).float().mean().item()
    return _reduce(per_row, reduction), {"accuracy": acc}
