"""Process-supervision rows: GSM8K with a synthetic wrong step, PRM800K, Math-Shepherd, CHAMP."""

import json
import re

import pytest

from rewardlab.cli import main
from rewardlab.data.steps import gsm8k_step_rows, read_champ, read_math_shepherd, read_prm800k


def prm_data_main(argv):
    return main(["prm-data", *argv])
from rewardlab.errors import DataError
from tests.conftest import shared_data, write_jsonl

NATALIA = {"question": "Natalia sold clips to 48 of her friends in April, and then half as many in May. "
                       "How many clips did she sell in April and May?",
           "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
                     "Natalia sold 48+24 = <<48+24=72>>72 clips altogether.\n#### 72"}
PLAIN = {"question": "What is two plus two?", "answer": "Two plus two is four.\n#### 4"}
BIG = {"question": "What is the profit?", "answer": "The profit is 450,000-2000=$<<450000-2000=448000>>448,000\n"
                                                    "#### 448000"}


def _annotation(step: str) -> tuple[str, str]:
    """(result inside the annotation, number right after it)."""
    m = re.search(r"<<[^<>]*=([^<>=]*)>>(-?[\d,.]+)", step)
    return m.group(1), m.group(2)


def test_corruption_of_one_annotated_step(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [NATALIA, PLAIN, BIG])
    rows, counts = gsm8k_step_rows(path, seed=0, corrupt_share=1.0)
    assert counts == {"rows": 3, "corrupted": 2, "all_correct": 1, "no_annotation": 1}
    assert (rows, counts) == gsm8k_step_rows(path, seed=0, corrupt_share=1.0)  # seeded: the same again

    nat = rows[0]
    assert nat["prompt"] == NATALIA["question"] + "\n" and nat["source"] == "g.jsonl:1"
    assert len(nat["steps"]) == 3 and nat["steps"][-1] == "The answer is 72."  # "#### 72" became a step
    e = nat["first_error"]
    assert e == 1  # what seed 0 draws: the first step stays correct
    original = NATALIA["answer"].split("\n")[e]
    inside, shown = _annotation(nat["steps"][e])
    assert inside == shown and inside != _annotation(original)[0]  # annotation and text changed together
    assert nat["steps"][e] != original and nat["steps"][:e] == NATALIA["answer"].split("\n")[:e]
    assert nat["labels"] == [i < e for i in range(3)]

    plain = rows[1]  # nothing to corrupt: all correct
    assert plain["steps"] == ["Two plus two is four.", "The answer is 4."]
    assert plain["labels"] == [True, True] and plain["first_error"] == -1

    inside, shown = _annotation(rows[2]["steps"][0])  # commas kept in the text, not in the annotation
    assert inside != "448000" and shown == f"{int(inside):,}"


def test_corrupt_share_zero_and_seeds(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [NATALIA] * 40)
    rows, counts = gsm8k_step_rows(path, corrupt_share=0.0)
    assert counts["corrupted"] == 0 and all(all(r["labels"]) for r in rows)
    by_seed = [[r["first_error"] for r in gsm8k_step_rows(path, seed=s)[0]] for s in (0, 1)]
    assert by_seed[0] != by_seed[1] and 0 < sum(e >= 0 for e in by_seed[0]) < 40


def test_real_train_rows_are_deterministic():
    path = str(shared_data("gsm8k", "train.jsonl"))
    rows, counts = gsm8k_step_rows(path, seed=0, limit=50)
    assert (rows, counts) == gsm8k_step_rows(path, seed=0, limit=50)
    assert counts["rows"] == 50 == counts["corrupted"] + counts["all_correct"]
    assert counts["corrupted"] == sum(r["first_error"] >= 0 for r in rows) and 10 < counts["corrupted"] < 40
    assert rows == gsm8k_step_rows(path, seed=0, limit=60)[0][:50]  # a limit takes a prefix of the run
    for r in rows:
        assert len(r["steps"]) == len(r["labels"]) and r["steps"][-1].startswith("The answer is ")
        e = r["first_error"]
        assert r["labels"] == [e < 0 or i < e for i in range(len(r["steps"]))]


def test_prm_data_main_end_to_end(tmp_path, capsys):
    src = write_jsonl(tmp_path / "g.jsonl", [NATALIA, PLAIN, NATALIA, NATALIA])
    out = tmp_path / "prm.jsonl"
    assert prm_data_main(["--input", src, "--output", str(out), "--corrupt-share", "1", "--limit", "3"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and [r["first_error"] >= 0 for r in rows] == [True, False, True]
    assert set(rows[0]) == {"prompt", "steps", "labels", "first_error", "source"}
    err = capsys.readouterr().err
    assert "3 rows" in err and "2 with a wrong step" in err and "1 all correct" in err

    bad = write_jsonl(tmp_path / "bad.jsonl", [NATALIA, {"question": "q", "answer": "no final line"}])
    assert prm_data_main(["--input", bad, "--output", str(tmp_path / "x.jsonl")]) == 2
    assert capsys.readouterr().err.strip() == f'rewardlab: error: {bad}: row 2: the answer does not end with a "#### N" line'
    assert prm_data_main(["--input", src, "--output", str(out), "--corrupt-share", "1.5"]) == 2
    assert "corrupt_share must be between 0 and 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # help must format (no bare percent sign in a help string)
        prm_data_main(["--help"])


def test_read_math_shepherd(tmp_path):
    row = {"input": "Janet has 3 eggs and buys 2. How many? Step 1: She buys 2 more, 3 + 2 = 5. ки\n"
                    "Step 2: The answer is: 6 ки",
           "label": "Janet has 3 eggs and buys 2. How many? Step 1: She buys 2 more, 3 + 2 = 5. +\n"
                    "Step 2: The answer is: 6 -",
           "task": "GSM8K"}
    (r,) = read_math_shepherd(write_jsonl(tmp_path / "ms.jsonl", [row]))
    assert r["prompt"] == "Janet has 3 eggs and buys 2. How many?\n"
    assert r["steps"] == ["She buys 2 more, 3 + 2 = 5.", "The answer is: 6"]
    assert r["labels"] == [True, False] and r["first_error"] == 1


def _step(*completions, chosen=0, human=None):
    return {"completions": [{"text": t, "rating": r, "flagged": None} for t, r in completions],
            "human_completion": human, "chosen_completion": chosen}


def test_read_prm800k(tmp_path):
    found_error = {"question": {"problem": "What is 2 + 3 * 4?", "ground_truth_answer": "14"},
                   "label": {"finish_reason": "found_error", "steps": [
                       _step(("I multiply first: 3 * 4 = 12.", 1)),
                       _step(("Let me think.", 0)),
                       _step(("Then 2 + 12 = 15.", -1), ("Then 2 + 12 = 14.", 1), chosen=None)]}}
    human = {"question": {"problem": "What is 1 + 1?"},
             "label": {"finish_reason": "solution", "steps": [
                 _step(("1 + 1 = 3.", -1), chosen=None, human={"text": "1 + 1 = 2.", "rating": None}),
                 _step(("# Answer\n\n2", 1))]}}
    bad_problem = {"question": {"problem": "?"}, "label": {"finish_reason": "bad_problem", "steps": []}}
    rows = read_prm800k(write_jsonl(tmp_path / "prm.jsonl", [found_error, human, bad_problem]))
    assert len(rows) == 2
    assert rows[0]["prompt"] == "What is 2 + 3 * 4?\n"
    assert rows[0]["steps"] == ["I multiply first: 3 * 4 = 12.", "Let me think.", "Then 2 + 12 = 15."]
    assert rows[0]["labels"] == [1, 0, -1] and rows[0]["first_error"] == 2
    assert rows[1]["steps"] == ["1 + 1 = 2.", "# Answer\n\n2"] and rows[1]["labels"] == [1, 1]
    assert rows[1]["first_error"] == -1


@pytest.mark.parametrize("reader, rows, message", [
    (gsm8k_step_rows, [NATALIA, {"question": "q"}], 'row 2: expected "question" and "answer" strings'),
    (read_math_shepherd, [{"input": "Q Step 1: a ки", "label": "Q Step 1: a ?"}],
     'row 1: "label" is not "input" with "+" or "-" in place of each "ки"'),
    (read_math_shepherd, [{"input": "Q a ки", "label": "Q a +"}], 'row 1: no "Step 1:" in "input"'),
    (read_prm800k, [{"question": {"problem": "p"}, "label": {"steps": [_step(("a", 5))]}}],
     'row 1: a completion must be {"text": str, "rating": -1, 0, 1 or null}'),
    (read_prm800k, [{"question": "p", "label": {"steps": []}}], 'row 1: expected "question": {"problem": str, ...}'),
])
def test_bad_rows_name_file_and_row(tmp_path, reader, rows, message):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as e:
        reader(path)
    assert str(e.value) == f"{path}: {message}" and "\n" not in str(e.value)


def test_read_champ():
    pytest.importorskip("champ_dataset")
    rows = read_champ()
    # 270 problems, two annotated model solutions each; every span falls inside its solution
    assert len(rows) == 540 and len({r["source"].split(":")[1] for r in rows}) == 270
    assert sum(r["label"] == -1 for r in rows) == 96
    for r in rows:
        assert set(r) == {"problem", "steps", "label", "source"} and r["problem"] and all(r["steps"])
        assert -1 <= r["label"] < len(r["steps"])


def test_read_champ_without_the_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "champ_dataset" else real(name, *a))
    with pytest.raises(DataError, match="pip install champ-dataset"):
        read_champ()
