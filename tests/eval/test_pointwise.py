"""Hand-computed cases for rewardlab.eval.pointwise (the arithmetic is in the comments)."""

import math

import pytest

from rewardlab.eval.pointwise import (aggregate_steps, auroc, best_threshold, brier, first_error,
                                      format_pointwise, orm_metrics, processbench, regression_metrics,
                                      step_f1, value_metrics)

approx = pytest.approx


# ---- AUROC / Brier -------------------------------------------------------------------------

def test_auroc_with_ties():
    # positives {0.4, 0.8}, negatives {0.1, 0.4}: 0.4>0.1 (1), 0.4=0.4 (1/2), 0.8>0.1 (1),
    # 0.8>0.4 (1) -> 3.5 / (2 * 2) = 0.875
    assert auroc([0.1, 0.4, 0.4, 0.8], [0, 0, 1, 1]) == 0.875


def test_auroc_negated_scores_is_complement():
    scores, labels = [0.1, 0.4, 0.4, 0.8, 0.3, 0.3], [0, 0, 1, 1, 1, 0]
    assert auroc([-s for s in scores], labels) == approx(1 - auroc(scores, labels))
    assert auroc([-0.1, -0.4, -0.4, -0.8], [0, 0, 1, 1]) == 0.125  # 1 - 0.875


def test_auroc_soft_labels_and_one_class():
    # 0.7 and 0.5 count as positive, 0.2 as negative: both positives score above it -> 1
    assert auroc([0.9, 0.6, 0.1], [0.7, 0.5, 0.2]) == 1.0
    assert auroc([0.9, 0.1], [1, 1]) is None
    assert auroc([0.9, 0.1], [0, 0.4]) is None


def test_brier():
    # (0.9-1)^2 + (0.2-0)^2 + (0.5-0.5)^2 = 0.01 + 0.04 + 0 -> 0.05 / 3
    assert brier([0.9, 0.2, 0.5], [1, 0, 0.5]) == approx(0.05 / 3)
    assert brier([], []) is None
    with pytest.raises(ValueError):
        brier([0.5], [1, 0])


# ---- ORM -----------------------------------------------------------------------------------

PROBS = [0.9, 0.6, 0.2, 0.3, 0.7, 0.4]
LABELS = [0, 1, 1, 0, 1, 0]
GROUPS = [[0, 1, 2], [3, 4, 5]]
ANSWERS = ["5", "7", "7", "1", "2", None]


def test_orm_metrics_rows():
    m = orm_metrics(PROBS, LABELS)
    assert set(m) == {"n", "accuracy", "auroc", "brier", "ece", "positive_rate", "warnings"}
    assert m["n"] == 6  # 4 of 6 right is within one standard error (0.204) of the majority class's 1/2: said
    assert m["warnings"] == ["accuracy 0.6667 is within one standard error (0.2041) of the majority-class baseline "
                             "0.5000 (n=6)"]
    # predicted correct (p >= 0.5): 1 1 0 0 1 0 vs labels 0 1 1 0 1 0 -> rows 1, 3, 4, 5 agree
    assert m["accuracy"] == approx(4 / 6)
    # positives {0.6, 0.2, 0.7} vs negatives {0.9, 0.3, 0.4}: 0.6 beats 2, 0.2 beats 0, 0.7 beats 2 -> 4/9
    assert m["auroc"] == approx(4 / 9)
    # 0.81 + 0.16 + 0.64 + 0.09 + 0.09 + 0.16 = 1.95
    assert m["brier"] == approx(1.95 / 6)
    # 10 equal-mass bins over 6 rows: every row alone in a bin, so ECE = mean |y - p|
    # = (0.9 + 0.4 + 0.8 + 0.3 + 0.3 + 0.4) / 6 = 3.1 / 6
    assert m["ece"] == approx(3.1 / 6)
    assert m["positive_rate"] == 0.5


def test_orm_metrics_groups_and_majority():
    m = orm_metrics(PROBS, LABELS, GROUPS, ANSWERS)
    assert m["n_groups"] == 2
    # argmax: group 0 row 0 (0.9, wrong), group 1 row 4 (0.7, right) -> 1/2
    assert m["best_of_n"] == 0.5
    # share correct: 2/3 and 1/3 -> mean 1/2
    assert m["random"] == approx(0.5)
    assert m["oracle"] == 1.0
    # group 0: "7" twice (rows 1, 2 correct) -> right; group 1: "1" vs "2" tie, the first to
    # appear ("1", row 3, wrong) wins as in ranking.majority_answer -> wrong; -> 1/2
    assert m["majority"] == 0.5
    assert "majority" not in orm_metrics(PROBS, LABELS, GROUPS)


def test_orm_best_of_n_tie_takes_first_row_of_group():
    # equal probs in each group: the first listed row is picked (right in group 0, wrong in group 1)
    m = orm_metrics([0.5, 0.5, 0.8, 0.8], [1, 0, 0, 1], [[0, 1], [2, 3]])
    assert m["best_of_n"] == 0.5
    with pytest.raises(ValueError):
        orm_metrics([0.5, 0.5], [1, 0], [[0]])  # a group needs K >= 2
    with pytest.raises(ValueError):
        orm_metrics([0.5, 0.5], [1, 0], [[0, 2]])  # index out of range


# ---- PRM: step F1, ProcessBench, aggregation -----------------------------------------------

STEP_SCORES = [[0.9, 0.6, 0.3], [0.5, 0.2], [0.7, 0.8]]
STEP_LABELS = [[True, True, False], [True, False], [True, False]]


def test_step_f1():
    m = step_f1(STEP_SCORES, STEP_LABELS)
    # predicted correct (> 0.5; 0.5 itself is not): T T F | F F | T T
    # TP = 3 (0.9, 0.6, 0.7), TN = 2 (0.3, 0.2), FN = 1 (0.5), FP = 1 (0.8)
    # F1 correct = 2*3 / (6 + 1 + 1) = 0.75; F1 wrong = 2*2 / (4 + 1 + 1) = 2/3
    assert m["f1_correct"] == approx(0.75)
    assert m["f1_wrong"] == approx(2 / 3)
    assert m["f1_mean"] == approx((0.75 + 2 / 3) / 2)
    assert m["n_steps"] == 7
    assert m["accuracy"] == approx(5 / 7)
    # threshold 0.4: 0.5 now predicted correct -> TP 4, FN 0, TN 2, FP 1: F1 8/9 and 4/5
    m = step_f1(STEP_SCORES, STEP_LABELS, threshold=0.4)
    assert (m["f1_correct"], m["f1_wrong"]) == (approx(8 / 9), approx(4 / 5))


def test_step_f1_absent_class_is_none():
    m = step_f1([[0.9, 0.8]], [[True, True]])
    assert m["f1_correct"] == 1.0 and m["f1_wrong"] is None and m["f1_mean"] is None


def test_first_error():
    assert first_error([0.9, 0.8, 0.2, 0.1], 0.5) == 2
    assert first_error([0.9, 0.5], 0.5) == -1  # equal to the threshold is not below it
    assert first_error([], 0.5) == -1


def test_processbench_hand_cases():
    scores = [[0.9, 0.8, 0.2, 0.1],  # label 2, first < 0.5 at 2: right step
              [0.9, 0.3, 0.2],       # label 2, flagged at 1: too early
              [0.9, 0.8, 0.7, 0.1],  # label 1, flagged at 3: too late
              [0.9, 0.9],            # label 1, never flagged
              [0.9, 0.8],            # correct, not flagged: right
              [0.9, 0.4]]            # correct, flagged at 1: wrong
    labels = [2, 2, 1, 1, -1, -1]
    m = processbench(scores, labels, 0.5)
    assert m["acc_error"] == 0.25 and m["acc_correct"] == 0.5
    # harmonic mean: 2 * 1/4 * 1/2 / (1/4 + 1/2) = (1/4) / (3/4) = 1/3
    assert m["f1"] == approx(1 / 3)
    assert (m["n_error"], m["n_correct"], m["threshold"]) == (4, 2, 0.5)


def test_processbench_f1_zero_and_none():
    # every correct sample flagged -> acc_correct 0 -> F1 0 (not a division by zero)
    m = processbench([[0.2], [0.1]], [0, -1], 0.5)
    assert (m["acc_error"], m["acc_correct"], m["f1"]) == (1.0, 0.0, 0.0)
    m = processbench([[0.9]], [-1], 0.5)  # no erroneous sample
    assert m["acc_error"] is None and m["f1"] is None and m["n_error"] == 0


VAL_SCORES = [[0.9, 0.3], [0.8, 0.6, 0.35], [0.9, 0.7], [0.65, 0.95]]
VAL_LABELS = [1, 2, -1, -1]


def test_best_threshold_separates():
    # errors flagged at the right step need 0.35 < t <= 0.6 (0.6 must not be flagged); correct
    # samples stay unflagged for t <= 0.65. F1 = 1 on 0.36..0.60: the smallest, 0.36, wins.
    t = best_threshold(VAL_SCORES, VAL_LABELS)
    assert t == 0.36
    assert processbench(VAL_SCORES, VAL_LABELS, t)["f1"] == 1.0
    assert processbench(VAL_SCORES, VAL_LABELS, 0.35)["f1"] < 1.0
    # given candidates, in any order; 0.4 and 0.5 both separate -> the smaller
    assert best_threshold(VAL_SCORES, VAL_LABELS, [0.9, 0.5, 0.2, 0.4]) == 0.4
    with pytest.raises(ValueError):
        best_threshold([[0.9]], [-1])  # F1 undefined without erroneous samples


def test_aggregate_steps():
    s = [0.9, 0.5, 0.8]
    assert aggregate_steps(s, "min") == 0.5
    assert aggregate_steps(s, "prod") == approx(0.36)  # 0.9 * 0.5 * 0.8
    assert aggregate_steps(s, "last") == 0.8
    assert aggregate_steps(s, "mean") == approx(2.2 / 3)
    with pytest.raises(ValueError):
        aggregate_steps(s, "max")
    with pytest.raises(ValueError):
        aggregate_steps([], "min")


# ---- value functions / regression ----------------------------------------------------------

def test_value_metrics():
    t = [1.0, 2.0, 3.0, 6.0]
    m = value_metrics(t, t)
    assert (m["mse"], m["explained_variance"], m["n"]) == (0.0, 1.0, 4)
    # predicting the mean 3: residual t - 3 has the variance of t -> EV 0; MSE (4 + 1 + 0 + 9) / 4
    m = value_metrics([3.0] * 4, t)
    assert m["explained_variance"] == approx(0.0) and m["mse"] == 3.5
    # a constant offset explains all the variance but costs MSE 1
    m = value_metrics([x + 1 for x in t], t)
    assert m["explained_variance"] == 1.0 and m["mse"] == 1.0
    assert value_metrics([1.0, 2.0], [2.0, 2.0])["explained_variance"] is None


def test_regression_metrics_masks_missing_targets():
    names = ["help", "safe", "none"]
    preds = [[1.0, 2.0, 0.0], [2.0, None, 0.0], [3.0, 1.0, 0.0]]
    targets = [[1.5, 2.0, None], [2.0, None, None], [2.0, None, None]]
    m = regression_metrics(preds, targets, names)
    help_, safe, none = (m["attributes"][k] for k in names)
    # help: errors 0.5, 0, 1 -> MSE 1.25 / 3; pearson of [1,2,3] and [1.5,2,2]:
    # sxy = 1/3 + 1/6 = 1/2, sxx = 2, syy = 1/9 + 2/36 = 1/6 -> r = 0.5 / sqrt(1/3) = sqrt(3)/2
    assert help_["mse"] == approx(1.25 / 3) and help_["n"] == 3
    assert help_["pearson"] == approx(math.sqrt(3) / 2)
    # safe: only row 0 has a target (row 2's prediction 1.0 is masked) -> MSE 0, pearson undefined
    assert safe == {"mse": 0.0, "pearson": None, "n": 1}
    assert none == {"mse": None, "pearson": None, "n": 0}
    assert m["mse"] == approx((1.25 / 3 + 0.0) / 2)  # attributes without targets left out
    with pytest.raises(ValueError):
        regression_metrics([[None]], [[1.0]], ["help"])  # a target without a prediction


# ---- formatting ----------------------------------------------------------------------------

def test_format_pointwise():
    text = format_pointwise(orm_metrics(PROBS, LABELS, GROUPS, ANSWERS))
    assert "AUROC" in text and "best-of-n" in text and "(2 groups)" in text and "majority vote" in text
    assert format_pointwise(orm_metrics([0.9], [1])).count("n/a") == 1  # AUROC with one class
    text = format_pointwise(processbench(VAL_SCORES, VAL_LABELS, 0.36))
    assert "ProcessBench F1" in text and "threshold 0.36" in text
    text = format_pointwise(regression_metrics([[1.0]], [[2.0]], ["help"]))
    assert "help" in text and "mean over attributes" in text
    assert "F1 mean" in format_pointwise(step_f1(STEP_SCORES, STEP_LABELS))
    assert "explained var" in format_pointwise(value_metrics([1.0, 2.0], [1.0, 3.0]))
    assert all(line == line.rstrip() for line in text.splitlines())
