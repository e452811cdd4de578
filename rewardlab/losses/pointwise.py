"""Pointwise losses: each labelled unit (token, step, rating) is scored on its own, with no pair.

Where the preference losses compare two rewards, these fit a reward, a probability or a value to a
label given for one unit:

- Outcome reward models (ORM; Cobbe et al. 2021, "Training Verifiers to Solve Math Word Problems"):
  every completion token carries the correctness y in {0, 1} of the final answer, and the verifier
  is trained with per-token binary cross-entropy, see :func:`token_bce`.
- Process reward models (PRM): one label per reasoning step. Binary labels (Lightman et al. 2023,
  "Let's Verify Step by Step") and soft Monte-Carlo labels, the fraction of rollouts from the step
  that reach the right answer (Math-Shepherd, Wang et al. 2024), also use :func:`token_bce`; the
  3-class head on PRM800K's -1 / 0 / +1 ratings uses :func:`step_cross_entropy`.
- Value functions (e.g. PPO's critic): per-token regression of the return G_t, see
  :func:`discounted_returns` and :func:`value_regression`.
- Multi-attribute ratings (HelpSteer, ArmoRM; Wang et al. 2024, "Interpretable Preferences via
  Multi-Objective Reward Modeling and Mixture-of-Experts"): squared error over the attributes that
  were rated, see :func:`masked_regression`.

Conventions (as in :mod:`rewardlab.losses.preference`, except the return value):

- Tensors in, a 0-dim loss tensor out (no metrics dict); :func:`attribute_errors` gives the
  per-attribute errors for metrics.
- Precision: fp32 maths whatever the input dtype, except float64, which stays float64 (gradcheck).
- Stability: BCE from logits (``binary_cross_entropy_with_logits``, i.e. softplus), never
  ``log(sigmoid)``; cross-entropy through ``log_softmax``.
- ``reduction="sum"`` (the default: the training loop divides by the number of labelled units of
  the whole accumulated batch itself) or ``"mean"`` over the units named in each docstring.
- Shapes must match exactly: broadcasting (R, 1) against (R,) would silently build an (R, R) loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .preference import _f, _reduce

Tensor = torch.Tensor


def _same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"shapes must match, got {shapes}")


def token_bce(logits: Tensor, targets: Tensor, reduction: str = "sum") -> Tensor:
    """Binary cross-entropy of each labelled position, from logits (ORM and binary/soft PRM).

    L_i = -[ t_i log sigma(x_i) + (1 - t_i) log(1 - sigma(x_i)) ] = softplus(x_i) - t_i x_i

    - ORM (Cobbe et al. 2021): t_i in {0, 1} is the correctness of the solution, on every token.
    - PRM (Lightman et al. 2023): t_i in {0, 1} on each step's label position.
    - Soft PRM labels (Math-Shepherd, Wang et al. 2024): t_i in [0, 1] stays a float, so the loss
      is minimised at sigma(x_i) = t_i (dL/dx = sigma(x) - t). TRL's PRMTrainer int()-truncates
      the label, which would turn 0.3 into 0 and train toward sigma = 0.

    Args:
        logits: (R,), the logits of the R positions that carry a label.
        targets: (R,), floats (or 0/1 integers / bools) in [0, 1]; otherwise ValueError.
        reduction: "sum" or "mean" over the R positions.
    """
    x = _f(logits)
    t = targets.to(device=x.device, dtype=x.dtype)
    _same_shape(logits=x, targets=t)
    if not bool(((t >= 0) & (t <= 1)).all()):  # written this way round so that NaN fails too
        raise ValueError("targets must be in [0, 1]")
    return _reduce(F.binary_cross_entropy_with_logits(x, t, reduction="none"), reduction)


def step_cross_entropy(logits: Tensor, classes: Tensor, reduction: str = "sum") -> Tensor:
    """Cross-entropy of a C-class step head (PRM800K: ratings -1 / 0 / +1 as classes 0 / 1 / 2).

    L_i = -log softmax(x_i)[c_i] = logsumexp_j x_ij - x_i,c_i      (Lightman et al. 2023)

    Args:
        logits: (R, C), one row per labelled step.
        classes: (R,) long in [0, C). Anything else is a ValueError, -100 included: plain
            ``F.cross_entropy`` would skip that row silently (its ``ignore_index``).
        reduction: "sum" or "mean" over the R steps.
    """
    x = _f(logits)
    c = classes.to(x.device, torch.long)
    if x.dim() != 2 or c.shape != x.shape[:1]:
        raise ValueError(f"logits must be (R, C) and classes (R,), got {tuple(x.shape)} and {tuple(c.shape)}")
    num_classes = x.shape[1]
    if c.numel() and (int(c.min()) < 0 or int(c.max()) >= num_classes):
        raise ValueError(f"classes must be in [0, {num_classes}), got {int(c.min())}..{int(c.max())}")
    return _reduce(F.cross_entropy(x, c, reduction="none"), reduction)


def discounted_returns(reward: float, n: int, gamma: float = 1.0) -> Tensor:
    """Return of each of n completion tokens when the only reward R comes after the last one.

    G_t = sum_{k >= t} gamma^(k - t) r_k with r_{n-1} = R and every other r_k = 0, so
    G_t = gamma^(n - 1 - t) R, t = 0..n-1. gamma = 1 gives R on every token (the ORM target);
    gamma = 0 gives R on the last token only.

    Returns a float32 tensor of shape (n,). n < 0 or gamma outside [0, 1]: ValueError.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n!r}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], not {gamma!r}")
    # float64 powers, cast once: long completions would otherwise compound fp32 rounding
    steps_left = torch.arange(n - 1, -1, -1, dtype=torch.float64)
    return (float(reward) * torch.pow(float(gamma), steps_left)).float()


def value_regression(
    values: Tensor,
    returns: Tensor,
    loss: str = "mse",
    delta: float = 1.0,
    reduction: str = "sum",
) -> Tensor:
    """Per-token regression of the return G_t by a value head (e.g. PPO's critic).

    r_t = V_t - G_t
    "mse":    L_t = r_t^2
    "huber":  L_t = r_t^2 / 2                 if |r_t| <= delta     (Huber 1964)
                    delta (|r_t| - delta / 2)  otherwise

    Huber is quadratic near zero and linear beyond delta, so its gradient is clipped to
    [-delta, delta] and one badly wrong return cannot dominate the step. delta = 1 is PyTorch's
    ``smooth_l1_loss``; note that inside delta it is half the "mse" value (the usual Huber scale).

    Args:
        values: the predictions, e.g. (T,) over the tokens.
        returns: the targets, the same shape; used as given (detach them if they were computed
            from the model).
        loss: "mse" or "huber"; anything else: ValueError. delta > 0 (Huber only).
        reduction: "sum" or "mean" over the tokens.
    """
    v = _f(values)
    g = returns.to(device=v.device, dtype=v.dtype)
    _same_shape(values=v, returns=g)
    if loss == "mse":
        per_token = (v - g) ** 2
    elif loss == "huber":
        if not delta > 0:
            raise ValueError(f"delta must be > 0, not {delta!r}")
        per_token = F.huber_loss(v, g, reduction="none", delta=delta)
    else:
        raise ValueError(f"loss must be 'mse' or 'huber', not {loss!r}")
    return _reduce(per_token, reduction)


def _masked_squared_error(predictions: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    p = _f(predictions)
    t = targets.to(device=p.device, dtype=p.dtype)
    m = mask.to(p.device, torch.bool)
    _same_shape(predictions=p, targets=t, mask=m)
    # where before squaring: an unrated target is often NaN, and where(m, (p - t)^2, 0) would keep
    # the loss finite but backpropagate 0 * NaN = NaN into p. Selecting the residual first does not.
    residual = torch.where(m, p - t, torch.zeros_like(p))
    return residual**2


def masked_regression(predictions: Tensor, targets: Tensor, mask: Tensor, reduction: str = "sum") -> Tensor:
    """Squared error over the rated entries of multi-attribute absolute ratings.

    L = sum_{(b, n) : M_bn} (p_bn - y_bn)^2

    HelpSteer / ArmoRM style (Wang et al. 2024, "Interpretable Preferences via Multi-Objective
    Reward Modeling and Mixture-of-Experts"): each example is rated on some of N attributes only;
    a missing attribute contributes nothing, to the loss or to the gradient, even if its target
    is NaN.

    Args:
        predictions: (B, N).
        targets: (B, N).
        mask: (B, N) bool, True where the attribute is rated.
        reduction: "sum", or "mean" = sum / number of rated entries (nan if none is rated).
    """
    squared = _masked_squared_error(predictions, targets, mask)
    if reduction == "sum":
        return squared.sum()
    if reduction == "mean":
        # over the rated entries, not B * N: unrated ones would otherwise dilute the loss
        return squared.sum() / mask.to(squared.device, torch.bool).sum().to(squared.dtype)
    raise ValueError(f"reduction must be 'mean' or 'sum', not {reduction!r}")


@torch.no_grad()
def attribute_errors(predictions: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """(N,) sum of squared errors of each attribute over its rated entries (for metrics).

    Divide by ``mask.sum(0)`` for the per-attribute MSE. No gradient.
    """
    return _masked_squared_error(predictions, targets, mask).sum(0)
