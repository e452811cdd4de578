"""PRMBench, RewardMATH, RMB, M-RewardBench and PPE: each rule on a hand-worked case, the
released layouts detected from their columns, RewardMATH against the official ArmoRM numbers."""

import gzip
import itertools
import json
import math
from pathlib import Path

import pytest

from rewardlab.data.rows import read_rows
from rewardlab.eval.benchmarks import Render, detect, interval, mrewardbench, ppe, prmbench, rewardmath, rmb
from rewardlab.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures"


def _prm_row(cls, idx, n_steps, errors, original=None):
    row = {"classification": cls, "idx": idx, "modified_question": "Q", "modified_process": [f"s{i}" for i in range(n_steps)],
           "error_steps": errors, "original_question": "Q0", "original_process": original or ["o1", "o2"]}
    return row


def test_prmbench_pools_counts_over_steps_and_scores_the_redundancy_originals_apart():
    rows = [_prm_row("redundency", "a", 4, [3]), _prm_row("redundency", "a", 4, [3]),  # a repeated item: once
            _prm_row("circular", "b", 3, [2, 9]), _prm_row("multi_solutions", "c", 2, [])]
    rewards = [[[0.9, 0.6, 0.4, 0.2], [0.9, 0.1]], [[0.0] * 4, [0.0] * 2],
               [[0.9, 0.7, float("nan")], ], [[0.8, 0.5]]]
    m = prmbench.score(rows, rewards)
    # redundency: steps 1,2 valid & judged valid (TP 2), step 3 an error judged invalid (TN), step 4 valid judged invalid (FN)
    # circular: step 1 TP, step 2 an error judged valid (FP), step 3 unscored; error 9 is past the last step
    # multi_solutions: 0.8 TP, 0.5 is not above 0.5: FN
    tp, fp, tn, fn = 2 + 1 + 1, 1, 1, 1 + 1
    assert m["counts"] == {"tp": tp, "fp": fp, "tn": tn, "fn": fn} and m["steps_unscored"] == 1 and m["n"] == 3
    p, r = tp / (tp + fp), tp / (tp + fn)
    np_, nr = tn / (tn + fn), tn / (tn + fp)
    f1, nf1 = 2 * p * r / (p + r), 2 * np_ * nr / (np_ + nr)
    assert m["prmscore"] == pytest.approx(0.5 * f1 + 0.5 * nf1)
    red = 0.5 * (2 * 1 * (2 / 3) / (1 + 2 / 3)) + 0.5 * (2 * 0.5 * 1 / 1.5)  # P=1 R=2/3; nP=1/2 nR=1
    assert m["categories"]["redundency"] == pytest.approx(red)
    assert m["categories"]["circular"] == pytest.approx(0.5 * (2 * 0.5 * 1 / 1.5) + 0.5 * 0.0)  # P=1/2 R=1; no TN
    assert m["categories"]["multi_solutions"] == pytest.approx(2 * 1 * 0.5 / 1.5)  # F1 only
    assert m["groups"] == {"Simplicity": pytest.approx((red + m["categories"]["circular"]) / 2)}  # others incomplete
    assert m["correct"]["items"] == 1 and m["correct"]["f1"] == pytest.approx(2 * 1 * 0.5 / 1.5)  # 0.9 TP, 0.1 FN
    assert prmbench.score(rows, rewards, threshold=0.05)["counts"]["fn"] == 0


def test_prmbench_release_rows_read_detect_and_mark_every_step():
    rows = read_rows(str(FIXTURES / "prmbench_rows.jsonl"))
    assert detect(rows) == "prmbench" and len(rows) == 9
    groups = [prmbench.texts(r, "x", Render(None, "\n")) for r in rows]
    for row, g in zip(rows, groups):
        assert len(g) == (2 if row["classification"] == "redundency" else 1)
        assert len(g[0].ends) == len(row["modified_process"])
        assert not g[0].completion.startswith("Step 1.")  # the wrappers' "Step N. " prefix removed
    m = prmbench.score(rows, [[[1.0] * len(t.ends) for t in g] for g in groups])
    assert m["f1"] == 1.0 or m["negative_f1"] == 0.0  # everything judged valid: no true negative
    assert set(m["categories"]) == set(prmbench.KNOWN)
    assert set(m["groups"]) == {"Simplicity", "Soundness", "Sensitivity"}


def test_rewardmath_scorer_gives_the_official_armorm_numbers():
    results = json.load(gzip.open(FIXTURES / "rewardmath_armorm_scores.json.gz", "rt"))
    rows = [{"problem": str(k), "problem_id": k, "solution_reference": ref}
            for k, p in enumerate(results) for ref in p["solution_reference"]]
    rewards = [[s] for p in results for s in p["score"]]
    m = rewardmath.score(rows, rewards)
    assert m["n"] == 483
    assert (round(100 * m["accuracy"], 3), round(100 * m["accuracy_with_ties"], 3), round(100 * m["mrr"], 3)) == \
        (20.497, 21.532, 42.182)


def test_rewardmath_ties_are_pessimistic_and_steps_use_the_benchmarks_reducers():
    rows = [{"problem": "p", "solution_reference": ref, "subject": "Algebra"}
            for ref in ("human_to_GPT-4", "a", "b", "c")]
    m = rewardmath.score(rows, [[0.5], [0.5], [0.7], [0.1]])
    assert (m["accuracy"], m["accuracy_with_ties"], m["mrr"]) == (0.0, 0.0, pytest.approx(1 / 3))
    m = rewardmath.score(rows, [[0.5], [0.5], [0.2], [0.1]])
    assert (m["accuracy"], m["accuracy_with_ties"], m["mrr"]) == (0.0, 1.0, 0.5)
    steps = [[0.9, 0.8], [0.6, 0.99], [0.5], [0.3, 0.2]]
    m = rewardmath.score(rows, [[{"reward": min(s), "steps": s}] for s in steps])
    assert m["reducers"]["min"]["accuracy"] == 1.0 and m["reducers"]["last"]["accuracy"] == 0.0
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    assert rewardmath.REDUCERS["mean_logit"]([0.9, 0.8]) == pytest.approx(1 / (1 + math.exp(-(logit(0.9) + logit(0.8)) / 2)))
    assert rewardmath.REDUCERS["geometric_mean"]([0.9, 0.4]) == pytest.approx(0.6)
    assert rewardmath.REDUCERS["mean_odd"]([0.5, 0.75]) == pytest.approx((1 + 3) / 2)
    with pytest.raises(DataError, match="needs one solution"):
        rewardmath.score(rows[1:], [[0.1]] * 3)


def test_rewardmath_release_sample_is_detected_and_grouped_by_problem():
    rows = read_rows(str(FIXTURES / "rewardmath_direct_sample.json"))
    assert detect(rows) == "rewardmath"
    m = rewardmath.score(rows, [[float(r["solution_reference"] == "human_to_GPT-4")] for r in rows])
    assert m["n"] == 2 and m["accuracy"] == 1.0 and m["mrr"] == 1.0 and set(m["categories"]) <= set(rewardmath.SUBJECTS)


def _rmb(path, conv="Hi", **answers):
    return {"conversation_input": [{"role": "user", "content": conv, "language": "English"}], "category_path": path,
            **answers}


def test_rmb_ties_are_wrong_best_of_n_must_beat_every_loser_and_the_four_parts_are_averaged():
    a = {"answer": "x"}
    rows = [_rmb("Pairwise_set/Helpfulness/Chat/Discussion", chosen=a, reject=a),
            _rmb("Pairwise_set/Helpfulness/Chat/Discussion", chosen=a, reject=a),
            _rmb("Pairwise_set/Harmlessness/S1", chosen=a, reject=a),
            _rmb("BoN_set/Helpfulness/Chat/Discussion", bon_best=a, loser_list=[a, a]),
            _rmb("BoN_set/Harmlessness/S1", bon_best=a, loser_list=[a, a])]
    rewards = [[1.0, 0.0], [0.5, 0.5], [2.0, 1.0], [1.0, 0.0, 1.0], [3.0, 2.0, 1.0]]
    m = rmb.score(rows, rewards)
    assert (m["pairwise_helpfulness"], m["pairwise_harmlessness"], m["bon_helpfulness"], m["bon_harmlessness"]) == \
        (0.5, 1.0, 0.0, 1.0)
    assert m["accuracy"] == pytest.approx(2.5 / 4) and m["categories"]["BoN_set/Harmlessness/S1"] == 1.0


def test_rmb_folder_is_read_as_released_and_a_bad_row_names_its_file(tmp_path):
    a = {"llm_name": "m", "answer": "x"}
    for rel, row in (("Pairwise_set/Helpfulness/Chat/Discussion.json", _rmb("Pairwise_set/Helpfulness/Chat/Discussion",
                                                                             chosen=a, reject=a)),
                     ("BoN_set/Harmlessness/S1.json", _rmb("BoN_set/Harmlessness/S1", bon_best=a, loser_list=[a]))):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(json.dumps([row, row]))
    rows = read_rows(str(tmp_path))
    assert len(rows) == 4 and detect(rows) == "rmb"
    assert rows.where(3, "D") == str(Path("D") / "Pairwise_set/Helpfulness/Chat/Discussion.json") + ": row 2"
    bad = dict(rows[3], chosen={"answer": 3})
    with pytest.raises(DataError, match="'chosen' must be an object"):
        rmb.texts(bad, rows.where(3, "D"), Render())
    texts = rmb.texts(rows[0], "x", Render())  # no chat template: the plain one
    assert texts[0].prompt == "\n\nHuman: Hi\n\nAssistant:" and texts[0].completion == " x"


def test_m_rewardbench_weights_sections_per_language_and_leaves_english_out_of_the_mean():
    rows, rewards = [], []
    for lang, right in (("deu_Latn", True), ("fra_Latn", False), ("eng_Latn", True)):
        for subset in ("alpacaeval-easy", "mt-bench-hard", "donotanswer", "math-prm"):
            rows.append({"prompt": "p", "chosen": "c", "rejected": "r", "source": subset, "language": lang})
            rewards.append([1.0, 0.0] if right else [0.0, 0.0])  # a tie is wrong
    rows.append({"prompt": "p", "chosen": "c", "rejected": "r", "source": "hep-go", "language": "deu_Latn"})
    rewards.append([0.0, 1.0])
    m = mrewardbench.score(rows, rewards)
    reasoning = (983 * 1.0 + 164 * 0.0) / (983 + 164)
    assert m["languages"]["deu_Latn"]["Reasoning"] == pytest.approx(reasoning)
    assert m["languages"]["deu_Latn"]["score"] == pytest.approx((3 + reasoning) / 4)
    assert m["accuracy"] == pytest.approx(((3 + reasoning) / 4 + 0.0) / 2) and m["english"] == 1.0
    assert detect(rows) == "m-rewardbench"


def test_ppe_best_of_k_is_the_exact_expectation_over_subsets_ties_shared():
    rewards, correct = [0.3, 0.9, 0.9, 0.1, 0.5], [1.0, 0.0, 1.0, 0.0, 1.0]
    curve = ppe.best_of_k(rewards, correct)
    for k in range(1, 6):
        picks = []
        for subset in itertools.combinations(range(5), k):
            top = max(rewards[i] for i in subset)
            tied = [i for i in subset if rewards[i] == top]
            picks.append(sum(correct[i] for i in tied) / len(tied))
        assert curve[k - 1] == pytest.approx(sum(picks) / len(picks))
    assert ppe.oracle_of_k(correct)[1] == pytest.approx(1 - 1 / 10)


def test_ppe_human_preferences_leave_ties_out_and_categories_come_from_flags():
    rows = [{"prompt": "p", "response_1": "a", "response_2": "b", "winner": "model_a", "is_code": True},
            {"prompt": "p", "response_1": "a", "response_2": "b", "winner": "model_b", "is_code": False},
            {"prompt": "p", "response_1": "a", "response_2": "b", "winner": "tie"}]
    m = ppe.score(rows, [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert m["accuracy"] == 0.5 and m["human"]["human_ties"] == 1 and m["categories"] == {"is_code": 1.0}
    graded = [{"prompt": "p", "response_1": "a", "response_2": "b", "response_3": "c", "scores": [1, 0, 0],
               "sampled_conflict_pairs": [[0, 1], [2, 0]]}]
    c = ppe.score(graded, [[0.5, 0.2, 0.9]])["correctness"]
    assert c["accuracy"] == 0.5 and c["conflict_pairs"] == 2 and c["roc_auc"] == 0.5
    assert c["end"] == 0.0 and c["best_of_k"][0] == pytest.approx(1 / 3) and detect(graded) == "ppe"


def test_bootstrap_interval_reapplies_the_benchmarks_rule_on_whole_items():
    rows = [{"problem": str(k), "problem_id": k, "solution_reference": ref} for k in range(20)
            for ref in ("human_to_GPT-4", "x")]
    rewards = [[1.0] if (k % 4 and ref == "human_to_GPT-4") else [0.5] for k in range(20) for ref in ("human_to_GPT-4", "x")]
    lo, hi = interval(rewardmath, rows, rewards, samples=200)  # a problem's solutions are drawn together
    assert lo < 0.75 < hi and lo >= 0.4
    lo, hi = interval(rmb, [_rmb("Pairwise_set/Helpfulness/C/D", chosen={"answer": "a"}, reject={"answer": "b"})] * 40,
                      [[1.0, 0.0]] * 30 + [[0.0, 1.0]] * 10, samples=200)
    assert lo < 0.75 < hi
