"""LoRA adapters for reward models, through ``peft``.

The reward head is new, so it must be trained *and saved* with the adapter: it goes in
``modules_to_save``. Forgetting that (TRL #1379) makes a reloaded LoRA reward model score
with a random head. rewardlab saves the final model merged (a plain Hugging Face folder
that scores exactly like the adapter did) and the adapter itself in ``OUTPUT/adapter``;
``rewardlab export`` merges any adapter folder (a checkpoint's, for example).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

SETTINGS_FILE = "rewardlab.json"


def head_name(model: nn.Module) -> str:
    for name in ("score", "classifier"):
        if isinstance(getattr(model, name, None), nn.Module):
            return name
    raise ValueError(f"{type(model).__name__} has no 'score' or 'classifier' head")


def apply_lora(model: nn.Module, r: int, alpha: int, dropout: float = 0.0) -> nn.Module:
    """Wrap ``model`` with LoRA on every linear layer of the backbone; the head trains fully."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules="all-linear", modules_to_save=[head_name(model)])
    return get_peft_model(model, config)


def is_peft(model: nn.Module) -> bool:
    return callable(getattr(model, "get_base_model", None))


def merged_copy(model: nn.Module) -> nn.Module:
    """A plain transformers model with the adapter merged in (the PeftModel is left unchanged)."""
    import copy

    return copy.deepcopy(model).merge_and_unload()


def load_adapter(folder: str, trust_remote_code: bool = False):
    """(PeftModel, tokenizer, trained max_length) from an adapter folder written by rewardlab."""
    import json

    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from .models import ModelError, ensure_pad_token, resolve

    base_name = json.loads(Path(folder, "adapter_config.json").read_text())["base_model_name_or_path"]
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        base = AutoModelForSequenceClassification.from_pretrained(
            resolve(base_name), num_labels=1, dtype=torch.float32, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{folder}: cannot load the adapter's base model {base_name!r}: "
                         f"{str(e).splitlines()[0]}") from None
    if len(tokenizer) > base.get_input_embeddings().num_embeddings:  # a pad token was added in training
        base.resize_token_embeddings(len(tokenizer))
    ensure_pad_token(tokenizer, base)
    settings_file = Path(folder, SETTINGS_FILE)
    settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    return PeftModel.from_pretrained(base, folder), tokenizer, settings.get("max_length", 512)


def save_adapter(model: nn.Module, tokenizer, folder) -> None:
    """The adapter (LoRA weights + the full reward head), its tokenizer, and rewardlab's
    settings (max_length), which the adapter config has no place for."""
    import json

    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    settings = getattr(model.get_base_model().config, "rewardlab", None) or {}
    Path(folder, SETTINGS_FILE).write_text(json.dumps(settings))
