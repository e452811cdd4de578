import argparse
import dataclasses

import pytest

from rewardlab.cli import build_parser
from rewardlab.config import ConfigError, TrainConfig, load_config


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
    fields = [f for g in dataclasses.fields(TrainConfig) for f in dataclasses.fields(g.default_factory)]
    assert len(fields) > 40
    for f in fields:
        assert "--" + f.name.replace("_", "-") in text
        assert " ".join(f.metadata["help"].split())[:40] in text


def test_bool_flags():
    args = build_parser().parse_args(["train", "--resume", "--no-disable-dropout"])
    cfg = load_config(TrainConfig, None, args)
    assert cfg.run.resume is True and cfg.backbone.disable_dropout is False
    assert isinstance(args, argparse.Namespace)
