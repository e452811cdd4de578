"""Command line: ``rewardlab train | eval | score | export | judge | serve | prm-data | ensemble | merge``
(also ``python -m rewardlab``).

Each command is a plain function of its config dataclass. Bad input of any kind ends with
one line ``rewardlab: error: FILE: row N: problem`` and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from ..config import (EnsembleConfig, EvalConfig, ExportConfig, JudgeConfig, MergeConfig, PrmDataConfig, ScoreConfig,
                      ServeConfig, TrainConfig, add_arguments, load_config)
from ..config.flags import suggest
from ..errors import RewardlabError
from .ensembles import cmd_ensemble, cmd_merge
from .evaluate import cmd_eval
from .making import cmd_judge, cmd_prm_data, cmd_train
from .scoring import cmd_export, cmd_score, cmd_serve


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


COMMANDS = {
    "train": (TrainConfig, cmd_train),
    "eval": (EvalConfig, cmd_eval),
    "score": (ScoreConfig, cmd_score),
    "export": (ExportConfig, cmd_export),
    "judge": (JudgeConfig, cmd_judge),
    "serve": (ServeConfig, cmd_serve),
    "prm-data": (PrmDataConfig, cmd_prm_data),
    "ensemble": (EnsembleConfig, cmd_ensemble),
    "merge": (MergeConfig, cmd_merge),
}


class Parser(argparse.ArgumentParser):
    """argparse, with negative numbers read as values (``--lr -1e-4`` is then refused for its
    value, not as a missing argument) and an unknown flag answered with the closest one (or the
    rewardlab name of a TRL / OpenRLHF option: ``--learning-rate``: did you mean ``--lr``?)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$", re.I)
        self.flags_of: dict[str, set[str]] = {}  # the top parser: each command's flags, for the hint
        self.argv: list[str] = []

    def parse_known_args(self, args=None, namespace=None):
        self.argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        if message.startswith("unrecognized arguments:") and self.flags_of:
            command = next((a for a in self.argv if a in self.flags_of), None)
            known = {f.lstrip("-").replace("-", "_") for f in self.flags_of.get(command, ())}
            hints = [f"{w.split('=')[0]}: did you mean --{h.split()[-1].rstrip('?').replace('_', '-')}?"
                     for w in message.split(":", 1)[1].split() if w.startswith("--")
                     for h in [suggest(w.lstrip("-").split("=")[0], known)] if h]
            message += f" ({'; '.join(hints)})" if hints else ""
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    from .. import kinds
    from ..eval.evaluate import formats

    parser = Parser(prog="rewardlab", description="Train, evaluate and serve reward models.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (cls, _) in COMMANDS.items():
        p = sub.add_parser(name, help=cls.__doc__, description=cls.__doc__)
        p.add_argument("config", nargs="?", default=None, help="optional YAML file; flags override its values")
        # Training options that belong to one kind are listed under it; --kind takes the registered kinds.
        # --kind and eval's --format take what is registered (a kind, a benchmark), so the lists live there.
        add_arguments(p, cls, {"kind": tuple(kinds.KINDS), **({"format": formats()} if name == "eval" else {})})
        parser.flags_of[name] = set(p._option_string_actions)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    cls, fn = COMMANDS[args.command]
    resume = getattr(args, "resume", None)
    if resume and args.config is None and resume.endswith((".yaml", ".yml")) and Path(resume).is_file():
        args.config, args.resume = resume, "latest"  # `--resume CONFIG.yaml`: the flag, then the file
    try:
        _quiet_libraries()
        return fn(load_config(cls, args.config, args))
    except RewardlabError as e:
        print(f"rewardlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
