"""Preference losses: closed forms, identities between them, gradients, and statistical recovery.

Every expected value is worked out by hand in a comment; the fits at the end check that each loss
recovers known utilities from data simulated under its own model (seeded, float64, no network).
"""

import math

import pytest
import torch

from rewardlab.losses import (
    balanced_bradley_terry,
    bradley_terry,
    bradley_terry_log1p,
    davidson,
    pairwise_metrics,
    plackett_luce,
    preference_strength,
    scaled_bradley_terry,
)


def test_bradley_terry_closed_form():
    chosen, rejected = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0])
    loss, m = bradley_terry(chosen, rejected)
    # -log sigma(d) = log(1 + e^-d) for d = 2, 0, -2
    expected = (math.log1p(math.exp(-2)) + math.log(2) + math.log1p(math.exp(2))) / 3
    assert abs(loss.item() - expected) < 1e-6
    assert abs(m["accuracy"] - 1 / 3) < 1e-7  # the tie at index 1 counts as wrong
    assert m["ties"] == 1
    assert abs(m["mean_margin"] - 0.0) < 1e-7


def test_both_seed_forms_are_equal():
    torch.manual_seed(0)
    chosen, rejected = torch.randn(64) * 5, torch.randn(64) * 5
    assert torch.allclose(bradley_terry(chosen, rejected)[0], bradley_terry_log1p(chosen, rejected), atol=1e-6)


def test_stable_for_huge_gaps():
    chosen, rejected = torch.tensor([1000.0, -1000.0]), torch.tensor([-1000.0, 1000.0])
    loss, _ = bradley_terry(chosen, rejected)
    assert torch.isfinite(loss)
    assert abs(loss.item() - 1000.0) < 1e-3  # (0 + 2000) / 2
    assert torch.isfinite(bradley_terry_log1p(chosen, rejected))


def test_margin_zero_is_plain_bt_and_margin_shifts():
    chosen, rejected = torch.tensor([1.0, 3.0]), torch.tensor([0.5, 0.0])
    plain, _ = bradley_terry(chosen, rejected)
    zero, _ = bradley_terry(chosen, rejected, margin=torch.zeros(2))
    assert torch.equal(plain, zero)
    with_margin, _ = bradley_terry(chosen, rejected, margin=torch.tensor([0.5, 3.0]))
    assert abs(with_margin.item() - math.log(2)) < 1e-6  # both differences become exactly 0


def test_centering_term():
    chosen, rejected = torch.tensor([1.0]), torch.tensor([2.0])
    base, _ = bradley_terry(chosen, rejected)
    centred, _ = bradley_terry(chosen, rejected, center_coefficient=0.01)
    assert abs(centred.item() - base.item() - 0.01 * 9.0) < 1e-6


def test_sum_reduction():
    chosen, rejected = torch.randn(5), torch.randn(5)
    assert torch.allclose(bradley_terry(chosen, rejected, reduction="sum")[0],
                          5 * bradley_terry(chosen, rejected)[0])


def test_gradient_is_sigmoid_of_negative_gap():
    chosen = torch.tensor([0.3], requires_grad=True)
    rejected = torch.tensor([-0.2], requires_grad=True)
    bradley_terry(chosen, rejected)[0].backward()
    g = torch.sigmoid(torch.tensor(-0.5)).item()
    assert abs(chosen.grad.item() + g) < 1e-6 and abs(rejected.grad.item() - g) < 1e-6


def test_plackett_luce_k2_equals_bt():
    torch.manual_seed(1)
    r = torch.randn(10, 2)
    assert torch.allclose(plackett_luce(r)[0], bradley_terry(r[:, 0], r[:, 1])[0], atol=1e-6)


def test_plackett_luce_closed_form_k3():
    r = torch.tensor([[3.0, 1.0, 0.0]])
    loss, _ = plackett_luce(r)
    p = math.exp(3) / (math.exp(3) + math.exp(1) + 1) * math.exp(1) / (math.exp(1) + 1)
    assert abs(loss.item() + math.log(p)) < 1e-5


def test_pairwise_metrics_strict_ties():
    m = pairwise_metrics(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0]))
    assert m["accuracy"] == 0.5 and m["ties"] == 1


# --- Bradley-Terry: label smoothing, weights, reductions -------------------------------------------

def test_label_smoothing_closed_form():
    chosen, rejected = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    loss, _ = bradley_terry(chosen, rejected, label_smoothing=0.1)
    # d = 1:  0.9 * softplus(-1) + 0.1 * softplus(1) = 0.9 * 0.313262 + 0.1 * 1.313262 = 0.413262
    #         (= softplus(-1) + eps * d, since softplus(d) - softplus(-d) = d)
    # d = -2: 0.9 * softplus(2) + 0.1 * softplus(-2) = 0.9 * 2.126928 + 0.1 * 0.126928 = 1.926928
    #         (= softplus(2) + 0.1 * (-2) = 2.126928 - 0.2)
    # mean = (0.413262 + 1.926928) / 2 = 1.170095
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    expected = (0.9 * sp(-1) + 0.1 * sp(1) + 0.9 * sp(2) + 0.1 * sp(-2)) / 2
    assert abs(loss.item() - expected) < 1e-6
    assert abs(expected - 1.170095) < 1e-6


def test_label_smoothing_zero_is_bt_and_range_is_checked():
    torch.manual_seed(2)
    chosen, rejected = torch.randn(8), torch.randn(8)
    assert torch.equal(bradley_terry(chosen, rejected, label_smoothing=0.0)[0], bradley_terry(chosen, rejected)[0])
    for eps in (0.5, -0.1, 1.0):
        with pytest.raises(ValueError, match="label_smoothing"):
            bradley_terry(chosen, rejected, label_smoothing=eps)


def test_label_smoothing_minimum_is_at_one_minus_eps():
    # the smoothed loss is minimised where sigma(d) = 1 - eps, i.e. d* = log((1 - eps) / eps) = log 9
    d = torch.tensor([math.log(9.0)], dtype=torch.float64, requires_grad=True)
    bradley_terry(d, torch.zeros(1, dtype=torch.float64), label_smoothing=0.1)[0].backward()
    assert abs(d.grad.item()) < 1e-12


def test_weight_multiplies_pairs_and_centering_is_not_weighted():
    chosen, rejected = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])
    w = torch.tensor([2.0, 0.0])
    # (2 * softplus(-1) + 0 * log 2) / 2 = softplus(-1) = 0.313262  -- mean divides by B = 2, not sum(w)
    loss, _ = bradley_terry(chosen, rejected, weight=w)
    assert abs(loss.item() - math.log1p(math.exp(-1))) < 1e-6
    # centering c (r_c + r_r)^2 is added after the weight: 0.1 * (1 + 0) and 0.1 * 0, mean 0.05
    centred, _ = bradley_terry(chosen, rejected, weight=w, center_coefficient=0.1)
    assert abs(centred.item() - loss.item() - 0.05) < 1e-6


def test_reduction_none_and_unknown():
    per_pair, _ = bradley_terry(torch.tensor([1.0, 0.0]), torch.zeros(2), reduction="none")
    assert per_pair.shape == (2,) and abs(per_pair[1].item() - math.log(2)) < 1e-6
    with pytest.raises(ValueError, match="reduction"):
        bradley_terry(torch.zeros(2), torch.zeros(2), reduction="median")


def test_fp32_maths_and_float64_kept():
    c, r = torch.tensor([1.0, 2.0], dtype=torch.bfloat16), torch.tensor([0.0, 1.0], dtype=torch.bfloat16)
    assert bradley_terry(c, r)[0].dtype == torch.float32
    assert plackett_luce(torch.stack([c, r], 1))[0].dtype == torch.float32
    assert davidson(c.double(), r.double())[0].dtype == torch.float64
    assert balanced_bradley_terry(c.double(), r.double(), torch.tensor([0, 0]), 1)[0].dtype == torch.float64


# --- balanced (InstructGPT) -------------------------------------------------------------------------

def test_balanced_closed_form_mean_of_prompt_means():
    # prompt 0 has 3 pairs with d = 0, 2, -2; prompt 1 has one pair with d = 0; prompt 2 has none
    chosen = torch.tensor([0.0, 0.0, 2.0, -1.0])
    rejected = torch.tensor([0.0, 0.0, 0.0, 1.0])
    group = torch.tensor([0, 1, 0, 0])
    loss, m = balanced_bradley_terry(chosen, rejected, group, num_groups=3)
    # prompt 0: (log 2 + softplus(-2) + softplus(2)) / 3 = (0.693147 + 0.126928 + 2.126928) / 3
    #         = 2.947003 / 3 = 0.982334;   prompt 1: log 2 = 0.693147
    # mean of prompt means = (0.982334 + 0.693147) / 2 = 0.837741
    # (the plain mean of the 4 pairs would be (2.947003 + 0.693147) / 4 = 0.910038)
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    p0 = (math.log(2) + sp(-2) + sp(2)) / 3
    assert abs(loss.item() - (p0 + math.log(2)) / 2) < 1e-6
    assert abs(loss.item() - 0.837741) < 1e-6
    assert abs(loss.item() - bradley_terry(chosen, rejected)[0].item()) > 0.07
    total, _ = balanced_bradley_terry(chosen, rejected, group, num_groups=3, reduction="sum")
    assert abs(total.item() - (p0 + math.log(2))) < 1e-6  # 1.675482, sum over the 2 prompts
    assert m["prompts"] == 2 and m["ties"] == 2 and abs(m["accuracy"] - 0.25) < 1e-7


def test_balanced_one_pair_per_prompt_is_bt():
    torch.manual_seed(3)
    chosen, rejected, margin = torch.randn(7), torch.randn(7), torch.rand(7)
    kw = dict(margin=margin, center_coefficient=0.01, label_smoothing=0.05, weight=torch.rand(7))
    for reduction in ("mean", "sum"):
        got, _ = balanced_bradley_terry(chosen, rejected, torch.arange(7).flip(0), 7, reduction=reduction, **kw)
        want, _ = bradley_terry(chosen, rejected, reduction=reduction, **kw)
        assert torch.allclose(got, want, atol=1e-6)


def test_balanced_rejects_out_of_range_groups():
    with pytest.raises(ValueError, match="group"):
        balanced_bradley_terry(torch.zeros(2), torch.zeros(2), torch.tensor([0, 2]), num_groups=2)


# --- scaled BT (HelpSteer2-Preference) and preference strength --------------------------------------

def test_scaled_bt_closed_form():
    chosen, rejected, strength = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([2.0, 3.0])
    loss, m = scaled_bradley_terry(chosen, rejected, strength)
    # (2 * softplus(-1) + 3 * log 2) / 2 = (0.626523 + 2.079442) / 2 = 1.352982  (divided by B, not by 5)
    assert abs(loss.item() - (2 * math.log1p(math.exp(-1)) + 3 * math.log(2)) / 2) < 1e-6
    assert abs(loss.item() - 1.352982) < 1e-6
    assert m["mean_strength"] == 2.5
    total, _ = scaled_bradley_terry(chosen, rejected, strength, reduction="sum")
    assert abs(total.item() - 2 * loss.item()) < 1e-6


def test_scaled_strength_one_is_bt():
    torch.manual_seed(4)
    chosen, rejected = torch.randn(6), torch.randn(6)
    assert torch.equal(scaled_bradley_terry(chosen, rejected, torch.ones(6))[0], bradley_terry(chosen, rejected)[0])


def test_preference_strength_without_and_with_table():
    diff = torch.tensor([-3.0, 1.0, 2.0, -1.0])
    assert preference_strength(diff).tolist() == [3.0, 1.0, 2.0, 1.0]  # |diff|
    table = {1: 1.0, 2: 3.0, 3: 10.0}  # INF-ORM
    assert preference_strength(diff, table).tolist() == [10.0, 1.0, 3.0, 1.0]
    # keys are matched within 1e-6, so float scores that are almost integers still match
    near = torch.tensor([2.0000004, -0.9999996], dtype=torch.float64)
    assert preference_strength(near, table).tolist() == [3.0, 1.0]
    assert preference_strength(torch.tensor([2, -3]), table).tolist() == [3.0, 10.0]  # integer scores


def test_preference_strength_missing_key_raises():
    with pytest.raises(ValueError, match=r"score difference 4 .*keys \[1, 2, 3\]"):
        preference_strength(torch.tensor([1.0, -4.0]), {1: 1, 2: 3, 3: 10})
    with pytest.raises(ValueError, match=r"score difference 0 "):  # a tie is not a preference
        preference_strength(torch.tensor([0.0]), {1: 1, 2: 3, 3: 10})
    with pytest.raises(ValueError):
        preference_strength(torch.tensor([2.00001], dtype=torch.float64), {1: 1, 2: 3})


# --- Davidson (ties) --------------------------------------------------------------------------------

def test_davidson_closed_form_strict_and_tied():
    chosen, rejected, tied = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0]), torch.tensor([False, True])
    loss, m = davidson(chosen, rejected, tied, log_nu=0.0)
    # nu = 1: D = e^1 + e^0 + 1 * e^0.5 = 2.718282 + 1 + 1.648721 = 5.367003, log D = 1.680270
    # strict: -log(e^1 / D) = 1.680270 - 1 = 0.680270;  tied: -log(e^0.5 / D) = 1.680270 - 0.5 = 1.180270
    # mean = (0.680270 + 1.180270) / 2 = 0.930270
    log_d = math.log(math.e + 1 + math.exp(0.5))
    assert abs(loss.item() - ((log_d - 1) + (log_d - 0.5)) / 2) < 1e-6
    assert abs(loss.item() - 0.930270) < 1e-6
    assert m["accuracy"] == 1.0 and m["ties"] == 1 and m["nu"] == 1.0
    assert abs(m["tie_prob"] - math.exp(0.5) / math.exp(log_d)) < 1e-6  # 1.648721 / 5.367003 = 0.307196
    # a tie is symmetric in the two rewards
    swapped, _ = davidson(rejected, chosen, torch.tensor([True, True]), log_nu=0.0)
    same, _ = davidson(chosen, rejected, torch.tensor([True, True]), log_nu=0.0)
    assert torch.allclose(swapped, same)


def test_davidson_tie_at_equal_rewards():
    # r_c = r_r = 0, nu = 0.5: D = 1 + 1 + 0.5 = 2.5, P(tie) = 0.5 / 2.5 = 0.2 -> loss log 5 = 1.609438
    loss, m = davidson(torch.zeros(1), torch.zeros(1), torch.tensor([True]), log_nu=math.log(0.5))
    assert abs(loss.item() - math.log(5)) < 1e-6 and abs(m["tie_prob"] - 0.2) < 1e-6
    assert math.isnan(m["accuracy"])  # no strict pair to score
    _, m = davidson(torch.zeros(1), torch.zeros(1))
    assert math.isnan(m["tie_prob"]) and m["ties"] == 0


def test_davidson_without_ties_is_bt():
    torch.manual_seed(5)
    chosen, rejected = torch.randn(9) * 3, torch.randn(9) * 3
    bt, _ = bradley_terry(chosen, rejected)
    exact, m = davidson(chosen, rejected, torch.zeros(9, dtype=torch.bool), log_nu=-math.inf)
    assert torch.allclose(exact, bt, atol=1e-6) and m["nu"] == 0.0
    assert torch.allclose(davidson(chosen, rejected, log_nu=torch.tensor(-math.inf))[0], bt, atol=1e-6)
    # nu = e^-30: each pair's loss moves by at most e^-30 * e^{|d|/2}-ish, far below 1e-6
    near, _ = davidson(chosen.double(), rejected.double(), log_nu=-30.0)
    assert abs(near.item() - bradley_terry(chosen.double(), rejected.double())[0].item()) < 1e-6


def test_davidson_learned_log_nu_gets_a_gradient():
    log_nu = torch.tensor(0.0, requires_grad=True)
    davidson(torch.zeros(2), torch.zeros(2), torch.tensor([True, True]), log_nu=log_nu)[0].backward()
    # d/dlog_nu [log(2 + nu) - log nu] at nu = 1: 1/3 - 1 = -2/3
    assert abs(log_nu.grad.item() + 2 / 3) < 1e-6


# --- Plackett-Luce: ties, partial rankings, padding -------------------------------------------------

def _old_plackett_luce(r):
    """The implementation before ties existed (strict ranking, column order)."""
    suffix = torch.logcumsumexp(r.flip(-1), dim=-1).flip(-1)
    return -(r - suffix)[:, :-1].sum(-1).mean()


def test_plackett_luce_default_tiers_is_old_behaviour():
    torch.manual_seed(6)
    r = torch.randn(12, 5) * 2
    assert torch.allclose(plackett_luce(r)[0], _old_plackett_luce(r), atol=1e-6)
    assert torch.equal(plackett_luce(r)[0], plackett_luce(r, tiers=torch.arange(5).expand(12, 5))[0])


def test_plackett_luce_k2_is_bt_per_row():
    torch.manual_seed(7)
    r = torch.randn(10, 2)
    for row in r:
        pl, _ = plackett_luce(row[None], reduction="sum")
        bt, _ = bradley_terry(row[:1], row[1:], reduction="sum")
        assert torch.allclose(pl, bt, atol=1e-6)
    # tiers can put the better item in any column
    flipped, _ = plackett_luce(r, tiers=torch.tensor([[1, 0]]).expand(10, 2), reduction="sum")
    assert torch.allclose(flipped, bradley_terry(r[:, 1], r[:, 0], reduction="sum")[0], atol=1e-5)


def test_plackett_luce_tie_group_closed_form():
    r = torch.tensor([[2.0, 1.0, 1.0, 0.0]])
    loss, m = plackett_luce(r, tiers=torch.tensor([[0, 1, 1, 2]]))
    # stage 0: 2 - log(e^2 + e + e + 1) = 2 - log(13.825620) = 2 - 2.626523
    # stage 1 (tie group of 2, Breslow): (1 + 1) - 2 * log(e + e + 1) = 2 - 2 * 1.861995
    # stage 2: 0 - log(e^0) = 0
    # L = 0.626523 + 1.723990 = 2.350513
    expected = -(2 - math.log(math.exp(2) + 2 * math.e + 1)) - (2 - 2 * math.log(2 * math.e + 1))
    assert abs(loss.item() - expected) < 1e-5 and abs(expected - 2.350513) < 1e-6
    # ordered pairs: 0>1, 0>2, 0>3, 1>3, 2>3 (1 vs 2 is a tie, not counted): all right
    assert m["accuracy"] == 1.0


def test_plackett_luce_final_tie_is_m_log_m():
    # two equal rewards tied at the end: 2 * 0 - 2 * log(e^0 + e^0) = -2 log 2 -> L = 2 log 2 = 1.386294
    loss, m = plackett_luce(torch.zeros(1, 2), tiers=torch.tensor([[0, 0]]))
    assert abs(loss.item() - 2 * math.log(2)) < 1e-6
    assert math.isnan(m["accuracy"])  # nothing strictly ordered
    # three tied after a winner: stage 0: 1 - log(e + 3) ; stage 1: 0 - 3 log 3
    loss, _ = plackett_luce(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), tiers=torch.tensor([[0, 1, 1, 1]]))
    assert abs(loss.item() - (math.log(math.e + 3) - 1 + 3 * math.log(3))) < 1e-5


def test_plackett_luce_partial_ranking_closed_form():
    r = torch.tensor([[3.0, 1.0, 0.0, 2.0]])
    unranked = torch.tensor([[False, False, True, True]])  # top-2 listed; items 2 and 3 below, unordered
    loss, m = plackett_luce(r, tiers=torch.tensor([[0, 1, 7, 0]]), unranked=unranked)  # 7 and 0 are ignored
    # stage 0: 3 - log(e^3 + e + 1 + e^2) = 3 - log(31.192875) = 3 - 3.440190
    # stage 1: 1 - log(e + 1 + e^2)       = 1 - log(11.107338) = 1 - 2.407606
    # no stage for the unranked items:  L = 0.440190 + 1.407606 = 1.847796
    expected = (math.log(math.exp(3) + math.e + 1 + math.exp(2)) - 3) + (math.log(math.e + 1 + math.exp(2)) - 1)
    assert abs(loss.item() - expected) < 1e-5 and abs(expected - 1.847796) < 1e-6
    # ordered pairs: 0>1 (3>1), 0>u2 (3>0), 0>u3 (3>2), 1>u2 (1>0) right; 1>u3 (1>2) wrong -> 4/5
    assert abs(m["accuracy"] - 0.8) < 1e-7


def test_plackett_luce_padding_equals_unpadded_rows():
    torch.manual_seed(8)
    a, b = torch.randn(3), torch.randn(2)  # a prompt with 3 ranked completions, one with 2
    padded = torch.tensor([[a[0], 50.0, a[1], a[2]], [b[0], b[1], -70.0, 1e4]])  # junk where padded
    tiers = torch.tensor([[0, -1, 1, 2], [0, 1, -1, -1]])
    got, m = plackett_luce(padded, tiers=tiers, reduction="sum")
    want = plackett_luce(a[None], reduction="sum")[0] + plackett_luce(b[None], reduction="sum")[0]
    assert torch.allclose(got, want, atol=1e-6)
    x = padded.clone().requires_grad_()
    plackett_luce(x, tiers=tiers)[0].backward()
    assert x.grad[0, 1] == 0 and x.grad[1, 2] == 0 and x.grad[1, 3] == 0 and torch.isfinite(x.grad).all()
    # accuracy counts 3 + 1 ordered pairs, none with the padding
    right = int(a[0] > a[1]) + int(a[0] > a[2]) + int(a[1] > a[2]) + int(b[0] > b[1])
    assert abs(m["accuracy"] - right / 4) < 1e-7


def test_plackett_luce_shape_and_tier_checks():
    with pytest.raises(ValueError, match="shape"):
        plackett_luce(torch.zeros(2, 3), tiers=torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="-1"):
        plackett_luce(torch.zeros(1, 2), tiers=torch.tensor([[0, -2]]))


# --- gradients (float64 gradcheck) ------------------------------------------------------------------

def _x(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()


def test_gradcheck_bradley_terry_family():
    c, r = _x(5, seed=1), _x(5, seed=2)
    margin = torch.rand(5, dtype=torch.float64)
    w = torch.rand(5, dtype=torch.float64) + 0.5
    group = torch.tensor([0, 2, 0, 0, 2])
    kw = dict(margin=margin, center_coefficient=0.1, label_smoothing=0.1)
    assert torch.autograd.gradcheck(lambda a, b: bradley_terry(a, b, weight=w, **kw)[0], (c, r))
    assert torch.autograd.gradcheck(lambda a, b: bradley_terry_log1p(a, b), (c, r))
    assert torch.autograd.gradcheck(lambda a, b: balanced_bradley_terry(a, b, group, 3, weight=w, **kw)[0], (c, r))
    assert torch.autograd.gradcheck(lambda a, b: scaled_bradley_terry(a, b, w, reduction="sum", **kw)[0], (c, r))


def test_gradcheck_davidson_with_learned_nu():
    c, r = _x(6, seed=3), _x(6, seed=4)
    log_nu = torch.tensor(-0.3, dtype=torch.float64, requires_grad=True)
    tied = torch.tensor([True, False, False, True, False, True])
    assert torch.autograd.gradcheck(lambda a, b, n: davidson(a, b, tied, log_nu=n)[0], (c, r, log_nu))


def test_gradcheck_plackett_luce_ties_unranked_padding():
    r = _x(3, 5, seed=5)
    tiers = torch.tensor([[0, 1, 1, 2, -1], [0, 0, 1, 9, 9], [2, 1, 0, -1, 3]])
    unranked = torch.tensor([[False] * 5, [False, False, False, True, True], [False] * 5])
    assert torch.autograd.gradcheck(lambda x: plackett_luce(x, tiers, unranked)[0], (r,))
    assert torch.autograd.gradcheck(lambda x: plackett_luce(x)[0], (r,))


# --- statistical recovery: fit one utility per item on data simulated from each model --------------

N_ITEMS = 15


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def _utilities(g: torch.Generator) -> torch.Tensor:
    u = torch.randn(N_ITEMS, generator=g, dtype=torch.float64)
    return u - u.mean()


def _random_pairs(g: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    i = torch.randint(N_ITEMS, (n,), generator=g)
    j = (i + torch.randint(1, N_ITEMS, (n,), generator=g)) % N_ITEMS  # j != i
    return i, j


def _fit(loss_fn, n_params: int) -> torch.Tensor:
    theta = torch.zeros(n_params, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=300, tolerance_grad=1e-9, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn(theta)
        loss.backward()
        return loss

    opt.step(closure)
    return theta.detach()


def _check_recovery(u: torch.Tensor, u_hat: torch.Tensor, scale: bool = True) -> None:
    u_hat = u_hat - u_hat.mean()  # utilities are identified up to a shift only
    assert _spearman(u, u_hat) >= 0.95
    if scale:
        assert (u_hat - u).abs().max() < 0.25
        slope = float((u * u_hat).sum() / (u * u).sum())  # least squares u_hat ~ slope * u
        assert 0.9 < slope < 1.1


def test_bt_recovers_utilities():
    g = torch.Generator().manual_seed(11)
    u = _utilities(g)
    i, j = _random_pairs(g, 20000)
    i_wins = torch.rand(len(i), generator=g, dtype=torch.float64) < torch.sigmoid(u[i] - u[j])
    win, lose = torch.where(i_wins, i, j), torch.where(i_wins, j, i)
    u_hat = _fit(lambda t: bradley_terry(t[win], t[lose])[0], N_ITEMS)
    _check_recovery(u, u_hat)


def test_scaled_bt_recovers_ranking_with_graded_strengths():
    g = torch.Generator().manual_seed(12)
    u = _utilities(g)
    i, j = _random_pairs(g, 20000)
    i_wins = torch.rand(len(i), generator=g, dtype=torch.float64) < torch.sigmoid(u[i] - u[j])
    win, lose = torch.where(i_wins, i, j), torch.where(i_wins, j, i)
    gap = (u[i] - u[j]).abs()
    grade = 1 + (gap > 0.5).long() + (gap > 1.0).long()  # annotators' "slightly / better / much better"
    strength = preference_strength(grade, {1: 1, 2: 2, 3: 3})
    u_hat = _fit(lambda t: scaled_bradley_terry(t[win], t[lose], strength)[0], N_ITEMS)
    _check_recovery(u, u_hat, scale=False)  # weights distort the scale, not the order


def test_plackett_luce_recovers_utilities_from_4_way_rankings():
    g = torch.Generator().manual_seed(13)
    u = _utilities(g)
    n, k = 6000, 4
    items = torch.rand(n, N_ITEMS, generator=g).argsort(-1)[:, :k]  # a random 4-subset per ranking
    uniform = torch.rand(n, k, generator=g, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    gumbel = -torch.log(-torch.log(uniform))
    order = (u[items] + gumbel).argsort(-1, descending=True)  # a PL sample: sort by u + Gumbel noise
    ranked = items.gather(1, order)  # column 0 = best
    u_hat = _fit(lambda t: plackett_luce(t[ranked])[0], N_ITEMS)
    _check_recovery(u, u_hat)


def test_davidson_recovers_utilities_and_tie_parameter():
    g = torch.Generator().manual_seed(14)
    u = _utilities(g)
    nu = 0.8
    i, j = _random_pairs(g, 20000)
    logits = torch.stack([u[i], u[j], math.log(nu) + (u[i] + u[j]) / 2], dim=-1)  # i wins, j wins, tie
    outcome = torch.multinomial(torch.softmax(logits, -1), 1, generator=g).squeeze(-1)
    chosen, rejected = torch.where(outcome == 1, j, i), torch.where(outcome == 1, i, j)
    tied = outcome == 2
    theta = _fit(lambda t: davidson(t[chosen], t[rejected], tied, log_nu=t[-1])[0], N_ITEMS + 1)
    _check_recovery(u, theta[:-1])
    assert abs(math.exp(theta[-1]) - nu) < 0.1
