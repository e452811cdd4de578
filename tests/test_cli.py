"""The CLI end to end on a tiny model: train, eval, score, and one-line errors."""

import json
import subprocess
import sys

from rewardlab.cli import main
from tests.conftest import PAIRS, write_jsonl


def test_train_eval_score_end_to_end(tiny_llama, pairs_file, tmp_path, capsys):
    out = str(tmp_path / "model")
    assert main(["train", "--model", tiny_llama, "--data", pairs_file, "--eval-data", pairs_file,
                 "--output", out, "--epochs", "3", "--batch-size", "4", "--lr", "1e-3"]) == 0
    assert "model saved to" in capsys.readouterr().out

    assert main(["eval", "--model", out, "--data", pairs_file, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 16 and metrics["accuracy"] == 1.0 and metrics["ties"] == 0
    assert metrics["mean_margin"] > 0

    rows = [{"id": "a", "prompt": PAIRS[0]["prompt"], "completion": PAIRS[0]["chosen"]},
            {"id": "b", "prompt": PAIRS[1]["prompt"], "completions": [PAIRS[1]["chosen"], PAIRS[1]["rejected"], " x"]},
            {"id": "c", **PAIRS[2], "extra": {"kept": True}}]
    scored_path = tmp_path / "scored.jsonl"
    assert main(["score", "--model", out, "--data", write_jsonl(tmp_path / "rows.jsonl", rows),
                 "--output", str(scored_path)]) == 0
    scored = [json.loads(line) for line in scored_path.read_text().splitlines()]
    assert [r["id"] for r in scored] == ["a", "b", "c"]
    assert isinstance(scored[0]["reward"], float) and len(scored[1]["rewards"]) == 3
    assert scored[2]["chosen_reward"] > scored[2]["rejected_reward"] and scored[2]["extra"] == {"kept": True}
    for key in rows[2]:
        assert scored[2][key] == rows[2][key]  # nothing the user wrote is changed


def test_eval_reports_subsets(tiny_bert, tmp_path, capsys):
    out = str(tmp_path / "m")
    data = write_jsonl(tmp_path / "s.jsonl", [dict(p, subset=s) for p, s in zip(PAIRS, "xxyy")])
    assert main(["train", "--model", tiny_bert, "--data", data, "--output", out, "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main(["eval", "--model", out, "--data", data, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics["subsets"]) == {"x", "y"} and metrics["subsets"]["x"]["n"] == 2


def test_bad_input_is_one_line_with_file_and_row(tiny_bert, tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [PAIRS[0], {"prompt": "p", "chosen": "a"}])
    code = main(["train", "--model", tiny_bert, "--data", bad, "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == f"rewardlab: error: {bad}: row 2: missing column 'rejected' (found: chosen, prompt) (--skip-bad-rows leaves such rows out)"
    assert main(["score", "--model", str(tmp_path / "nothing"), "--data", bad, "--output", "x.jsonl"]) == 2
    assert "not a reward model folder" in capsys.readouterr().err


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "rewardlab", "--help"], capture_output=True, text=True, check=True)
    assert "train" in out.stdout and "score" in out.stdout and "eval" in out.stdout
