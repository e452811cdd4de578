"""LoRA adapters for reward models, through ``peft``.

The reward head is new, so it must be trained *and saved* with the adapter: it goes in
``modules_to_save``. Forgetting that (TRL #1379) makes a reloaded LoRA reward model score
with a random head. rewardlab saves the final model merged (a plain Hugging Face folder
that scores exactly like the adapter did) and the adapter itself in ``OUTPUT/adapter``;
``rewardlab export`` merges any adapter folder (a checkpoint's, for example).

QLoRA (a 4-bit base): the adapter reloads onto the same 4-bit base and scores exactly as in
training, and training's evaluation measures that model. The merged folder puts the adapter
on the full-precision base instead, so its rewards differ by the quantisation error.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError
from .backbone import ensure_pad_token, has_lm_head, keep_4bit_training_format, quantization_4bit, resolve

SETTINGS_FILE = "rewardlab.json"


def head_name(model: nn.Module) -> str:
    for name in ("score", "classifier"):
        if isinstance(getattr(model, name, None), nn.Module):
            return name
    raise ValueError(f"{type(model).__name__} has no 'score' or 'classifier' head")


def apply_lora(model: nn.Module, r: int, alpha: int, dropout: float = 0.0, quantized: bool = False,
               config=None) -> nn.Module:
    """Wrap ``model`` with LoRA on every linear layer of the backbone; the head trains fully.
    ``quantized``: the backbone was loaded in 4 bits (QLoRA). ``config``: a ``peft.LoraConfig`` of
    the caller's instead of (r, alpha, dropout); the reward head is added to its ``modules_to_save``."""
    from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training

    if quantized:  # freezes the 4-bit weights, keeps norms and head in fp32, lets inputs carry grads
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if config is not None:
        return get_peft_model(model, _with_head(model, config))

    name = type(model).__name__
    if has_lm_head(model):  # a generative verifier: LoRA everywhere, the (tied) LM head as it is
        config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=r, lora_alpha=alpha, lora_dropout=dropout,
                            target_modules="all-linear")
        return get_peft_model(model, config)
    task = TaskType.TOKEN_CLS if name.endswith("ForTokenClassification") else TaskType.SEQ_CLS
    config = LoraConfig(task_type=task, r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules="all-linear", modules_to_save=[head_name(model)])
    return get_peft_model(model, config)


def _with_head(model: nn.Module, config):
    """A copy of the caller's LoRA config that also trains and saves the reward head (TRL #1379)."""
    import copy

    from peft import TaskType

    config = copy.deepcopy(config)
    if has_lm_head(model):
        config.task_type = config.task_type or TaskType.CAUSAL_LM
        return config
    head = head_name(model)
    config.modules_to_save = sorted(set(config.modules_to_save or []) | {head})
    if config.task_type is None:
        config.task_type = TaskType.TOKEN_CLS if type(model).__name__.endswith("ForTokenClassification") \
            else TaskType.SEQ_CLS
    return config


def merged_copy(model: nn.Module) -> nn.Module:
    """A plain transformers model with the adapter merged in (the PeftModel is left unchanged)."""
    import copy

    return copy.deepcopy(model).merge_and_unload()


def load_adapter(folder: str, trust_remote_code: bool = False, full_precision: bool = False):
    """(PeftModel, tokenizer, trained max_length) from an adapter folder written by rewardlab.

    A QLoRA adapter gets its base in 4 bits again, so it scores exactly as in training;
    ``full_precision`` loads the base unquantized instead (for merging)."""
    import json

    from peft import PeftModel
    from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, AutoModelForTokenClassification,
                              AutoTokenizer)

    base_name = json.loads(Path(folder, "adapter_config.json").read_text())["base_model_name_or_path"]
    settings_file = Path(folder, SETTINGS_FILE)
    settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    quantized = {"quantization_config": quantization_4bit()} \
        if settings.get("load_in_4bit") and not full_precision else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        auto = {"token": AutoModelForTokenClassification, "lm": AutoModelForCausalLM}.get(
            settings.get("head"), AutoModelForSequenceClassification)
        labels = {} if settings.get("head") == "lm" else {"num_labels": settings.get("num_labels", 1)}
        base = auto.from_pretrained(resolve(base_name), dtype=torch.float32, trust_remote_code=trust_remote_code,
                                    **labels, **quantized)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{folder}: cannot load the adapter's base model {base_name!r}: "
                         f"{str(e).splitlines()[0]}") from None
    if len(tokenizer) > base.get_input_embeddings().num_embeddings:  # a pad token was added in training
        base.resize_token_embeddings(len(tokenizer))
    ensure_pad_token(tokenizer, base)
    # The kind, step marker, ... live in rewardlab's settings file, not in the base's config.
    base.config.rewardlab = {k: v for k, v in settings.items() if k != "load_in_4bit"}
    keep_4bit_training_format(base)  # the same kernels as in training: same rewards
    return PeftModel.from_pretrained(base, folder), tokenizer, settings.get("max_length", 512)


def save_adapter(model: nn.Module, tokenizer, folder) -> None:
    """The adapter (LoRA weights + the full reward head), its tokenizer, and rewardlab's
    settings (max_length; whether the base was 4-bit), which the adapter config has no place for."""
    import json

    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    settings = dict(getattr(model.get_base_model().config, "rewardlab", None) or {})
    if getattr(model.get_base_model(), "is_loaded_in_4bit", False):
        settings["load_in_4bit"] = True
    Path(folder, SETTINGS_FILE).write_text(json.dumps(settings))
