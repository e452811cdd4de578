"""Preference losses (Bradley-Terry family): pure functions of reward tensors.

Conventions shared by every function here:

- Tensors in, ``(loss, metrics)`` out: ``loss`` is a scalar tensor with gradient, ``metrics`` a
  dict of detached Python floats/ints. No model, no tokenizer, so each loss can be unit-tested
  against a value worked out by hand.
- Precision: the maths runs in fp32 whatever the input dtype (bf16/fp16 rewards are upcast), except
  that float64 inputs stay float64 (so ``torch.autograd.gradcheck`` works).
- Stability: only ``logsigmoid`` / ``softplus`` / ``logsumexp``, never ``log(sigmoid)`` or a raw ``exp``.
- ``reduction="mean" | "sum" | "none"``: "sum" returns the sum over the loss's *units* (pairs,
  prompts or ranking rows, said in each docstring) instead of the mean; "none" one loss per unit. The training loop divides the sum by the
  number of units in the whole accumulated batch, so accumulation equals one large batch exactly.
- Metrics that have nothing to count (e.g. accuracy when every pair is tied) are ``nan``, never
  absent, so loggers always see the same keys.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _f(x: Tensor) -> Tensor:
    """fp32 for the maths, except float64 which stays float64 (gradcheck)."""
    return x if x.dtype == torch.float64 else x.float()


def _reduce(per_example: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    if reduction == "none":  # one loss per unit, for weighting them (bootstrap weights of reward heads)
        return per_example
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def _ratio(num: Tensor, den: Tensor) -> float:
    den = float(den)
    return float(num) / den if den else math.nan


def pairwise_metrics(chosen: Tensor, rejected: Tensor) -> dict[str, float]:
    """Accuracy (strict: a tie counts as wrong, as in RewardBench), ties and mean margin."""
    diff = (chosen.detach().float() - rejected.detach().float())
    return {
        "accuracy": (diff > 0).float().mean().item(),
        "ties": int((diff == 0).sum().item()),
        "mean_margin": diff.mean().item(),
        "reward_mean": torch.cat([chosen.detach(), rejected.detach()]).float().mean().item(),
    }


def _bt_per_pair(chosen, rejected, margin, center_coefficient, label_smoothing, weight) -> Tensor:
    """The per-pair loss shared by the three BT variants (see :func:`bradley_terry`)."""
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), not {label_smoothing!r}")
    rc, rr = _f(chosen), _f(rejected)
    d = rc - rr
    if margin is not None:
        d = d - _f(margin)
    per_pair = -F.logsigmoid(d)
    if label_smoothing:  # skipped at 0 so that eps = 0 is bit-for-bit plain BT
        per_pair = (1 - label_smoothing) * per_pair - label_smoothing * F.logsigmoid(-d)
    if weight is not None:
        per_pair = per_pair * _f(weight)
    if center_coefficient:  # after the weight: centering is a regulariser, not evidence
        per_pair = per_pair + center_coefficient * (rc + rr) ** 2
    return per_pair


def bradley_terry(
    chosen: Tensor,
    rejected: Tensor,
    margin: Tensor | None = None,
    center_coefficient: float = 0.0,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    weight: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Bradley-Terry pairwise loss, with margin, label smoothing, per-pair weights and centering.

    d_i = r_c,i - r_r,i - m_i
    L_i = w_i * [ -(1 - eps) log sigma(d_i) - eps log sigma(-d_i) ]  +  c (r_c,i + r_r,i)^2

    - Bradley & Terry (1952); as a reward-model loss: Ouyang et al. 2022 (InstructGPT).
      ``-log sigma(d)`` equals ``log(1 + exp(-d))`` (Askell et al. 2021), see
      :func:`bradley_terry_log1p`; computed with ``logsigmoid`` it cannot overflow.
    - Margin m >= 0 (Touvron et al. 2023, Llama 2): the chosen reward must exceed the rejected one
      by at least m before the loss flattens. ``margin=None`` or 0 is plain BT.
    - Label smoothing eps in [0, 0.5) ("conservative" BT, as in cDPO, Mitchell 2023): each label
      is wrong with probability eps. Equal to BT + eps * d, minimised at sigma(d) = 1 - eps, so
      noisy labels cannot push margins to infinity. Outside [0, 0.5): ValueError.
    - ``weight`` w (B,), e.g. a preference strength (see :func:`scaled_bradley_terry`), multiplies
      each pair's loss. Weights are NOT normalised: "mean" is sum_i L_i / B, as in
      HelpSteer2-Preference; the caller controls the scale of w.
    - Centering (Eisenstein et al. 2023; TRL ``center_rewards_coefficient``) keeps rewards near zero
      mean. It is added after the weight (a regulariser on every pair, not weighted evidence).

    Args:
        chosen: rewards of the preferred completions, shape (B,).
        rejected: rewards of the other completions, shape (B,).
        margin: per-pair margins (B,), or None.
        center_coefficient: c above; 0 disables it.
        reduction: "mean" (sum / B) or "sum" over the B pairs.
        label_smoothing: eps above.
        weight: per-pair weights (B,), or None (all 1).
    """
    per_pair = _bt_per_pair(chosen, rejected, margin, center_coefficient, label_smoothing, weight)
    return _reduce(per_pair, reduction), pairwise_metrics(chosen, rejected)


def bradley_terry_log1p(chosen: Tensor, rejected: Tensor) -> Tensor:
    """The second form of the BT loss in the seed (Askell et al. 2021): mean log(1 + e^(r_r - r_c)).

    Written with ``softplus`` so large gaps do not overflow. Kept to test that both forms agree.
    """
    return F.softplus(_f(rejected) - _f(chosen)).mean()


def balanced_bradley_terry(
    chosen: Tensor,
    rejected: Tensor,
    group: Tensor,
    num_groups: int,
    margin: Tensor | None = None,
    center_coefficient: float = 0.0,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    weight: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """InstructGPT's prompt-balanced BT loss (Ouyang et al. 2022, section 3.5).

    With K ranked completions per prompt, all C(K, 2) pairs of a prompt are in the batch; averaging
    the pairs within each prompt makes every prompt weigh the same whatever its K (otherwise prompts
    with many completions dominate, and the model overfits them):

        L_p = 1/|P_p| * sum_{i in P_p} L_i      (L_i: the per-pair loss of :func:`bradley_terry`,
                                                  margin, smoothing, weight and centering included)

    Args:
        group: LongTensor (B,), the prompt index 0..num_groups-1 of each pair.
        num_groups: number of prompt slots; a prompt with no pair is ignored.
        reduction: over the prompts that have at least one pair: "mean" = sum_p L_p / #prompts,
            "sum" = sum_p L_p (for accumulation, divide by the prompts of the whole step).

    The other arguments are those of :func:`bradley_terry`.

    Metrics: :func:`pairwise_metrics` over the pairs, plus "prompts" (prompts with >= 1 pair).
    """
    per_pair = _bt_per_pair(chosen, rejected, margin, center_coefficient, label_smoothing, weight)
    group = group.to(per_pair.device, torch.long)
    if group.numel() and (int(group.min()) < 0 or int(group.max()) >= num_groups):
        raise ValueError(f"group indices must be in [0, {num_groups}), got {int(group.min())}..{int(group.max())}")
    counts = torch.bincount(group, minlength=num_groups)
    sums = per_pair.new_zeros(num_groups).index_add(0, group, per_pair)
    present = counts > 0
    per_prompt = sums[present] / counts[present].to(sums.dtype)
    metrics = pairwise_metrics(chosen, rejected)
    metrics["prompts"] = int(present.sum())
    return _reduce(per_prompt, reduction), metrics


def preference_strength(score_diff: Tensor, table: dict[float, float] | None = None) -> Tensor:
    """Strength of a graded preference from the annotators' score difference (sign ignored).

    Without a table: |diff| (HelpSteer2-Preference's scaled BT uses the 1..3 preference strength
    directly). With a table, its value at |diff|, e.g. INF-ORM's {1: 1, 2: 3, 3: 10}; keys are
    matched within 1e-6, and a |diff| that is not a key raises ValueError (no silent default).
    """
    a = _f(score_diff.detach()).abs()
    if table is None:
        return a
    out, found = torch.zeros_like(a), torch.zeros_like(a, dtype=torch.bool)
    for key, value in table.items():
        hit = (a - float(key)).abs() <= 1e-6
        out = torch.where(hit, torch.as_tensor(float(value), dtype=a.dtype, device=a.device), out)
        found |= hit
    if not bool(found.all()):
        missing = a[~found][0].item()
        raise ValueError(f"score difference {missing:g} is not in the strength table (keys {sorted(table)})")
    return out


def scaled_bradley_terry(
    chosen: Tensor,
    rejected: Tensor,
    strength: Tensor,
    margin: Tensor | None = None,
    center_coefficient: float = 0.0,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> tuple[Tensor, dict[str, float]]:
    """Scaled BT (Wang et al. 2024, HelpSteer2-Preference, arXiv 2410.01257).

    L_i = -s_i log sigma(r_c,i - r_r,i)  (+ margin / smoothing / centering as in BT)

    A strong preference (s = 3, "much better") counts three times a slight one (s = 1): it is
    :func:`bradley_terry` with ``weight=strength``. "mean" = sum / B, weights not normalised.
    Build ``strength`` with :func:`preference_strength`. Metrics add "mean_strength".
    """
    loss, metrics = bradley_terry(chosen, rejected, margin, center_coefficient, reduction,
                                  label_smoothing, weight=strength)
    metrics["mean_strength"] = _f(strength.detach()).mean().item()
    return loss, metrics


def davidson(
    chosen: Tensor,
    rejected: Tensor,
    tied: Tensor | None = None,
    log_nu: float | Tensor = 0.0,
    reduction: str = "mean",
) -> tuple[Tensor, dict[str, float]]:
    """Bradley-Terry with ties (Davidson 1970, JASA 65:317).

        D = e^{r_c} + e^{r_r} + nu e^{(r_c + r_r)/2}
        P(c > r) = e^{r_c} / D,   P(tie) = nu e^{(r_c + r_r)/2} / D

    L_i = -log P(tie) for tied pairs (symmetric in the two), -log P(c > r) for the others; log D is
    a logsumexp of the three stacked terms. ``log_nu`` is a float or a 0-dim tensor (may require grad:
    a learned tie parameter, nu = e^{log_nu} >= 0). log_nu = -inf gives exactly BT on strict pairs
    (and an infinite loss on tied ones). A tie is most likely when r_c = r_r, where P(tie) = nu/(2+nu).

    Args:
        tied: bool (B,) or None (no ties).
        reduction: "mean" or "sum" over the B pairs.

    Metrics: "accuracy" (r_c > r_r) over strict pairs, "ties" (number of tied pairs), "tie_prob"
    (mean P(tie) over tied pairs, nan if none), "nu".
    """
    rc, rr = _f(chosen), _f(rejected)
    if isinstance(log_nu, Tensor):
        ln = log_nu.to(dtype=rc.dtype, device=rc.device)
    else:
        ln = torch.tensor(float(log_nu), dtype=rc.dtype, device=rc.device)
    terms = torch.stack([rc, rr, ln + (rc + rr) / 2], dim=-1)
    log_denom = torch.logsumexp(terms, dim=-1)
    tied = torch.zeros_like(rc, dtype=torch.bool) if tied is None else tied.to(rc.device, torch.bool)
    numerator = torch.where(tied, terms[..., 2], rc)
    per_pair = log_denom - numerator
    with torch.no_grad():
        strict = ~tied
        p_tie = torch.exp(terms[..., 2] - log_denom)
        metrics = {
            "accuracy": _ratio(((rc > rr) & strict).sum(), strict.sum()),
            "ties": int(tied.sum()),
            "tie_prob": _ratio(p_tie[tied].sum(), tied.sum()),
            "nu": math.exp(float(ln)),
        }
    return _reduce(per_pair, reduction), metrics


def plackett_luce(
    rewards: Tensor,
    tiers: Tensor | None = None,
    unranked: Tensor | None = None,
    reduction: str = "mean",
) -> tuple[Tensor, dict[str, float]]:
    """K-wise Plackett-Luce loss (Plackett 1975, Luce 1959), with ties, partial rankings, padding.

    As a reward-model loss: Zhu et al. 2023 ("Principled RLHF"), Starling 7B. For a strict ranking
    (row in rank order, column 0 best):  L = -sum_k [ r_k - logsumexp_{j >= k} r_j ].

    Args:
        rewards: (G, K), G ranking rows of K items.
        tiers: (G, K) long, 0 = best tier, 1 = next, ...; equal values are ties; -1 marks padding
            (an absent item, for prompts with fewer than K completions). None: strict ranking in
            column order (tiers = 0..K-1).
        unranked: (G, K) bool or None. Items of a partial (top-k) ranking that were not listed:
            below every ranked item, unordered among themselves. They are in every denominator but
            never a numerator (their tier value is ignored).
        reduction: "mean" or "sum" over the G rows (an all-padding row counts, with loss 0).

    Ties: Breslow's approximation (Breslow 1974), the standard rule for tied events in the Cox
    partial likelihood. A tie group T_t of size m at stage t contributes
    sum_{i in T_t} r_i - m * logsumexp_{j in R_t} r_j, with R_t = {ranked items of tier >= t} U
    {unranked items}:

        L_g = -sum_{ranked tiers t} [ sum_{i in T_t} r_i - |T_t| logsumexp_{j in R_t} r_j ]

    With no ties and no unranked items this is exactly PL; K = 2 is exactly BT. A tie is evidence of
    equal utility: a final tie group of m equal rewards costs m log m, and ties pull rewards together.

    Metrics: "accuracy", the fraction of strictly ordered pairs (i in a better tier than j, or i
    ranked and j unranked) with r_i > r_j (nan if there is none).
    """
    r = _f(rewards)
    G, K = r.shape
    if tiers is None:
        tiers = torch.arange(K, device=r.device).expand(G, K)
    tiers = tiers.to(r.device, torch.long)
    unranked = torch.zeros_like(r, dtype=torch.bool) if unranked is None else unranked.to(r.device, torch.bool)
    if tiers.shape != r.shape or unranked.shape != r.shape:
        raise ValueError(f"tiers {tuple(tiers.shape)} and unranked {tuple(unranked.shape)} must have "
                         f"the shape of rewards {tuple(r.shape)}")
    if bool((tiers < -1).any()):
        raise ValueError("tiers must be >= 0, or -1 for padding")
    ranked = (tiers >= 0) & ~unranked  # unranked wins over any tier value, -1 included
    per_row = r.new_zeros(G)
    # One stage per distinct tier value (at most K): vectorised over the rows.
    for t in torch.unique(tiers[ranked]).tolist():
        in_t = ranked & (tiers == t)
        remaining = unranked | (ranked & (tiers >= t))
        # A row with nothing left has no stage here (m = 0): keep its logsumexp finite so that
        # neither the loss nor its gradient sees -inf - (-inf).
        remaining = remaining | ~remaining.any(-1, keepdim=True)
        lse = torch.logsumexp(r.masked_fill(~remaining, -math.inf), dim=-1)
        m = in_t.sum(-1).to(r.dtype)
        per_row = per_row - (torch.where(in_t, r, 0.0).sum(-1) - m * lse)
    with torch.no_grad():
        ti, tj = tiers.unsqueeze(2), tiers.unsqueeze(1)
        above = ranked.unsqueeze(2) & ((ranked.unsqueeze(1) & (ti < tj)) | unranked.unsqueeze(1))
        right = above & (r.unsqueeze(2) > r.unsqueeze(1))
        metrics = {"accuracy": _ratio(right.sum(), above.sum())}
    return _reduce(per_row, reduction), metrics
