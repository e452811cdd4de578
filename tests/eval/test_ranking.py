"""Ranking and best-of-K metrics on hand-worked cases (the arithmetic is in the comments)."""

import math

import pytest

from rewardlab.errors import DataError
from rewardlab.eval.ranking import (average_ranks, format_group_metrics, group_metrics, kendall_tau_b,
                                    majority_answer, spearman_rho, strict_pairs, tied_pairs, tiers_from_ranking,
                                    tiers_from_scores)

KEYS = {"n_prompts", "n_pairs", "pairwise_accuracy", "n_tied_pairs", "tie_accuracy", "tie_threshold",
        "kendall_tau", "spearman", "n_prompts_rank", "top1_accuracy",
        "best_of_k", "random_baseline", "oracle", "majority_vote"}


def test_tiers_from_scores_dense_rank():
    # distinct scores high to low: 1 -> tier 0, 0.2 -> tier 1, 0 -> tier 2
    assert tiers_from_scores([0.2, 1, 1, 0]) == [1, 0, 0, 2]
    assert tiers_from_scores([1.0, 0.0, 0.0, 1.0]) == [0, 1, 1, 0]  # correct / incorrect
    assert tiers_from_scores([3, 3]) == [0, 0]


def test_tiers_from_ranking_nested_and_partial():
    # best first: 2 (tier 0), then 0 and 3 tied (tier 1), then 1 (tier 2)
    assert tiers_from_ranking([2, [0, 3], 1], 4, False, "w") == [1, 2, 0, 1]
    # top-2 only, tied: 1 and 2 are tier 0, the others unranked
    assert tiers_from_ranking([[1, 2]], 4, True, "w") == [None, 0, 0, None]
    assert tiers_from_ranking([3, [0]], 4, True, "w") == [1, None, None, 0]
    with pytest.raises(DataError, match="twice"):
        tiers_from_ranking([0, [1, 0]], 3, False, "w")
    with pytest.raises(DataError, match="out of range for 3"):
        tiers_from_ranking([3], 3, False, "w")


def test_strict_and_tied_pairs_with_partial_ranking():
    # 0 (tier 0) beats 2 (tier 1) and both unranked 1, 3; 2 beats 1 and 3; 1 vs 3 (None, None): no pair
    assert strict_pairs([0, None, 1, None]) == [(0, 1), (0, 2), (0, 3), (2, 1), (2, 3)]
    assert tied_pairs([0, None, 1, None]) == []
    # ties: 0 and 2 (tier 0), 4 and 5 (tier 1); 1 and 3 are unranked, not tied
    assert tied_pairs([0, None, 0, None, 1, 1]) == [(0, 2), (4, 5)]
    assert strict_pairs([None, None]) == [] and strict_pairs([0, 0]) == []


def test_pairwise_accuracy_counts_reward_tie_wrong():
    # pairs (0,1): 2 > 1 right; (0,2): 2 > 1 right; (1,2): 1 > 1 is false (a tie is wrong) -> 2/3
    m = group_metrics([[2.0, 1.0, 1.0]], [[0, 1, 2]])
    assert m["n_pairs"] == 3 and m["pairwise_accuracy"] == pytest.approx(2 / 3)
    assert m["n_tied_pairs"] == 0 and m["tie_accuracy"] is None


def test_tie_accuracy_threshold():
    # prompt 1: tied pair (0,1) |1.0 - 1.4| = 0.4; prompt 2: tied pair (0,1) |0 - 2| = 2
    rewards, tiers = [[1.0, 1.4, 0.0], [0.0, 2.0]], [[0, 0, 1], [0, 0]]
    m = group_metrics(rewards, tiers)
    assert m["n_tied_pairs"] == 2 and m["tie_accuracy"] == 0.5 and m["tie_threshold"] == 0.5  # 0.4 <= 0.5
    assert group_metrics(rewards, tiers, tie_threshold=0.3)["tie_accuracy"] == 0.0  # 0.4 > 0.3
    assert group_metrics(rewards, tiers, tie_threshold=2.0)["tie_accuracy"] == 1.0  # <= is inclusive
    # strict pairs: (0,2) and (1,2) of prompt 1, both right
    assert m["n_pairs"] == 2 and m["pairwise_accuracy"] == 1.0


def test_kendall_and_spearman_without_ties():
    # same order: every pair concordant, identical ranks -> +1; reversed -> -1
    assert kendall_tau_b([4, 3, 2, 1], [4, 3, 2, 1]) == 1.0 and spearman_rho([4, 3, 2, 1], [4, 3, 2, 1]) == 1.0
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == -1.0 and spearman_rho([1, 2, 3], [3, 2, 1]) == -1.0
    m = group_metrics([[4.0, 3.0, 2.0, 1.0]], [[0, 1, 2, 3]])
    assert m["kendall_tau"] == 1.0 and m["spearman"] == 1.0 and m["n_prompts_rank"] == 1


def test_kendall_and_spearman_with_ties():
    # rewards x = [3, 2, 2, 1], tiers [0, 0, 1, 2] -> labels y = -tier = [0, 0, -1, -2]
    # pairs: (0,1) y tied; (0,2) C; (0,3) C; (1,2) x tied; (1,3) C; (2,3) C -> C = 4, D = 0
    # n0 = 6, n1 = 1 (x tie), n2 = 1 (y tie): tau_b = 4 / sqrt(5 * 5) = 0.8
    x, y = [3, 2, 2, 1], [0, 0, -1, -2]
    assert kendall_tau_b(x, y) == pytest.approx(0.8)
    # average ranks: rx = [4, 2.5, 2.5, 1], ry = [3.5, 3.5, 2, 1], both mean 2.5
    # deviations [1.5, 0, 0, -1.5] and [1, 1, -0.5, -1.5]: sxy = 1.5 + 2.25 = 3.75, sxx = syy = 4.5
    assert average_ranks(x) == [4, 2.5, 2.5, 1] and average_ranks(y) == [3.5, 3.5, 2, 1]
    assert spearman_rho(x, y) == pytest.approx(3.75 / 4.5)  # 5/6
    m = group_metrics([[3.0, 2.0, 2.0, 1.0]], [[0, 0, 1, 2]])
    assert m["kendall_tau"] == pytest.approx(0.8) and m["spearman"] == pytest.approx(5 / 6)


def test_rank_correlation_partial_ranking_and_undefined_prompts():
    # rewards [1, 3, 2], tiers [0, None, None] -> y = [0, -1, -1] (the unranked: one bottom tier)
    # (0,1) D, (0,2) D, (1,2) y tied: tau_b = -2 / sqrt(3 * 2) = -0.8165
    # rx = [1, 3, 2], ry = [3, 1.5, 1.5]: sxy = -1.5, sxx = 2, syy = 1.5 -> rho = -1.5 / sqrt(3) = -0.8660
    tau_c, rho_c = -2 / math.sqrt(6), -1.5 / math.sqrt(3)
    assert kendall_tau_b([1, 3, 2], [0, -1, -1]) == pytest.approx(tau_c)
    rewards = [[3.0, 2.0, 2.0, 1.0], [1.0, 3.0, 2.0], [5.0, 5.0, 5.0], [1.0, 2.0]]
    tiers = [[0, 0, 1, 2], [0, None, None], [0, 1, 2], [0, 0]]  # the last two: constant rewards / labels
    m = group_metrics(rewards, tiers)
    assert m["n_prompts_rank"] == 2
    assert m["kendall_tau"] == pytest.approx((0.8 + tau_c) / 2)
    assert m["spearman"] == pytest.approx((5 / 6 + rho_c) / 2)
    assert group_metrics([[1.0, 1.0]], [[0, 1]])["kendall_tau"] is None


def _textbook_tau_b(x, y):
    """tau_b = (C - D) / sqrt((n0 - n1)(n0 - n2)), n1 = sum t(t-1)/2 over the tie groups of x."""
    n = len(x)
    c = sum((x[i] - x[j]) * (y[i] - y[j]) > 0 for i in range(n) for j in range(i + 1, n))
    d = sum((x[i] - x[j]) * (y[i] - y[j]) < 0 for i in range(n) for j in range(i + 1, n))
    n0 = n * (n - 1) / 2
    n1 = sum(t * (t - 1) / 2 for t in (x.count(v) for v in set(x)))
    n2 = sum(t * (t - 1) / 2 for t in (y.count(v) for v in set(y)))
    return (c - d) / math.sqrt((n0 - n1) * (n0 - n2))


def test_kendall_tau_b_matches_textbook_formula_with_ties():
    x = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 0.0, 2.0]
    y = [0, 0, -1, -1, -2, -2, -2, 0]
    assert kendall_tau_b(x, y) == pytest.approx(_textbook_tau_b(x, y))
    assert kendall_tau_b(y, x) == pytest.approx(_textbook_tau_b(x, y))  # symmetric


def test_top1_first_of_equal_rewards_wins():
    # prompt 1: rewards 1 and 2 tie at 2.0, the first (1) wins: tier 0 -> right
    # prompt 2: rewards 0 and 1 tie at 2.0, the first (0) wins: tier 1 -> wrong
    # prompt 3: nothing ranked -> not counted
    m = group_metrics([[1.0, 2.0, 2.0], [2.0, 2.0, 1.0], [1.0, 2.0]], [[1, 0, 1], [1, 0, 1], [None, None]])
    assert m["top1_accuracy"] == 0.5


def test_best_of_k_and_baselines_on_three_prompts():
    # P1: argmax reward is 0 (0.9), wrong; 2 of 4 correct; majority "7" (2 votes), correct
    # P2: rewards 0 and 1 tie at 0.8, the first (0) is picked, correct; 1 of 3 correct;
    #     "3" and "4" one vote each, "3" appears first, correct (None ignored)
    # P3: nothing correct; "2" wins the vote, wrong
    rewards = [[0.9, 0.1, 0.5, 0.3], [0.8, 0.8, 0.2], [1.0, 2.0, 3.0]]
    correct = [[0, 1, 1, 0], [1, 0, 0], [0, 0, 0]]
    answers = [["5", "7", "7", "9"], ["3", "4", None], ["2", "2", None]]
    tiers = [tiers_from_scores(c) for c in correct]
    m = group_metrics(rewards, tiers, correct, answers)
    assert m["best_of_k"] == pytest.approx(1 / 3)  # P2
    assert m["random_baseline"] == pytest.approx((2 / 4 + 1 / 3 + 0) / 3)  # 5/18
    assert m["oracle"] == pytest.approx(2 / 3)  # P1, P2
    assert m["majority_vote"] == pytest.approx(2 / 3)  # P1, P2
    assert set(m) == KEYS and m["n_prompts"] == 3
    text = format_group_metrics(m)
    assert "best-of-k          0.3333  (random 0.2778, majority 0.6667, oracle 0.6667)" in text


def test_majority_answer_ties_and_none():
    assert majority_answer(["4", "3", None, "3", "4"]) == "4"  # 2 votes each: the first to appear
    assert majority_answer([None, "3", "4", "4"]) == "4"
    assert majority_answer([None, None]) is None
    # every answer None: the prompt counts as wrong
    assert group_metrics([[0.0, 1.0]], [[0, 0]], [[1, 1]], [[None, None]])["majority_vote"] == 0.0


def test_keys_stable_without_correctness_and_shape_errors():
    m = group_metrics([[1.0, 0.0]], [[0, 1]])
    assert set(m) == KEYS
    assert all(m[k] is None for k in ("best_of_k", "random_baseline", "oracle", "majority_vote"))
    assert "best-of-k" not in format_group_metrics(m)
    assert group_metrics([[1.0]], [[0]], [[1]])["majority_vote"] is None  # no answers given
    with pytest.raises(ValueError, match="prompt 0: 2 rewards but 1 tiers"):
        group_metrics([[1.0, 0.0]], [[0]])
    with pytest.raises(ValueError, match="1 prompts of rewards but 2 of correct"):
        group_metrics([[1.0]], [[0]], [[1], [0]])
    with pytest.raises(ValueError, match="no completions"):
        group_metrics([[]], [[]])
