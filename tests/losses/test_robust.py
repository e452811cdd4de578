"""ODIN's disentangling terms (losses/robust.py) against hand-worked values and gradcheck, and RRM's
augmentation (data/augment.py) on a small hand case."""

import math

import pytest
import torch

from rewardlab.data.augment import rrm_augment
from rewardlab.data.features import feature_names, feature_values, list_items, markdown_count
from rewardlab.data.preference import Example
from rewardlab.losses import disentangle_loss, pearson_correlation


def test_pearson_correlation_by_hand_and_zero_for_a_constant():
    x, y = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 7.0])
    # means 2 and 13/3; dx = -1, 0, 1; dy = -7/3, -1/3, 8/3; cov = 5; var_x = 2, var_y = 114/9 (sums)
    assert float(pearson_correlation(x, y)) == pytest.approx(5 / math.sqrt(2 * 114 / 9))
    assert float(pearson_correlation(x, -y)) == pytest.approx(-5 / math.sqrt(2 * 114 / 9))
    assert float(pearson_correlation(x, torch.ones(3))) == 0.0


def test_disentangle_loss_by_hand():
    # quality head perfectly anti-correlated with length, length head perfectly correlated
    heads = torch.tensor([[3.0, 1.0], [2.0, 2.0], [1.0, 3.0]])
    length = torch.tensor([[10.0], [20.0], [30.0]])
    value, corr = disentangle_loss(heads, length, coef=0.5)
    # L_L = 1 - 1 = 0; L_Q = |-1| = 1; 0.5 * (0 + 1)
    assert float(value) == pytest.approx(0.5)
    assert corr == pytest.approx({"corr_feature_head_0": 1.0, "corr_quality_head_0": -1.0})
    # two features: each feature head against its own feature, the quality head against both
    heads = torch.tensor([[0.0, 1.0, 5.0], [1.0, 2.0, 5.0], [0.0, 3.0, 5.0]])
    feats = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    value, corr = disentangle_loss(heads, feats)
    # head 1 ~ feature 0: rho 1 -> 0; head 2 constant -> rho 0 -> 1; quality ~ f0: rho 0; quality ~ f1: rho 1
    assert float(value) == pytest.approx(0 + 1 + 0 + 1)
    with pytest.raises(ValueError, match="3 heads for 1 features"):
        disentangle_loss(heads, length)


def test_disentangle_loss_gradcheck():
    torch.manual_seed(0)
    heads = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    feats = torch.randn(6, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda h: disentangle_loss(h, feats, 0.7)[0], (heads,))


def test_features_of_a_text():
    text = "# Title\n- one\n- two\n1. three\nSome **bold** and `code`."
    assert list_items(text) == 3 and markdown_count(text) == 8  # heading, 3 list marks, 2 bold marks, 2 ticks
    assert feature_values([text, "  ab "], ["length", "lists"]) == [[float(len(text)), 3.0], [2.0, 0.0]]
    with pytest.raises(ValueError, match="unknown feature 'tone' \\(known: length, markdown, lists\\)"):
        feature_names("length,tone")


def test_rrm_adds_two_completions_of_another_prompt_below_and_tied():
    examples = [Example("p1", ["good 1", "bad 1"], [0, 1]), Example("p2", ["good 2", "bad 2"], [0, 1]),
                Example("p3", ["a", "b", "c"], [0, 1, 1], scores=[2.0, 1.0, 1.0])]
    out, note = rrm_augment(examples, seed=0)
    for before, after in zip(examples, out):
        assert after.prompt == before.prompt and after.completions[:len(before.completions)] == before.completions
        borrowed = after.completions[len(before.completions):]
        assert len(borrowed) == 2 and not set(borrowed) & set(before.completions)
        bottom = max(before.tiers) + 1
        assert after.tiers == before.tiers + [bottom, bottom]
    # a pair y_w > y_l becomes y_w > y_l > {a ~ b}: 5 strict pairs (1 + 4 new) and 1 tie
    assert len(out[0].strict_pairs()) == 5 and out[0].tied_pairs() == [(2, 3)]
    assert out[2].scores == [2.0, 1.0, 1.0, 0.0, 0.0]  # a scored row's borrowed completions: 1 below its lowest
    new_strict = sum(len(a.strict_pairs()) - len(b.strict_pairs()) for a, b in zip(out, examples))
    assert note.startswith(f"RRM: 3 examples each given 2 completions of another prompt, below their own: "
                           f"{new_strict} more strict pairs, 3 more ties")
    assert rrm_augment(examples, seed=0)[0] == out  # seeded: a resumed run sees the same data
    with pytest.raises(ValueError, match="at least two different prompts"):
        rrm_augment([Example("p", ["a", "b"], [0, 1])] * 3)
