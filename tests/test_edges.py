"""Issue-by-issue edges a new user hit: each finding, the command that showed it, and what it
says now (one line, or the right number)."""

import json

import pytest

from rewardlab.cli import main
from tests.conftest import PAIRS, write_jsonl


def test_a_typo_of_a_bundled_model_says_did_you_mean(tmp_path, capsys):
    data = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    assert main(["train", "--model", "minlm", "--data", data, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rewardlab: error: minlm: no such folder or bundled model") and "did you mean minilm?" in err
    assert main(["train", "--model", "./runs/missing", "--data", data, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "./runs/missing: no such folder or bundled model" in err and "Repo id" not in err and "\n" not in err


def test_score_applies_the_ranking_checks_train_applies():
    from rewardlab.errors import DataError
    from rewardlab.inference.rows import build_groups

    row = {"prompt": "q", "completions": ["a", "b"], "ranking": [0, 5]}
    with pytest.raises(DataError, match="'ranking' index 5 is out of range for 2 completions"):
        build_groups([row], None, "f.jsonl")
    groups, fields = build_groups([row, {"prompt": "q", "completions": ["a", "b"]}], None, "f.jsonl", skip_bad=True)
    assert groups[0] == [] and fields[0].startswith("error: ") and len(groups[1]) == 2


def test_tie_accuracy_is_measured_against_the_models_own_reward_scale():
    """A fixed 0.5-unit threshold called every pair of a model whose rewards spread 0.12 tied
    (tie accuracy 1.0); the threshold is now in standard deviations of the rewards."""
    from rewardlab.data.preference import Example
    from rewardlab.eval.preference import example_metrics

    examples = [Example("q", ["a", "b", "c"], [0, 0, 1]) for _ in range(4)]
    rewards = [[0.10, 0.02, 0.00], [0.11, 0.10, 0.00], [0.05, 0.12, 0.01], [0.12, 0.115, 0.02]]
    m = example_metrics(examples, rewards)
    assert m["tie_threshold_std"] == 0.1 and m["tie_threshold"] < 0.01
    assert m["n_tied_pairs"] == 4 and m["tie_accuracy"] == 0.25  # only |0.12 - 0.115| is within 0.1 std


def test_help_shows_a_newline_default_escaped(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "(default: '\\n')" in capsys.readouterr().out


def test_report_is_refused_before_scoring_without_matplotlib(monkeypatch, tmp_path, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["eval", "--model", str(tmp_path / "none"), "--data", "d.jsonl", "--report", "r.html"]) == 2
    assert "--report draws with matplotlib: pip install 'rewardlab[report]'" in capsys.readouterr().err


def test_the_report_lists_mistakes_only():
    from rewardlab.data.preference import Example
    from rewardlab.eval.preference import example_metrics
    from rewardlab.eval.report import _pair_sections

    examples = [Example(p["prompt"], [p["chosen"], p["rejected"]], [0, 1]) for p in PAIRS]
    right = [[1.0, 0.0]] * 4
    html = "".join(_pair_sections(example_metrics(examples, right), examples, right))
    assert "None: the chosen reply scored above the rejected one in all 4 pairs." in html
    wrong = [[1.0, 0.0], [0.0, 2.0], [1.0, 0.5], [0.2, 0.1]]
    html = "".join(_pair_sections(example_metrics(examples, wrong), examples, wrong))
    table = html.split("Worst mistakes")[1]
    assert table.count("<tr>") == 2 and "-2.000" in table  # a header and the one mistake


def test_prm_data_separates_the_question_from_the_first_step(tmp_path):
    data = write_jsonl(tmp_path / "g.jsonl", [{"question": "How many in May?", "answer": "Natalia sold 48.\n#### 48"}])
    assert main(["prm-data", "--input", data, "--output", str(tmp_path / "s.jsonl"), "--corrupt-share", "0"]) == 0
    row = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[0])
    assert (row["prompt"] + row["steps"][0]).startswith("How many in May?\nNatalia sold 48.")


def test_a_lone_surrogate_is_a_bad_row_not_a_tokenizer_traceback(tmp_path):
    """Found by the fuzz suite: JSON's "\\ud800" escape reached the tokenizer, which raised a
    TypeError (a 500 from the server)."""
    from rewardlab.data import load_examples
    from rewardlab.errors import DataError

    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(PAIRS[0]) + "\n" + json.dumps({"prompt": "q", "chosen": "a\ud800", "rejected": "b"}) + "\n")
    with pytest.raises(DataError, match=r"s\.jsonl: row 2: chosen completion holds a lone surrogate \(\\ud800"):
        load_examples(str(path), None)
    assert len(load_examples(str(path), None, skip_bad=True)) == 1
