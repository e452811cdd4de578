"""Pointwise losses: closed forms worked out by hand, soft labels, NaN-safe masking, gradients."""

import math

import pytest
import torch

from rewardlab.losses import (
    attribute_errors,
    discounted_returns,
    masked_regression,
    step_cross_entropy,
    token_bce,
    value_regression,
)


def test_token_bce_closed_form():
    logits, targets = torch.tensor([0.0, math.log(3)]), torch.tensor([1.0, 0.25])
    # p = sigma(x) = [0.5, 3/4];  BCE = -(t log p + (1 - t) log(1 - p))
    # pos 0: -log 0.5 = 0.693147;  pos 1: -(0.25 log 0.75 + 0.75 log 0.25) = 0.071921 + 1.039721 = 1.111641
    # sum = 1.804788, mean = 0.902394
    expected = math.log(2) - (0.25 * math.log(0.75) + 0.75 * math.log(0.25))
    assert abs(expected - 1.804788) < 1e-6
    assert abs(token_bce(logits, targets).item() - expected) < 1e-6  # default reduction is "sum"
    assert abs(token_bce(logits, targets, reduction="mean").item() - expected / 2) < 1e-6
    # hard 0/1 labels may come as integers or bools
    assert torch.equal(token_bce(logits, torch.tensor([1, 0])), token_bce(logits, torch.tensor([True, False])))


def test_token_bce_soft_label_trains_toward_the_label_not_its_truncation():
    # closed form: dL/dx = sigma(x) - 0.3 = 0 at x = log(0.3 / 0.7) = -0.847298
    x = torch.tensor([math.log(0.3 / 0.7)], dtype=torch.float64, requires_grad=True)
    token_bce(x, torch.tensor([0.3], dtype=torch.float64)).backward()  # float64: fp32 0.3 is off by 1e-8
    assert abs(x.grad.item()) < 1e-12
    # and plain gradient descent on one free logit gets there (L is convex, L'' <= 1/4, so lr 4 is safe)
    # (by hand rather than torch.optim, whose first step costs ~1 s of lazy imports)
    logit = torch.zeros(1, requires_grad=True)
    for _ in range(100):
        (grad,) = torch.autograd.grad(token_bce(logit, torch.tensor([0.3])), logit)
        with torch.no_grad():
            logit -= 4.0 * grad
    assert abs(torch.sigmoid(logit).item() - 0.3) < 1e-5  # int(0.3) = 0 would have sent it toward 0


def test_token_bce_gradient_is_sigmoid_minus_target():
    x = torch.tensor([-2.0, 0.0, 1.5, 30.0], requires_grad=True)
    t = torch.tensor([0.0, 0.3, 1.0, 0.5])
    token_bce(x, t).backward()
    assert torch.allclose(x.grad, torch.sigmoid(x.detach()) - t, atol=1e-7)
    assert torch.isfinite(token_bce(torch.tensor([-200.0, 200.0]), torch.tensor([1.0, 0.0])))  # = 400, no inf


def test_token_bce_rejects_bad_targets_and_shapes():
    for bad in (1.5, -0.1, math.nan):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            token_bce(torch.zeros(2), torch.tensor([0.5, bad]))
    with pytest.raises(ValueError, match="shapes"):
        token_bce(torch.zeros(3, 1), torch.zeros(3))


def test_step_cross_entropy_closed_form():
    logits = torch.tensor([[0.0, math.log(2), math.log(3)], [1.0, 1.0, 1.0]])
    # row 0: softmax = [1, 2, 3] / 6, class 2 (+1 rating) -> -log(3/6) = log 2
    # row 1: uniform, class 0 (-1 rating) -> log 3;  sum = log 6 = 1.791759
    loss = step_cross_entropy(logits, torch.tensor([2, 0]))
    assert abs(loss.item() - math.log(6)) < 1e-6 and abs(math.log(6) - 1.791759) < 1e-6
    assert abs(step_cross_entropy(logits, torch.tensor([2, 0]), "mean").item() - math.log(6) / 2) < 1e-6
    for bad in ([2, 3], [-1, 0], [-100, 0]):  # -100 is F.cross_entropy's silent ignore_index
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            step_cross_entropy(logits, torch.tensor(bad))


def test_discounted_returns():
    # G_t = gamma^(n-1-t) R: 0.5^2 * 2, 0.5 * 2, 2
    g = discounted_returns(2.0, 3, gamma=0.5)
    assert g.dtype == torch.float32 and g.tolist() == [0.5, 1.0, 2.0]
    assert discounted_returns(-1.5, 4).tolist() == [-1.5] * 4  # gamma = 1: R on every token
    assert discounted_returns(1.0, 3, gamma=0.0).tolist() == [0.0, 0.0, 1.0]  # 0^0 = 1 on the last
    assert discounted_returns(1.0, 0).shape == (0,)
    with pytest.raises(ValueError):
        discounted_returns(1.0, 3, gamma=1.5)
    with pytest.raises(ValueError):
        discounted_returns(1.0, -1)


def test_value_regression_mse_and_huber():
    values, returns = torch.tensor([1.0, 3.0, 0.0]), torch.tensor([0.5, 0.0, 0.0])  # residuals 0.5, 3, 0
    # mse: 0.25 + 9 + 0 = 9.25
    assert abs(value_regression(values, returns).item() - 9.25) < 1e-6
    assert abs(value_regression(values, returns, reduction="mean").item() - 9.25 / 3) < 1e-6
    # huber, delta 1: 0.5 * 0.5^2 = 0.125 (below delta);  1 * (3 - 0.5) = 2.5 (above);  0 -> 2.625
    assert abs(value_regression(values, returns, "huber").item() - 2.625) < 1e-6
    # delta 2: 0.125;  2 * (3 - 1) = 4 -> 4.125
    assert abs(value_regression(values, returns, "huber", delta=2.0).item() - 4.125) < 1e-6
    with pytest.raises(ValueError, match="mse"):
        value_regression(values, returns, loss="l1")
    with pytest.raises(ValueError, match="shapes"):
        value_regression(values[:, None], returns)  # would broadcast to (3, 3)
    # "none" keeps one loss per token (reward heads weight them by their bootstrap draws)
    assert torch.allclose(value_regression(values, returns, reduction="none").sum(), value_regression(values, returns))
    with pytest.raises(ValueError, match="reduction"):
        value_regression(values, returns, reduction="median")


def test_masked_regression_ignores_nan_in_unrated_targets():
    predictions = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    targets = torch.tensor([[0.0, math.nan], [3.5, 2.0]])
    mask = torch.tensor([[True, False], [True, True]])
    loss = masked_regression(predictions, targets, mask)
    # rated residuals 1, -0.5, 2 -> 1 + 0.25 + 4 = 5.25
    assert torch.isfinite(loss) and abs(loss.item() - 5.25) < 1e-6
    loss.backward()
    # dL/dp = 2 r on rated entries, exactly 0 on the unrated (NaN) one
    assert torch.isfinite(predictions.grad).all()
    assert predictions.grad.tolist() == [[2.0, 0.0], [-1.0, 4.0]]
    # mean divides by the 3 rated entries, not by 4: 5.25 / 3 = 1.75
    assert abs(masked_regression(predictions, targets, mask, "mean").item() - 1.75) < 1e-6
    # per attribute: column 0: 1 + 0.25 = 1.25, column 1: 4
    errors = attribute_errors(predictions, targets, mask)
    assert errors.tolist() == [1.25, 4.0] and not errors.requires_grad
    with pytest.raises(ValueError, match="shapes"):
        masked_regression(predictions, targets, mask[:, :1])


def _x(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()


def test_gradcheck():
    t = torch.rand(6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: token_bce(x, t), (_x(6, seed=1),))
    classes = torch.tensor([0, 2, 1, 2])
    assert torch.autograd.gradcheck(lambda x: step_cross_entropy(x, classes, "mean"), (_x(4, 3, seed=2),))
    returns = 2 * torch.randn(7, dtype=torch.float64)  # residuals on both sides of delta
    assert torch.autograd.gradcheck(lambda v: value_regression(v, returns), (_x(7, seed=3),))
    assert torch.autograd.gradcheck(lambda v: value_regression(v, returns, "huber", 0.7), (_x(7, seed=3),))
    targets = torch.randn(3, 4, dtype=torch.float64)
    mask = torch.rand(3, 4) < 0.6
    targets[~mask] = math.nan
    assert torch.autograd.gradcheck(lambda p: masked_regression(p, targets, mask, "mean"), (_x(3, 4, seed=4),))
