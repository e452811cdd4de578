"""Resumable training checkpoints, in safetensors and JSON only (nothing is ever unpickled).

A checkpoint folder ``OUTPUT/checkpoints/step-N/`` holds:
- the model as a standard Hugging Face folder (config.json + model.safetensors + tokenizer),
- ``optimizer.safetensors``: every optimizer state tensor, plus the RNG states,
- ``trainer_state.json``: step, optimizer hyper-parameters and the training config.
Only the newest ``keep`` checkpoints are kept; a checkpoint is written to a temporary
folder and renamed, so an interrupted save never leaves a half checkpoint behind.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STATE_FILE = "trainer_state.json"


def checkpoint_dir(output: str) -> Path:
    return Path(output) / "checkpoints"


def latest_checkpoint(output: str) -> Path | None:
    found = []
    for p in checkpoint_dir(output).glob("step-*"):
        m = re.fullmatch(r"step-(\d+)", p.name)
        if m and (p / STATE_FILE).exists():
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def _optimizer_tensors(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for pid, slots in state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_checkpoint(output: str, step: int, model, tokenizer, optimizer, extra: dict, keep: int = 1) -> Path:
    root = checkpoint_dir(output)
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if callable(getattr(model, "get_base_model", None)):  # LoRA: adapter + head + settings
        from .lora import save_adapter

        save_adapter(model, tokenizer, tmp)
    else:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    tensors, opt_meta = _optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / STATE_FILE).write_text(json.dumps({"step": step, "optimizer": opt_meta, **extra}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    older = sorted((int(p.name.split("-")[1]), p) for p in root.glob("step-*") if p != final)
    for _, p in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def load_checkpoint(path: Path, model, optimizer) -> dict:
    """Restore weights, optimizer and RNG state in place; return the saved trainer state."""
    meta = json.loads((path / STATE_FILE).read_text())
    if (path / "adapter_model.safetensors").exists():  # a LoRA run: adapter + head only
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, load_file(str(path / "adapter_model.safetensors")))
        if result.unexpected_keys:
            raise ValueError(f"{path}: adapter does not match the model (unexpected {result.unexpected_keys[:3]})")
        return _load_optimizer(path, optimizer, meta)
    weights = load_file(str(path / "model.safetensors"))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    # Tied weights (lm embeddings) may be stored once; anything else missing is a real problem.
    real_missing = [k for k in missing if k not in _tied_keys(model)]
    if real_missing or unexpected:
        raise ValueError(f"{path}: checkpoint does not match the model (missing {real_missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    return _load_optimizer(path, optimizer, meta)


def _load_optimizer(path: Path, optimizer, meta: dict) -> dict:
    tensors = load_file(str(path / "optimizer.safetensors"))
    opt = meta["optimizer"]
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, pid, slot = key.split(".", 2)
            state.setdefault(int(pid), {})[slot] = value
    for pid, slots in opt["scalars"].items():
        state.setdefault(int(pid), {}).update(slots)
    optimizer.load_state_dict({"state": state, "param_groups": opt["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return meta


def _tied_keys(model) -> set[str]:
    tied = getattr(model, "_tied_weights_keys", None) or {}
    return set(tied if not isinstance(tied, dict) else tied.keys())
