import argparse
import dataclasses

import pytest

from rewardlab.cli import build_parser
from rewardlab.config import ConfigError, TrainConfig, _leaves, load_config


def test_yaml_then_flags_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: smollm2\nlr: 2e-5\nbatch_size: 4\n")
    args = build_parser().parse_args(["train", str(path), "--batch-size", "16"])
    cfg = load_config(TrainConfig, args.config, args)
    assert (cfg.backbone.model, cfg.optim.lr, cfg.optim.batch_size, cfg.optim.epochs) == ("smollm2", 2e-5, 16, 1)


def test_unknown_yaml_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'learning_rate'"):
        load_config(TrainConfig, str(path))


def test_wrong_yaml_type_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("batch_size: eight\n")
    with pytest.raises(ConfigError, match=r"key 'batch_size': expected int"):
        load_config(TrainConfig, str(path))


def test_unknown_flag_is_rejected(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--learning-rate", "1"])
    assert "unrecognized arguments: --learning-rate" in capsys.readouterr().err


def test_help_documents_every_field(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    fields = [leaf.field for leaf in _leaves(TrainConfig).values()]  # each kind's options included
    assert len(fields) > 40
    assert "kind prm:" in text and "kind value:" in text  # grouped under their kind
    for f in fields:
        assert "--" + f.name.replace("_", "-") in text
        assert " ".join(f.metadata["help"].split())[:40] in text


def test_bool_flags():
    args = build_parser().parse_args(["train", "--resume", "--no-disable-dropout"])
    cfg = load_config(TrainConfig, None, args)
    assert cfg.run.resume == "latest" and cfg.backbone.disable_dropout is False
    assert isinstance(args, argparse.Namespace)


def test_yaml_may_be_grouped_and_resume_true_means_latest(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1e-5\n  batch_size: 4\nloss: plackett_luce\nresume: true\n")
    cfg = load_config(TrainConfig, str(path))
    assert (cfg.optim.lr, cfg.optim.batch_size, cfg.objective.of("preference").loss, cfg.run.resume) == (1e-5, 4, "plackett_luce", "latest")
    path.write_text("optim:\n  loss: bt\n")
    with pytest.raises(ConfigError, match="unknown key 'optim.loss'"):
        load_config(TrainConfig, str(path))
    with pytest.raises(ConfigError, match="loss must be one of bt, scaled_bt, plackett_luce, davidson"):
        TrainConfig.flat(loss="hinge")


def test_resume_fields_are_marked_on_the_fields():
    from rewardlab.config import resume_values

    marked = resume_values(TrainConfig())
    assert {"lr", "batch_size", "loss", "balance", "max_length", "seed", "model", "data"} <= set(marked)
    assert not {"output", "eval_every", "log_every", "resume"} & set(marked)


def test_yaml_bool_only_where_a_flag_takes_no_value(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("report_to: true\n")
    with pytest.raises(ConfigError, match="key 'report_to': expected str, got True"):
        load_config(TrainConfig, str(path))
    with pytest.raises(ConfigError, match="--eval-split needs the whole data set"):
        TrainConfig.flat(eval_split=0.1, streaming=True)


def test_resume_followed_by_the_config_file(tmp_path):
    from rewardlab.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(f"output: {tmp_path / 'nothing'}\ndata: x.jsonl\n")
    assert main(["train", "--resume", str(path)]) == 2  # read as the config, then: no checkpoint to resume


@pytest.mark.parametrize("argv, message", [
    (["score", "--model", "m", "--data", "d", "--output", "o", "--batch-size", "0"], "batch_size must be >= 1, got 0"),
    (["eval", "--model", "m", "--data", "d", "--batch-size", "-1"], "batch_size must be >= 1, got -1"),
    (["score", "--model", "m", "--data", "d", "--output", "o", "--max-batch-tokens", "0"], "max_batch_tokens must be >= 1"),
    (["serve", "--model", "m", "--max-items", "0"], "max_items must be >= 1, got 0"),
    (["serve", "--model", "m", "--max-wait-ms", "nan"], "max_wait_ms must be a finite number"),
    (["judge", "--data", "d", "--output", "o", "--max-new-tokens", "0"], "max_new_tokens must be >= 1"),
    (["judge", "--data", "d", "--output", "o", "--timeout", "0"], "timeout must be > 0"),
    (["train", "--data", "d", "--output", "o", "--eval-batch-size", "0"], "eval_batch_size must be >= 1"),
    (["train", "--data", "d", "--output", "o", "--lr", "-1"], "lr must be >= 0"),
])
def test_every_numeric_option_is_checked_where_it_is_parsed(argv, message, capsys):
    """A batch size of 0 once made `score` loop without end, growing memory: every command
    refuses an out-of-range number with one line before it loads anything."""
    from rewardlab.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rewardlab: error: {message}" or (err.startswith("rewardlab: error: ") and message in err)
    assert len(err.splitlines()) == 1
