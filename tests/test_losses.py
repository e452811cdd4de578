import math

import torch

from rewardlab.losses import bradley_terry, bradley_terry_log1p, pairwise_metrics, plackett_luce


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
