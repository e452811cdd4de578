"""``rewardlab.train``: the training loop (loop.py) from Python, with everything ``rewardlab train``
takes, and what only Python can hand over: rows in memory, a model already loaded, a ``peft``
config, callbacks.

    import datasets, rewardlab
    pairs = datasets.load_from_disk("hh_pairs")               # prompt / chosen / rejected
    result = rewardlab.train(data=pairs, model="smollm2", lora_r=16, output="runs/rm", max_steps=100,
                             callbacks=[MyCallback()])
    result.model.score(["Q: 2 + 2?"], [" 4"])                   # the trained RewardModel
    result.metrics["eval"]                                      # train_results.json
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, TrainConfig, load_config, to_dict
from ..data.rows import in_memory
from .callbacks import Callback
from .loop import Given, run_training


@dataclass
class TrainResult(Mapping):
    """What a run produced: ``output`` (the model folder), ``metrics`` (train_results.json: steps,
    wall_s, truncated and skipped counts, the final ``eval``) and ``model`` (the trained
    :class:`rewardlab.RewardModel`, loaded from the folder on first use). Reads like its metrics:
    ``result["eval"]``."""

    output: str
    metrics: dict
    _model: Any = field(default=None, repr=False)

    @property
    def model(self):
        if self._model is None:
            from ..inference import RewardModel

            self._model = RewardModel.from_pretrained(self.output)
        return self._model

    def __getitem__(self, key):
        return self.metrics[key]

    def __iter__(self):
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)


def train(config: str | TrainConfig | None = None, *, data=None, eval_data=None, model=None, tokenizer=None,
          peft_config=None, callbacks: list[Callback] | tuple = (), **options) -> TrainResult:
    """Train a reward model exactly as ``rewardlab train`` does with the same options.

    ``config``: a YAML file (as ``rewardlab train CONFIG``), a :class:`rewardlab.config.TrainConfig`,
    or nothing. ``options``: any flag of ``rewardlab train`` by its field name (``kind="orm"``,
    ``lr=1e-5``, ``lora_r=16``, ``output="runs/rm"``...), over the config; an unknown one is an error.
    ``data`` / ``eval_data``: a path (as ``--data``), a list of row dicts, or a ``datasets.Dataset``
    (an ``IterableDataset`` with ``streaming=True``): the same rows give the same weights whatever
    their form. ``model``: a folder or bundled alias (as ``--model``), or a ``transformers`` model
    already loaded with the head the kind needs (and its ``tokenizer``). ``peft_config``: a
    ``peft.LoraConfig`` instead of ``lora_r``/``lora_alpha``/``lora_dropout``. ``callbacks``:
    :class:`rewardlab.Callback` objects (a hook may stop the run).
    """
    given = Given(callbacks=list(callbacks), peft_config=peft_config)
    for name, value in (("data", data), ("eval_data", eval_data)):
        if in_memory(value):
            setattr(given, name, value)
            options[name] = memory_label(value)
        elif value is not None:
            options[name] = value
    if model is not None and not isinstance(model, str):
        if tokenizer is None:
            raise ConfigError("train: a model given in memory needs its tokenizer (tokenizer=...)")
        given.model, given.tokenizer = model, tokenizer
        options["model"] = getattr(model, "name_or_path", "") or type(model).__name__
    elif model is not None:
        options["model"] = model
    cfg = _config(config, options)
    return TrainResult(cfg.run.output, run_training(cfg, given))


def _config(config, options: dict) -> TrainConfig:
    """The run's config: defaults < the YAML file or config object < ``options``."""
    if isinstance(config, TrainConfig):
        return config if not options else load_config(TrainConfig, None, {**to_dict(config), **options})
    if config is not None and not isinstance(config, str):
        raise ConfigError(f"train: config must be a YAML path or a TrainConfig, got {type(config).__name__}")
    return load_config(TrainConfig, config, options)


def memory_label(data) -> str:
    """How a run records rows given in memory (in its config, checkpoints and results): their
    kind and a fingerprint, so ``--resume`` notices other rows."""
    fingerprint = getattr(data, "_fingerprint", None)
    if fingerprint:
        return f"{type(data).__name__}({fingerprint})"
    if isinstance(data, list):
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return f"rows({len(data)}, {digest})"
    return type(data).__name__


__all__ = ["Callback", "TrainResult", "train"]
