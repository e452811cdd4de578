"""Benchmark scoring rules on hand-made cases, and the RM-Bench layout end to end."""

import importlib.util
import json
import math

import pytest

from rewardlab.eval.benchmarks import detect, judgebench, rewardbench, rewardbench2, rmbench


def test_rewardbench_sections_weight_subsets_by_their_benchmark_counts():
    rows, rewards = [], []
    for subset, outcomes in {"alpacaeval-easy": [1, 1], "mt-bench-easy": [1, 0], "llmbar-natural": [0],
                             "math-prm": [1], "hep-go": [0]}.items():
        for right in outcomes:
            rows.append({"subset": subset})
            rewards.append([1.0, 0.0] if right else [0.0, 0.0])  # a reward tie counts wrong
    m = rewardbench.score(rows, rewards)
    assert m["subsets"]["mt-bench-easy"] == 0.5
    # Chat: (100 x 1.0 + 28 x 0.5) / 128; Chat Hard: 0; Safety: absent, 0; Reasoning: 984 / (984 + 164).
    assert m["sections"] == pytest.approx({"Chat": 114 / 128, "Chat Hard": 0.0, "Safety": 0.0, "Reasoning": 984 / 1148})
    assert m["overall"] == pytest.approx((114 / 128 + 984 / 1148) / 4) and m["n"] == 7


def test_rewardbench2_best_of_n_shares_ties_at_the_top():
    assert rewardbench2.row_score([3, 1, 2, 0]) == 1.0
    assert rewardbench2.row_score([3, 3, 1, 0]) == 0.5
    assert rewardbench2.row_score([1, 3, 2, 0]) == 0.0


def test_rewardbench2_ties_rule_by_hand():
    rows = [{"id": "ref:P", "chosen": ["a"], "rejected": ["b", "c"], "num_correct": 1, "subset": "Ties"},
            {"id": "tied:P", "chosen": ["x", "y"], "rejected": ["z"], "num_correct": 2, "subset": "Ties"},
            {"id": "ref:Q", "chosen": ["a"], "rejected": ["b"], "num_correct": 1, "subset": "Ties"},
            {"id": "tied:Q", "chosen": ["x", "y"], "rejected": ["z"], "num_correct": 2, "subset": "Ties"}]
    rewards = [[2.0, 0.5, 1.0], [3.0, 2.5, 1.0], [1.0, 2.0], [2.0, 1.0, 1.5]]
    # P: gap_ref 1.0, gap_tied 1.5, spread_tied 0.5 -> accurate both, pref 1, pref_hard 1, tb tanh(1.0/0.5 - 1).
    # Q: gap_ref -1.0, gap_tied -0.5, spread_tied 1.0 -> wrong both, pref 0, pref_hard 0, tb tanh(-1.0/1.0 - 1).
    tb = (math.tanh(1.0) + math.tanh(-2.0)) / 2
    expected = 0.30 * 0.5 + 0.30 * 0.5 + 0.20 * 0.5 + 0.20 * 0.5 + 0.01 * tb
    assert rewardbench2.ties_score(rows, rewards) == pytest.approx(expected)
    other = [{"subset": "Math", "chosen": ["a"], "rejected": ["b"]}]
    m = rewardbench2.score(rows + other, rewards + [[1.0, 0.0]])
    assert m["subsets"] == pytest.approx({"Math": 1.0, "Ties": expected}) and m["overall"] == pytest.approx((1 + expected) / 2)


def test_rm_bench_matrix_and_triangles():
    rows = [{"domain": "chat"}, {"domain": "chat"}, {"domain": "safety-refuse"}]
    rewards = [[3, 2, 1, 2.5, 1.5, 0.5], [0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 0]]
    m = rmbench.score(rows, rewards)
    # chat: row 1 gives [[1,1,1],[0,1,1],[0,0,1]], row 2 all 0 -> halves; safety: all 1.
    assert m["domains"]["chat"]["matrix"] == [[0.5, 0.5, 0.5], [0, 0.5, 0.5], [0, 0, 0.5]]
    chat = m["domains"]["chat"]
    assert (chat["hard"], chat["normal"], chat["easy"]) == (0.5, 0.5, 0.0)
    assert set(m["domains"]) == {"chat", "safety"}  # safety-refuse and safety-response are one domain
    assert m["hard"] == pytest.approx((0.5 + 1) / 2) and m["easy"] == pytest.approx((0 + 1) / 2)
    assert m["overall"] == pytest.approx((1 / 3 + 1) / 2)
    assert rmbench.domain_of({}, "data/code_filtered.json") == "code"


def test_formats_are_detected_from_columns():
    assert detect([{"prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"]}]) == "rm-bench"
    assert detect([{"prompt": "p", "chosen": ["a"], "rejected": ["b", "c", "d"], "num_correct": 1}]) == "rewardbench2"
    assert detect([{"prompt": "p", "chosen": "a", "rejected": "b", "subset": "donotanswer"}]) == "rewardbench"
    assert detect([{"prompt": "p", "chosen": "a", "rejected": "b"}]) is None
    assert detect([{"question": "q", "response_A": "a", "response_B": "b", "label": "A>B", "source": "x"}]) == "judgebench"


def test_rm_bench_file_end_to_end_equals_the_matrix_of_score_output(tiny_bert, tmp_path, capsys):
    from rewardlab.cli import main
    from tests.conftest import PAIRS, write_jsonl

    model = str(tmp_path / "m")
    assert main(["train", "--model", tiny_bert, "--data", write_jsonl(tmp_path / "p.jsonl", PAIRS), "--output", model,
                 "--max-steps", "1"]) == 0
    rows = [{"id": i, "prompt": p["prompt"], "chosen": [p["chosen"], p["chosen"] + " More detail.", "**" + p["chosen"] + "**"],
             "rejected": [p["rejected"], p["rejected"] + " More detail.", "- " + p["rejected"]], "subset": "chat"}
            for i, p in enumerate(PAIRS)]
    data = tmp_path / "chat_filtered.json"
    data.write_text(json.dumps(rows))
    scored = tmp_path / "s.jsonl"
    assert main(["score", "--model", model, "--data", str(data), "--output", str(scored)]) == 0
    back = [json.loads(x) for x in scored.read_text().splitlines()]
    by_hand = [[sum(r["chosen_rewards"][i] > r["rejected_rewards"][j] for r in back) / len(back) for j in range(3)]
               for i in range(3)]
    capsys.readouterr()
    assert main(["eval", "--model", model, "--data", str(data), "--json"]) == 0
    out = capsys.readouterr()
    m = json.loads(out.out)
    assert "format: rm-bench (detected" in out.err and list(m["domains"]) == ["chat"]
    assert m["domains"]["chat"]["matrix"] == by_hand
    assert m["hard"] == pytest.approx((by_hand[0][1] + by_hand[0][2] + by_hand[1][2]) / 3)
    assert m["easy"] == pytest.approx((by_hand[1][0] + by_hand[2][0] + by_hand[2][1]) / 3)
    assert m["normal"] == pytest.approx(sum(by_hand[i][i] for i in range(3)) / 3)
    if importlib.util.find_spec("matplotlib"):  # --report: the numbers and the matrix, not silently ignored
        report = tmp_path / "rmbench.html"
        assert main(["eval", "--model", model, "--data", str(data), "--report", str(report)]) == 0
        page = report.read_text()
        assert "rm-bench report" in page and page.count("<img") == 2 and f"{m['hard']:.4f}" in page


def test_interrupted_evaluation_resumes_from_the_scores_cache(tiny_bert, tmp_path, capsys, monkeypatch):
    from rewardlab.cli import main
    from rewardlab.eval import cache as cache_module
    from tests.conftest import PAIRS, write_jsonl

    rows = [dict(p, prompt=p["prompt"] + f" ({i})") for i, p in enumerate(PAIRS * 150)]  # 600 distinct rows
    data, model = write_jsonl(tmp_path / "p.jsonl", rows), str(tmp_path / "m")  # chunks sized by time, at most 256
    assert main(["train", "--model", tiny_bert, "--data", data, "--output", model, "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main(["eval", "--model", model, "--data", data, "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    cache = tmp_path / "scores.jsonl"
    real = cache_module.ScoresCache.put
    calls = []

    def put_then_stop(self, entries):
        real(self, entries)
        calls.append(len(entries))
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C after two chunks were written

    monkeypatch.setattr(cache_module.ScoresCache, "put", put_then_stop)
    assert main(["eval", "--model", model, "--data", data, "--json", "--scores-cache", str(cache)]) == 130
    monkeypatch.setattr(cache_module.ScoresCache, "put", real)
    with open(cache, "a") as f:
        f.write('{"key": "cut in the mid')  # a kill in mid-write
    capsys.readouterr()
    assert main(["eval", "--model", model, "--data", data, "--json", "--scores-cache", str(cache)]) == 0
    out = capsys.readouterr()
    assert f"{sum(calls)} of 600 rows taken from" in out.err and len(calls) == 2  # exactly the two written chunks
    resumed = json.loads(out.out)
    assert resumed["accuracy"] == full["accuracy"] and resumed["mean_margin"] == pytest.approx(full["mean_margin"])


def test_a_subset_outside_the_benchmark_is_an_error_or_scored_apart(tiny_bert, tmp_path, capsys):
    """A misspelled subset once left its section silently (Chat 0.28 -> 0.50 while the output
    still counted every pair): now it stops before scoring, naming it and the known subsets, or
    with --outside-categories is scored apart, said on the first line and outside the overall."""
    from rewardlab.cli import main
    from tests.conftest import PAIRS, write_jsonl

    model = str(tmp_path / "m")
    assert main(["train", "--model", tiny_bert, "--data", write_jsonl(tmp_path / "p.jsonl", PAIRS), "--output", model,
                 "--max-steps", "1"]) == 0
    rows = [dict(p, subset=s) for p in PAIRS for s in ("alpacaeval-easy", "donotanswer")]
    rows.append(dict(PAIRS[0], subset="alpaca-easy"))
    data = write_jsonl(tmp_path / "rb.jsonl", rows)
    capsys.readouterr()
    assert main(["eval", "--model", model, "--data", data, "--format", "rewardbench"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rewardlab: error: {data}: row 9: subset 'alpaca-easy' is not one of the benchmark's (")
    assert "alpacaeval-easy" in err and "--outside-categories" in err and len(err.splitlines()) == 1
    assert main(["eval", "--model", model, "--data", data, "--format", "rewardbench", "--json"]) == 2
    capsys.readouterr()
    assert main(["eval", "--model", model, "--data", write_jsonl(tmp_path / "in.jsonl", rows[:-1]),
                 "--format", "rewardbench", "--json"]) == 0
    inside = json.loads(capsys.readouterr().out)
    assert main(["eval", "--model", model, "--data", data, "--format", "rewardbench", "--outside-categories"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "(8 pairs)" in first and "+ 1 rows in subsets outside the benchmark" in first
    assert main(["eval", "--model", model, "--data", data, "--format", "rewardbench", "--outside-categories",
                 "--json"]) == 0
    apart = json.loads(capsys.readouterr().out)
    assert apart["overall"] == inside["overall"] and apart["sections"] == inside["sections"]
    assert list(apart["outside"]) == ["alpaca-easy"] and apart["outside_rows"] == 1 and apart["n"] == 8


def test_rm_bench_domains_come_from_the_rows_or_a_known_file_name():
    assert rmbench.category_of({"domain": "chat"}) == "chat"
    assert rmbench.category_of({"domain": "chatt"}) == "chatt"  # checked: not a benchmark domain
    assert rmbench.category_of({}, "data/code_filtered.json") == "code"
    assert rmbench.category_of({}, "data/rm_bench.json") is None  # one domain, named by the file: not checked


def test_judgebench_net_vote_over_both_orders_and_categories_by_source_prefix():
    # the benchmark's rule: +1 per decision matching the label, -1 per decision against it
    assert judgebench.pair_correct("A>B", "A>B", "A>B") and judgebench.pair_correct("A>B", "A>B", "A=B")
    assert not judgebench.pair_correct("A>B", "A>B", "B>A")  # inconsistent: net 0
    assert not judgebench.pair_correct("B>A", "A=B", "A=B")
    rows = [{"label": "A>B", "source": "mmlu-pro-law"}, {"label": "B>A", "source": "livebench-math"},
            {"label": "B>A", "source": "livecodebench-v3"}, {"label": "A>B", "source": "livebench-reasoning"}]
    rewards = [[1.0, 0.0], [0.5, 0.9], [0.3, 0.3], [0.0, 2.0]]  # right, right, a tie (wrong), wrong
    m = judgebench.score(rows, rewards)
    assert m["overall"] == 0.5 and m["n"] == 4 and m["ties"] == 1
    assert m["categories"] == {"coding": 0.0, "knowledge": 1.0, "math": 1.0, "reasoning": 0.0}


def test_judgebench_file_evaluates_any_kind_with_a_reward(tiny_llama, tmp_path, capsys):
    """A preference model and a generative verifier both score JudgeBench rows by the same rule."""
    from rewardlab.cli import main
    from tests.conftest import PAIRS, write_jsonl
    from tests.test_cli_kinds import _rows

    rows = [{"pair_id": str(i), "question": p["prompt"], "response_A": a, "response_B": b, "label": label,
             "source": source} for i, (p, source) in enumerate(zip(PAIRS, ["mmlu-pro-x", "livebench-math", "livecodebench"]))
            for a, b, label in [(p["chosen"], p["rejected"], "A>B")]]
    data = write_jsonl(tmp_path / "jb.jsonl", rows)
    bt, verifier = str(tmp_path / "bt"), str(tmp_path / "genrm")
    assert main(["train", "--model", tiny_llama, "--data", write_jsonl(tmp_path / "p.jsonl", PAIRS), "--output", bt,
                 "--max-steps", "1"]) == 0
    assert main(["train", "--model", tiny_llama, "--kind", "genrm", "--data",
                 write_jsonl(tmp_path / "o.jsonl", _rows("orm")), "--output", verifier, "--max-steps", "1"]) == 0
    for model in (bt, verifier):
        capsys.readouterr()
        assert main(["eval", "--model", model, "--data", data, "--json"]) == 0
        out = capsys.readouterr()
        m = json.loads(out.out)
        assert "format: judgebench (detected" in out.err and m["n"] == len(rows)
        scored = tmp_path / "s.jsonl"
        plain = write_jsonl(tmp_path / "plain.jsonl", [{"prompt": r["question"] + "\n", "completions": [r["response_A"],
                                                        r["response_B"]]} for r in rows])
        assert main(["score", "--model", model, "--data", plain, "--output", str(scored)]) == 0
        back = [json.loads(x)["rewards"] for x in scored.read_text().splitlines()]
        assert m["overall"] == pytest.approx(sum(a > b for a, b in back) / len(back))
