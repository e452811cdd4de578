"""Configuration: small typed dataclass groups, read from a YAML file and CLI flags.

Each field carries its documentation in ``metadata["help"]`` (what ``--help`` prints), its
allowed values in ``metadata["choices"]`` where the set is fixed, and ``metadata["resume"]``
when changing it between a run and its ``--resume`` would silently change the run.
Precedence: dataclass default < YAML file < command-line flag. A YAML key that is not a
field is an error naming the key, so a typo never silently falls back to a default.

``TrainConfig`` is made of groups (``backbone``, ``inputs``, ``objective``, ``optim``, ``run``);
field names are unique across groups, so flags stay flat (``--lr``) and a YAML file may be
flat (``lr: 1e-5``) or grouped (``optim: {lr: 1e-5}``).
"""

from ..errors import ConfigError
from .flags import _leaves, add_arguments, load_config, resume_values, to_dict
from .commands import (ENSEMBLE_OPTIONS, EnsembleConfig, EvalConfig, ExportConfig, JudgeConfig, MergeConfig,
                       PrmDataConfig, ScoreConfig, ScoreOptions, ServeConfig, score_options)
from .settings import ModelSettings, RewardStats
from .groups import (DEFAULT_LR, LORA_LR, KIND_OPTIONS, RECOMMENDED_LR, BackboneArgs, ColumnArgs, InputArgs, ObjectiveArgs,
                     OptimArgs, RunArgs, TrainConfig, check_choices, default_lr, validate_train)
from .groups import _f as option

__all__ = ["ConfigError", "ENSEMBLE_OPTIONS", "ModelSettings", "RewardStats", "ScoreOptions", "score_options",
           "TrainConfig", "load_config", "add_arguments", "to_dict", "resume_values", "BackboneArgs",
           "ColumnArgs", "EnsembleConfig", "EvalConfig", "MergeConfig", "ExportConfig", "InputArgs", "JudgeConfig", "ObjectiveArgs", "OptimArgs", "PrmDataConfig",
           "RunArgs", "ScoreConfig", "ServeConfig", "DEFAULT_LR", "LORA_LR", "KIND_OPTIONS", "RECOMMENDED_LR", "check_choices", "default_lr",
           "validate_train", "_leaves", "option"]
