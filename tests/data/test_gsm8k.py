"""GSM8K model solutions: final answers, groups and rows, and the published best-of-4 baselines."""

import gzip
import json

import pytest

from rewardlab.data.gsm8k import SOLVERS, final_answer, main, solution_groups, solution_rows, solution_step_rows
from rewardlab.eval.ranking import group_metrics, tiers_from_scores
from tests.conftest import shared_data


@pytest.mark.parametrize("solution, answer", [
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 1,234", "1234"),
    ("The total is 12.\n#### 72", "72"),  # after ####, not the last number before it
    ("She pays 5 * 1 = $<<5*1=5>>5 per day\nA: $5.00", "5"),
    ("Oliver must climb 6,000 - 3,000 = <<6000-3000=3000>>3,000 feet.\nA: 3,000", "3000"),
    ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nA: 9", "9"),
    ("He loses 2.5 pounds.\nA: -2.5", "-2.5"),
    ("It takes 2 + 1 = <<2+1=3>>3.0 bolts", "3"),  # no "A:" line: the last number
    ("The price is 2.50 dollars.", "2.5"),
    ("So he has 16-3", "3"),  # subtraction, not a negative number
    ("#### $ 1,200.00", "1200"),
    ("No numbers here.", None),
])
def test_final_answer(solution, answer):
    assert final_answer(solution) == answer


def _row(question: str, answers: list[str], correct: list[bool]) -> dict:
    row = {"question": question, "ground_truth": "A: 1"}
    for name, a, c in zip(SOLVERS, answers, correct):
        row[name] = {"solution": f"  So the answer is {a}.\nA: {a}\n", "is_correct": c}
    return row


def _write_gz(path, rows) -> str:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return str(path)


def test_solution_groups_and_rows(tmp_path):
    path = _write_gz(tmp_path / "s.jsonl.gz",
                     [_row("What is 1 + 0?", ["1", "2", "1,000", "1"], [True, False, False, True]),
                      _row("What is 2 + 2?", ["4", "4", "5", "$4.00"], [True, True, False, True])])
    groups = solution_groups(path)
    assert [g["question_id"] for g in groups] == [0, 1]
    assert groups[0]["prompt"] == "Question: What is 1 + 0?\nAnswer:"
    assert groups[0]["completions"][0] == " So the answer is 1.\nA: 1"  # " " + solution.strip()
    assert groups[0]["scores"] == [1.0, 0.0, 0.0, 1.0]
    assert groups[0]["answers"] == ["1", "2", "1000", "1"] and groups[1]["answers"] == ["4", "4", "5", "4"]
    rows = solution_rows(path)
    assert len(rows) == 8 and [r["label"] for r in rows[:4]] == [1, 0, 0, 1]
    assert rows[5] == {"prompt": groups[1]["prompt"], "completion": groups[1]["completions"][1], "label": 1,
                       "answer": "4", "question_id": 1}
    steps = solution_step_rows(path)  # for a process reward model: lines as steps, the outcome as 'correct'
    assert steps[5]["steps"] == ["So the answer is 4.", "A: 4"] and steps[5]["correct"] is True


def test_malformed_row_names_file_and_line(tmp_path):
    bad = _row("q", ["1"] * 4, [True] * 4)
    bad["175b_verification"] = {"solution": "A: 1"}  # no is_correct
    path = _write_gz(tmp_path / "bad.jsonl.gz", [_row("q", ["1"] * 4, [True] * 4), bad])
    with pytest.raises(ValueError, match=r"bad\.jsonl\.gz: line 2: \"175b_verification\""):
        solution_groups(path)
    (tmp_path / "broken.jsonl").write_text('{"question": "q"\n')
    with pytest.raises(ValueError, match=r"broken\.jsonl: line 1:"):
        solution_groups(str(tmp_path / "broken.jsonl"))


def test_main_writes_a_slice(tmp_path, capsys):
    path = _write_gz(tmp_path / "s.jsonl.gz", [_row(f"Q{i}?", ["1"] * 4, [True, False, True, False]) for i in range(5)])
    out = tmp_path / "out.jsonl"
    main(["--input", path, "--output", str(out), "--start", "1", "--stop", "3"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["question_id"] for r in rows] == [1, 2] and "wrote 2 rows" in capsys.readouterr().out
    main(["--input", path, "--output", str(out), "--per-solution", "--start", "3"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["question_id"] for r in rows] == [3] * 4 + [4] * 4 and [r["label"] for r in rows[:4]] == [1, 0, 1, 0]


def _baselines(groups, answers) -> dict:
    """group_metrics with every reward zero: only the selection baselines matter."""
    return group_metrics([[0.0] * len(g["scores"]) for g in groups], [tiers_from_scores(g["scores"]) for g in groups],
                         [g["scores"] for g in groups], answers)


def _as_written(completion: str) -> str | None:
    """The final answer exactly as the model wrote it on its "A: ..." line (no normalisation)."""
    last = completion.strip().rsplit("\n", 1)[-1]
    return last[3:].strip() if last.startswith("A: ") else None


def test_published_baselines_on_real_file():
    groups = solution_groups(str(shared_data("gsm8k", "model_solutions.jsonl.gz")))
    assert len(groups) == 1000
    m = _baselines(groups, [g["answers"] for g in groups])
    assert round(m["random_baseline"], 3) == 0.385 and round(m["oracle"], 3) == 0.685
    # The published 0.443 is the first-appearance rule on the answers as written; final_answer's
    # normalisation merges "3,000" and "3000" on question 419, which makes one more vote right.
    raw = _baselines(groups, [[_as_written(c) for c in g["completions"]] for g in groups])
    assert round(raw["majority_vote"], 3) == 0.443
    assert round(m["majority_vote"], 3) == 0.444
    assert groups[419]["answers"] == ["0.3", "3", "3000", "3000"] and groups[419]["scores"][2:] == [1.0, 1.0]
    last = _baselines(groups[800:], [g["answers"] for g in groups[800:]])
    assert last["n_prompts"] == 200
    assert all(0 <= last[k] <= 1 for k in ("random_baseline", "majority_vote", "oracle"))
