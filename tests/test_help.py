"""Every command's --help reads right: no argparse internals, every fixed-choice option lists
its choices, and no "(default: '')" after text that already says what empty means."""

import pytest

from rewardlab.cli import COMMANDS, build_parser
from rewardlab.config import _leaves


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_is_clean(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    for bad in ("option_strings", "{'", "%(", "(default: '')", "(default: None)", "(default: False)"):
        assert bad not in flat, f"{command} --help shows {bad!r}"
    for name, (_, f, *_) in _leaves(COMMANDS[command][0]).items():
        flag = "--" + name.replace("_", "-")
        assert flag in flat, flag
        if f.metadata.get("choices"):
            assert f"{flag} {{{','.join(f.metadata['choices'])}}}" in flat, f"{flag} does not list its choices"


def test_choices_are_enforced_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", "--loss", "hinge"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --loss: invalid choice: 'hinge'" in err
