"""Nothing silent (issue 32): every row given is used or counted with its reason, every option
checked in its real domain or refused when the model does not use it, hints that name the fix,
and a model that learned nothing flagged first."""

import json
import socket

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rewardlab
from rewardlab.cli import main
from rewardlab.config import ConfigError, TrainConfig
from rewardlab.eval.diagnostics import degenerate
from rewardlab.inference.score_file import score_file
from tests.conftest import PAIRS, kind_rows, serving, write_jsonl


def _err(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


# ---------------------------------------------------------------- every row counted

BAD_ROWS = [{"prompt": "p"}, {"chosen": 3, "rejected": "r"}, {"completion": None}, {"steps": "not a list"}, {}]


@pytest.mark.parametrize("name", ["preference", "orm", "prm", "value", "regression", "genrm", "judge", "implicit_prm"])
def test_every_row_given_is_used_or_counted_in_eval_and_score(kind_models, name, tmp_path):
    model, data = kind_models[name]
    rm = rewardlab.RewardModel.from_pretrained(model)
    good = [json.loads(x) for x in open(data)]

    @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.one_of(st.sampled_from(good), st.sampled_from(BAD_ROWS), st.just("{broken json")),
                    min_size=1, max_size=8).filter(lambda rows: any(isinstance(r, dict) and r in good for r in rows)))
    def check(rows):
        path = tmp_path / "rows.jsonl"
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
        m = rewardlab.evaluate(rm, str(path), skip_bad_rows=True, say=lambda msg: None).metrics
        assert m["rows_scored"] + m["skipped_rows"] == len(rows)
        out = tmp_path / "scored.jsonl"
        done = score_file(rm, str(path), str(out), skip_bad_rows=True, say=lambda msg: None)
        back = [json.loads(x) for x in out.read_text().splitlines()]
        assert len(back) == done["rows"] == len(rows) and done["invalid"] == sum("error" in r for r in back)
        assert all(("error" in r) != any(k.endswith("reward") or k == "rewards" for k in r) for r in back)
    check()


def test_the_server_answers_every_row_or_names_the_one_it_refuses(kind_models):
    model, data = kind_models["orm"]
    rows = [json.loads(x) for x in open(data)]
    with serving(rewardlab.create_app(model)) as url:
        answer = httpx.post(f"{url}/score", json={"rows": rows}, timeout=60).json()
        assert len(answer["rows"]) == len(rows) and all("reward" in r for r in answer["rows"])
        bad = httpx.post(f"{url}/score", json={"rows": rows[:2] + [{"prompt": "p"}]}, timeout=60)
        assert bad.status_code == 400 and "row 3" in bad.json()["error"]
        unknown = httpx.post(f"{url}/get_reward", json={"queries": ["a"]}, timeout=60)
        assert unknown.status_code == 400 and "unknown keys: queries" in unknown.json()["error"]


def test_a_judge_counts_the_pairs_too_long_and_keeps_empty_replies(kind_models, tmp_path, capsys):
    model, _ = kind_models["judge"]
    long_reply = " ".join(["word"] * 400)
    rows = [dict(p, prompt=p["prompt"] + f" ({i})") for i, p in enumerate(PAIRS)] + \
        [{"prompt": "Q?", "chosen": "A short answer.", "rejected": long_reply},
         {"prompt": "Q? (2)", "chosen": "Yes.", "rejected": ""}]
    data = write_jsonl(tmp_path / "judge.jsonl", rows)
    capsys.readouterr()
    assert main(["eval", "--model", model, "--data", data, "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["pairs"] + m["pairs_too_long"] == len(rows) and m["pairs_too_long"] == 1
    assert m["empty_completions"] == 1 and m["rows_scored"] == len(rows) and m["skipped_rows"] == 0
    out = tmp_path / "j"
    assert main(["train", "--model", model, "--kind", "judge", "--data", data, "--output", str(out), "--max-steps",
                 "1", "--save-every", "0"]) == 0
    err = capsys.readouterr().err
    assert "kept 1 empty completions" in err and "1 training examples skipped" in err


# ---------------------------------------------------------------- every option checked

def test_every_numeric_option_of_every_command_is_checked_where_it_is_parsed():
    """Every numeric field with a declared domain (``low``/``above``), of every command and every
    kind's options: a value outside it is one ConfigError naming the field."""
    from rewardlab.cli import COMMANDS
    from rewardlab.config import load_config
    from rewardlab.config.flags import _leaves

    checked = 0
    for cls, _ in COMMANDS.values():
        for name, leaf in _leaves(cls).items():
            low, above = leaf.field.metadata.get("low"), leaf.field.metadata.get("above")
            if leaf.type not in (int, float) or (low is None and above is None):
                continue
            bad = (low - 1) if low is not None else above
            with pytest.raises(ConfigError, match=name):
                load_config(cls, None, {name: leaf.type(bad)})
            checked += 1
    assert checked >= 60

def test_numeric_options_are_checked_in_their_domain_and_negative_numbers_read_as_values(capsys):
    for argv, message in ((["--max-steps", "0"], "max_steps must be a number of steps >= 1, or -1"),
                          (["--max-steps", "-5"], "max_steps must be a number of steps >= 1, or -1"),
                          (["--lr", "-1e-4"], "lr must be >= 0, got -0.0001"),
                          (["--lora-dropout", "1"], "lora_dropout must be in [0, 1)")):
        assert main(["train", "--data", "x.jsonl", "--output", "o", *argv]) == 2
        err = _err(capsys)
        assert len(err) == 1 and message in err[0], err
    with pytest.raises(ConfigError, match="max_steps must be"):
        TrainConfig.flat(max_steps=0)


def test_a_max_length_beyond_the_model_is_said_once(tiny_bert, tmp_path, capsys):
    data = write_jsonl(tmp_path / "p.jsonl", PAIRS * 2)
    out = str(tmp_path / "m")
    assert main(["train", "--model", tiny_bert, "--data", data, "--output", out, "--max-steps", "1",
                 "--max-length", "1000000", "--save-every", "0"]) == 0
    assert "note: --max-length 1000000 is more than the model's 128 positions: using 128" in capsys.readouterr().err
    assert main(["eval", "--model", out, "--data", data, "--max-length", "1000000"]) == 0
    assert "note: max_length 1000000 is more than the model's 128 positions: using 128" in capsys.readouterr().err


# ---------------------------------------------------------------- hints that name the fix

def test_hints_name_the_fix(tiny_llama, tmp_path, capsys):
    rows = [{"question": p["prompt"], "good": p["chosen"], "bad": p["rejected"]} for p in PAIRS]
    data = write_jsonl(tmp_path / "qgb.jsonl", rows)
    base = ["train", "--model", tiny_llama, "--data", data, "--output", str(tmp_path / "o")]
    assert main(base) == 2
    err = _err(capsys)
    assert len(err) == 1 and "missing column 'chosen'" in err[0] and \
        "--prompt-key question --chosen-key good --rejected-key bad" in err[0]
    assert main(base + ["--skip-bad-rows"]) == 2
    err = _err(capsys)[-1]
    assert "every row was left out as invalid" in err and "no example fits" not in err
    assert main(base + ["--prompt-key", "question", "--chosen-key", "good", "--rejected-key", "bad", "--max-steps",
                        "1", "--save-every", "0"]) == 0
    capsys.readouterr()
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("learning_rate: 1e-5\n")
    assert main(["train", str(yaml_file)]) == 2
    assert "unknown key 'learning_rate'; did you mean lr?" in _err(capsys)[0]
    with pytest.raises(SystemExit):
        main(["train", "--per-device-train-batch-size", "4"])
    assert "did you mean --batch-size?" in capsys.readouterr().err


# ---------------------------------------------------------------- a model that learned nothing

def test_degenerate_models_are_flagged_first(kind_models, tmp_path, capsys):
    import torch

    model, data = kind_models["preference"]
    rm = rewardlab.RewardModel.from_pretrained(model)
    with torch.no_grad():
        rm.model.score.weight.zero_()  # the same reward for every text
    flat = tmp_path / "flat"
    rm.save_pretrained(str(flat))
    capsys.readouterr()
    assert main(["eval", "--model", str(flat), "--data", data]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("warning: every reward is 0") and "same reward" in first
    result = rewardlab.evaluate(str(flat), data)
    assert result.metrics["warnings"][0].startswith("every reward is 0")
    assert degenerate([0.9, 0.8, 0.7], 0.7, 10, 0.7, "majority-class", threshold=0.5) == [
        "every score is above 0.5: the model predicts one class for every row",
        "accuracy 0.7000 is within one standard error (0.1449) of the majority-class baseline 0.7000 (n=10)"]
    assert degenerate([0.9, 0.1], 0.95, 400, 0.5, threshold=0.5) == []


# ---------------------------------------------------------------- smaller frictions

def test_serve_on_a_port_in_use_says_so_once(kind_models, capsys):
    model, _ = kind_models["preference"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--model", model, "--port", str(port)]) == 2
    captured = capsys.readouterr()
    assert "serving" not in captured.out and len(captured.err.strip().splitlines()) == 1
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in captured.err


def test_an_ensemble_of_models_reading_rows_differently_names_their_kinds(kind_models, tmp_path, capsys):
    assert main(["ensemble", "--model", kind_models["preference"][0], "--model", kind_models["prm"][0],
                 "--output", str(tmp_path / "e"), "--calibration-data", kind_models["prm"][1]]) == 2
    err = _err(capsys)[0]
    assert "(kind prm) reads steps ending at '\\n'" in err and "(kind preference) reads a solution as one text" in err


def test_an_eval_option_the_model_or_benchmark_does_not_use_is_refused(kind_models, capsys):
    model, data = kind_models["preference"]
    assert main(["eval", "--model", model, "--data", data, "--threshold", "0.5"]) == 2
    err = _err(capsys)
    assert err[-1].startswith("rewardlab: error: --threshold: a model of kind preference has no step threshold")
    model, data = kind_models["orm"]
    assert main(["eval", "--model", model, "--data", data, "--tie-threshold", "0.2"]) == 2
    assert _err(capsys)[-1].startswith("rewardlab: error: --tie-threshold: a model of kind orm on its own rows")
