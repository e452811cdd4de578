"""The CLI end to end on a tiny model: train, eval, score, and one-line errors."""

import json
import subprocess
import sys

import pytest

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


def test_score_keeps_every_row_and_names_the_way_past_bad_ones(tiny_bert, tmp_path, capsys):
    out = str(tmp_path / "m")
    assert main(["train", "--model", tiny_bert, "--data", write_jsonl(tmp_path / "p.jsonl", PAIRS), "--output", out,
                 "--max-steps", "1"]) == 0
    rows = [{"prompt": "p", "completion": ""}, {"prompt": "p"}, {"prompt": "p", "completions": [" a", " b"]}]
    data, scored = write_jsonl(tmp_path / "rows.jsonl", rows), tmp_path / "s.jsonl"
    capsys.readouterr()
    assert main(["score", "--model", out, "--data", data, "--output", str(scored)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "rows.jsonl: row 2: expected 'prompt' + 'completion', 'prompt' + 'completions' (a list), 'prompt' + "
        "'steps', or 'chosen' + 'rejected'; found columns: prompt (--skip-bad-rows writes such rows back with an 'error' field)")
    assert main(["score", "--model", out, "--data", data, "--output", str(scored), "--skip-bad-rows"]) == 0
    back = [json.loads(x) for x in scored.read_text().splitlines()]
    assert isinstance(back[0]["reward"], float) and len(back[2]["rewards"]) == 2  # the empty reply is scored
    assert back[1]["prompt"] == "p" and back[1]["error"].startswith("row 2: expected 'prompt' + 'completion'")
    err = capsys.readouterr().err
    assert "1 invalid rows written back" in err and "1 empty completions scored" in err


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "rewardlab", "--help"], capture_output=True, text=True, check=True)
    assert "train" in out.stdout and "score" in out.stdout and "eval" in out.stdout


def test_column_mapping_for_train_eval_and_score(tiny_bert, tmp_path, capsys):
    rows = [{"question": p["prompt"], "good": p["chosen"], "bad": p["rejected"]} for p in PAIRS]
    data, out = write_jsonl(tmp_path / "theirs.jsonl", rows), str(tmp_path / "m")
    keys = ["--prompt-key", "question", "--chosen-key", "good", "--rejected-key", "bad"]
    assert main(["train", "--model", tiny_bert, "--data", data, "--output", out, "--max-steps", "1", *keys]) == 0
    capsys.readouterr()
    assert main(["eval", "--model", out, "--data", data, "--json", *keys]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 4
    scored = tmp_path / "s.jsonl"
    assert main(["score", "--model", out, "--data", data, "--output", str(scored), *keys]) == 0
    back = [json.loads(x) for x in scored.read_text().splitlines()]
    assert back[0]["question"] == rows[0]["question"] and "chosen_reward" in back[0]  # their columns kept
    assert main(["eval", "--model", out, "--data", data]) == 2  # without the mapping: one line naming the column
    assert "missing column 'chosen'" in capsys.readouterr().err


def test_eval_split_holds_out_training_rows(tiny_bert, tmp_path, capsys):
    data = write_jsonl(tmp_path / "p.jsonl", PAIRS * 5)
    assert main(["train", "--model", tiny_bert, "--data", data, "--output", str(tmp_path / "m"), "--eval-split",
                 "0.2", "--max-steps", "1"]) == 0
    err = capsys.readouterr().err
    assert "--eval-split 0.2: 4 of 20 rows held out" in err and "16 examples" in err
    assert json.loads((tmp_path / "m" / "train_results.json").read_text())["eval"]["n"] == 4


def test_save_total_limit_and_resume_from_a_folder(tiny_bert, tmp_path, capsys):
    data, out = write_jsonl(tmp_path / "p.jsonl", PAIRS * 2), tmp_path / "m"
    args = ["train", "--model", tiny_bert, "--data", data, "--batch-size", "1", "--lr", "1e-3"]
    assert main([*args, "--output", str(out), "--save-every", "2", "--save-total-limit", "3"]) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-2", "step-4", "step-6"]
    # Resume a new run from the step-4 checkpoint of the first: it ends on the same weights.
    again = tmp_path / "again"
    assert main([*args, "--output", str(again), "--save-every", "2", "--resume",
                 str(out / "checkpoints" / "step-4")]) == 0
    assert "resuming from" in capsys.readouterr().err
    from safetensors.torch import load_file

    a, b = load_file(str(out / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    assert main([*args, "--output", str(tmp_path / "x"), "--resume", str(tmp_path)]) == 2
    assert "not a checkpoint folder" in capsys.readouterr().err


def test_first_line_names_the_run_and_the_recommended_lr(tiny_bert, pairs_file, tmp_path, capsys):
    assert main(["train", "--model", tiny_bert, "--data", pairs_file, "--output", str(tmp_path / "m"),
                 "--max-steps", "1", "--batch-size", "2", "--grad-accum", "2"]) == 0
    first = [line for line in capsys.readouterr().err.splitlines() if "kind preference" in line][0]
    assert "kind preference, loss bt" in first and "steps of 4 (batch 2 x accumulation 2 x 1 process)" in first
    assert "lr 2e-05" in first and "max_length=128" in first


def test_chat_template_choice_travels_with_the_model(tiny_llama, pairs_file, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", "--model", tiny_llama, "--data", pairs_file, "--eval-data", pairs_file, "--output", str(out),
                 "--apply-chat-template", "--max-steps", "2", "--lr", "1e-3"]) == 0
    assert json.loads((out / "config.json").read_text())["rewardlab"]["apply_chat_template"] is True
    trained = json.loads((out / "train_results.json").read_text())["eval"]
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--data", pairs_file, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert abs(again["mean_margin"] - trained["mean_margin"]) < 1e-5  # eval encodes as training did


def test_several_models_side_by_side_with_bootstrap_intervals(tiny_bert, tmp_path, capsys):
    data = write_jsonl(tmp_path / "p.jsonl", PAIRS * 4)
    for name, steps in (("a", "1"), ("b", "4")):
        assert main(["train", "--model", tiny_bert, "--data", data, "--output", str(tmp_path / name), "--max-steps",
                     steps, "--lr", "1e-3", "--batch-size", "2"]) == 0
    capsys.readouterr()
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert main(["eval", "--model", a, "--model", b, "--data", data, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["models"]) == [a, b] and out["models"][a]["n"] == 16
    (c,) = out["comparisons"]
    assert c["difference"] == pytest.approx(out["models"][a]["accuracy"] - out["models"][b]["accuracy"])
    assert c["low"] <= c["difference"] <= c["high"] and c["level"] == 0.95
