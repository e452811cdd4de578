"""Bias diagnostics, calibration, best-of-N curves and bootstrap intervals on hand-made cases."""

import random

import pytest

from rewardlab.eval.diagnostics import (best_of_n_curve, bias_diagnostics, expected_calibration_error,
                                        markdown_count, pair_calibration, paired_bootstrap)


def test_a_model_that_only_tracks_length_is_named():
    chosen = ["a long careful answer", "another long answer", "short", "a long right answer"]
    rejected = ["short", "tiny", "a much longer wrong answer", "no"]
    length_rewards = lambda texts: [float(len(t)) for t in texts]  # noqa: E731
    d = bias_diagnostics(chosen, rejected, length_rewards(chosen), length_rewards(rejected))["length"]
    assert d["baseline_accuracy"] == 0.75 and d["agreement_with_longer"] == 1.0
    assert (d["accuracy_chosen_more"], d["n_chosen_more"]) == (1.0, 3)
    assert (d["accuracy_chosen_less"], d["n_chosen_less"]) == (0.0, 1)
    assert d["tracks_length"] and d["reward_length_correlation"] == pytest.approx(1.0)
    honest = bias_diagnostics(chosen, rejected, [1.0] * 4, [0.0] * 4)["length"]
    assert not honest["tracks_length"] and honest["accuracy_chosen_less"] == 1.0


def test_markdown_split():
    assert markdown_count("# Title\n- one\n- two\n**bold** and `code`") == 7  # header, 2 items, 2 bold marks, 2 ticks
    d = bias_diagnostics(["- a\n- b", "plain"], ["plain", "**x**"], [1.0, 1.0], [0.0, 0.0])["markdown"]
    assert d["baseline_accuracy"] == 0.5 and d["accuracy_chosen_more"] == 1.0 and d["accuracy_chosen_less"] == 1.0


def test_ece_equal_mass_bins_by_hand():
    # bins of 2: {0.1, 0.1} -> outcomes {0, 0}: |0 - 0.1| = 0.1; {0.9, 0.9} -> {1, 0}: |0.5 - 0.9| = 0.4.
    m = expected_calibration_error([0.9, 0.1, 0.9, 0.1], [1, 0, 0, 0], bins=2)
    assert m["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.4)
    assert [b["n"] for b in m["bins"]] == [2, 2]
    assert pair_calibration([0.0, 1.0], [0.0, 1.0])["ece"] == pytest.approx(0.0)  # p = 0.5 both ways: calibrated


def test_best_of_n_curve_by_hand():
    c = best_of_n_curve([[3.0, 2.0, 1.0]], [[False, True, True]])
    assert c["n"] == [1, 2, 3]
    # n=2: subsets {0,1} picks 0 (wrong), {0,2} picks 0 (wrong), {1,2} picks 1 (right).
    assert c["model"] == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert c["random"] == pytest.approx([2 / 3, 2 / 3, 2 / 3]) and c["oracle"] == pytest.approx([2 / 3, 1.0, 1.0])


def test_paired_bootstrap_covers_the_true_difference():
    rng = random.Random(1)
    covered = 0
    for sim in range(60):
        a = [rng.random() < 0.7 for _ in range(200)]
        b = [rng.random() < 0.6 for _ in range(200)]
        ci = paired_bootstrap(a, b, samples=300, seed=sim)
        covered += ci["low"] <= 0.1 <= ci["high"]
    assert covered / 60 >= 0.85  # nominal 0.95; the percentile interval is a little narrow at n = 200
