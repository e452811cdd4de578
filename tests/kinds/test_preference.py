"""The preference kind: units, row rules, and the loss it builds from K rewards per prompt,
checked against the pure losses called by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from rewardlab.data.preference import Example
from rewardlab.errors import DataError
from rewardlab.kinds import preference as kind
from rewardlab.losses import plackett_luce

# Four graded solutions: 0 and 2 correct (tied), 1 and 3 incorrect (tied).
GSM = Example("q", ["a", "b", "c", "d"], [0, 1, 0, 1], scores=[1.0, 0.0, 1.0, 0.0])
PAIR = Example("p", ["good", "bad"], [0, 1], margin=0.5)
RANKED = Example("r", ["x", "y", "z"], [1, 2, 0])  # z > x > y
ALL_TIED = Example("t", ["u", "v"], [0, 0], scores=[1.0, 1.0])


def _items(*examples):
    return [(e, None) for e in examples]


def test_units_are_what_each_loss_averages_over():
    assert [kind.units((e, None), kind.Options()) for e in (GSM, PAIR, RANKED)] == [4, 1, 3]  # strict pairs
    assert kind.units((GSM, None), kind.Options(balance=True)) == 1  # a prompt
    assert kind.units((GSM, None), kind.Options(loss="plackett_luce")) == 1
    assert kind.units((GSM, None), kind.Options(loss="davidson")) == 6  # 4 strict + 2 tied


def test_all_tied_rows_need_a_loss_that_uses_ties():
    with pytest.raises(DataError, match="row 3: all completions tie, and loss bt cannot use ties"):
        kind.check(ALL_TIED, "f: row 3", kind.Options())
    kind.check(ALL_TIED, "f: row 3", kind.Options(loss="davidson"))
    kind.check(ALL_TIED, "f: row 3", kind.Options(loss="plackett_luce"))
    with pytest.raises(DataError, match="--margin score_diff needs a 'scores' column"):
        kind.check(PAIR, "f: row 1", kind.Options(margin="score_diff"))
    with pytest.raises(DataError, match="score difference 1 is not in the strength table"):
        kind.check(GSM, "f: row 1", kind.Options(loss="scaled_bt", strength_map="2:3"))


def test_bt_sums_every_strict_pair_with_the_pair_margin():
    r = torch.tensor([2.0, 0.0, 1.0, -1.0, 0.3, 0.1, 0.0, 1.0, -2.0])  # GSM, PAIR, RANKED
    value, stats = kind.loss(r, _items(GSM, PAIR, RANKED), kind.Options())
    gsm = [(0, 1), (0, 3), (2, 1), (2, 3)]
    expected = sum(-F.logsigmoid(r[i] - r[j]) for i, j in gsm)
    expected += -F.logsigmoid(r[4] - r[5] - 0.5)  # the pair's margin column
    expected += sum(-F.logsigmoid(r[6 + i] - r[6 + j]) for i, j in [(2, 0), (2, 1), (0, 1)])
    assert torch.allclose(value, expected)
    # GSM 4 of 4 right, PAIR 1 of 1, RANKED (x=0, y=1, z=-2; z > x > y) 0 of 3.
    assert stats == {"correct": 5.0, "pairs": 8.0, "completions": 9.0}
    assert kind.summarize(stats)["accuracy"] == 5 / 8


def test_balanced_averages_each_prompt():
    r = torch.tensor([2.0, 0.0, 1.0, -1.0, 0.3, 0.1])
    value, _ = kind.loss(r, _items(GSM, PAIR), kind.Options(balance=True, margin="none"))
    gsm = sum(-F.logsigmoid(r[i] - r[j]) for i, j in [(0, 1), (0, 3), (2, 1), (2, 3)]) / 4
    assert torch.allclose(value, gsm + -F.logsigmoid(r[4] - r[5]))


def test_score_diff_margin_and_scaled_bt():
    e = Example("q", ["a", "b", "c"], [0, 1, 2], scores=[5.0, 3.0, 2.0])
    r = torch.tensor([1.0, 0.5, 0.0])
    value, _ = kind.loss(r, _items(e), kind.Options(margin="score_diff", margin_scale=0.5))
    pairs = [(0, 1, 2.0), (0, 2, 3.0), (1, 2, 1.0)]
    assert torch.allclose(value, sum(-F.logsigmoid(r[i] - r[j] - 0.5 * d) for i, j, d in pairs))
    value, _ = kind.loss(r, _items(e), kind.Options(loss="scaled_bt", margin="none", strength_map="1:1,2:3,3:10"))
    assert torch.allclose(value, sum(-{1.0: 1, 2.0: 3, 3.0: 10}[d] * F.logsigmoid(r[i] - r[j]) for i, j, d in pairs))


def test_scaled_bt_equals_bt_on_0_1_scores():
    r = torch.randn(4, generator=torch.Generator().manual_seed(0))
    bt, _ = kind.loss(r, _items(GSM), kind.Options())
    scaled, _ = kind.loss(r, _items(GSM), kind.Options(loss="scaled_bt"))
    assert torch.equal(bt, scaled)


def test_plackett_luce_pads_prompts_of_different_k():
    r = torch.tensor([2.0, 0.0, 1.0, -1.0, 0.0, 1.0, -2.0])  # GSM (K=4), RANKED (K=3)
    value, _ = kind.loss(r, _items(GSM, RANKED), kind.Options(loss="plackett_luce"))
    one, _ = plackett_luce(r[:4].view(1, 4), torch.tensor([[0, 1, 0, 1]]), reduction="sum")
    two, _ = plackett_luce(r[4:].view(1, 3), torch.tensor([[1, 2, 0]]), reduction="sum")
    assert torch.allclose(value, one + two)
    # RANKED by hand (x=0, y=1, z=-2): z first among {x, y, z}, then x among {x, y}.
    lse = lambda *v: math.log(sum(math.exp(x) for x in v))  # noqa: E731
    assert abs(two.item() - (lse(0, 1, -2) - (-2) + lse(0, 1) - 0)) < 1e-5


def test_davidson_uses_tied_pairs():
    r = torch.tensor([2.0, 0.0, 1.0, -1.0])
    value, stats = kind.loss(r, _items(GSM), kind.Options(loss="davidson", davidson_nu=0.5))

    def log_d(a, b):
        return torch.logsumexp(torch.stack([a, b, math.log(0.5) + (a + b) / 2]), 0)

    strict = sum(log_d(r[i], r[j]) - r[i] for i, j in [(0, 1), (0, 3), (2, 1), (2, 3)])
    tied = sum(log_d(r[i], r[j]) - (math.log(0.5) + (r[i] + r[j]) / 2) for i, j in [(0, 2), (1, 3)])
    assert torch.allclose(value, strict + tied)
    assert stats["pairs"] == 4  # accuracy is over strict pairs only


def test_strength_table_applies_to_scored_rows_only():
    r = torch.tensor([1.0, 0.0, 0.3, 0.1])  # a scored pair (difference 2), a plain pair
    scored = Example("q", ["a", "b"], [0, 1], scores=[3.0, 1.0])
    value, _ = kind.loss(r, _items(scored, PAIR), kind.Options(loss="scaled_bt", margin="none", strength_map="2:3"))
    assert torch.allclose(value, -3 * F.logsigmoid(r[0] - r[1]) - F.logsigmoid(r[2] - r[3]))  # the plain pair weighs 1


def test_a_row_that_compares_nothing_is_an_error_for_every_loss():
    nothing = Example("q", ["a", "b", "c"], [None, None, None])
    for loss in ("bt", "plackett_luce", "davidson"):
        with pytest.raises(DataError, match="compares nothing"):
            kind.check(nothing, "f: row 1", kind.Options(loss=loss))


def test_options_a_loss_would_ignore_are_refused():
    from rewardlab.errors import ConfigError

    with pytest.raises(ConfigError, match="davidson has no margin"):
        kind.Options(loss="davidson", margin="score_diff")
    with pytest.raises(ConfigError, match="--strength-map applies to --loss scaled_bt"):
        kind.Options(strength_map="1:1")
