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
import signal
import threading
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


def gather_state(model, optimizer, sharded: bool) -> tuple[dict, dict]:
    """Full model and optimizer state, keyed by parameter name (torch.distributed.checkpoint's
    state-dict API, which also un-shards FSDP). Sharded runs: a collective call; rank 0 gets
    the full tensors on CPU. ``model`` is the prepared (possibly wrapped) module."""
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                         get_optimizer_state_dict)

    options = StateDictOptions(full_state_dict=True, cpu_offload=sharded)
    weights = get_model_state_dict(model, options=options)
    if optimizer is None:
        return weights, {}
    optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
    return weights, get_optimizer_state_dict(model, optimizer, options=options)


def _optimizer_tensors(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for name, slots in state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"state.{name}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(name, {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def hf_names(state: dict, prefix: str = "model.") -> dict:
    """Drop the training wrapper's prefix: the names a Hugging Face folder stores."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def save_checkpoint(output: str, step: int, model, tokenizer, state: tuple[dict, dict], extra: dict,
                    keep: int = 1) -> Path:
    """Write a checkpoint from the main process. ``model`` is the Hugging Face model (its
    config and tokenizer are saved with it); ``state`` comes from :func:`gather_state`."""
    weights, optimizer_state = state
    root = checkpoint_dir(output)
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if callable(getattr(model, "get_base_model", None)):  # LoRA: adapter + head + settings
        from ..models.lora import save_adapter

        save_adapter(model, tokenizer, tmp)
    else:
        model.save_pretrained(tmp, state_dict=hf_names(weights), safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    tensors, opt_meta = _optimizer_tensors(optimizer_state)
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


def load_checkpoint(path: Path, model, hf_model, optimizer) -> dict:
    """Restore weights, optimizer and RNG state in place (every process reads the files; under
    FSDP each keeps its shard); return the saved trainer state. ``model`` is the prepared
    module, ``hf_model`` the Hugging Face model inside it."""
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                         set_optimizer_state_dict)

    meta = json.loads((path / STATE_FILE).read_text())
    options = StateDictOptions(full_state_dict=True)
    if (path / "adapter_model.safetensors").exists():  # a LoRA run: adapter + head only
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(hf_model, load_file(str(path / "adapter_model.safetensors")))
        if result.unexpected_keys:
            raise ValueError(f"{path}: adapter does not match the model (unexpected {result.unexpected_keys[:3]})")
    else:
        weights = {"model." + k: v for k, v in load_file(str(path / "model.safetensors")).items()}
        expected = {"model." + k for k in hf_model.state_dict()}
        tied = {"model." + k for k in _tied_keys(hf_model)}
        missing, unexpected = expected - set(weights) - tied, set(weights) - expected
        if missing or unexpected:
            raise ValueError(f"{path}: checkpoint does not match the model (missing {sorted(missing)[:3]}, "
                             f"unexpected {sorted(unexpected)[:3]})")
        set_model_state_dict(model, weights, options=StateDictOptions(full_state_dict=True, strict=False))
    tensors = load_file(str(path / "optimizer.safetensors"))
    opt = meta["optimizer"]
    state: dict[str, dict] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            name, slot = key[len("state."):].rsplit(".", 1)
            state.setdefault(name, {})[slot] = value
    for name, slots in opt["scalars"].items():
        state.setdefault(name, {}).update(slots)
    set_optimizer_state_dict(model, getattr(optimizer, "optimizer", optimizer),
                             {"state": state, "param_groups": opt["param_groups"]}, options=options)
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return meta


def _tied_keys(model) -> set[str]:
    tied = getattr(model, "_tied_weights_keys", None) or {}
    return set(tied if not isinstance(tied, dict) else tied.keys())


class CtrlC:
    """The first Ctrl-C (or SIGTERM, as a scheduler sends before preempting) asks every process
    to stop after the current optimizer step (the flag rides on the per-step loss all-reduce), so
    all of them save one consistent checkpoint. A second one stops at once. Launchers give
    workers limited time after forwarding a signal (torchrun: 30 s before SIGKILL)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, say):
        self.asked, self.at_step_end, self.previous = False, False, {}
        self.say = say
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    def _handle(self, signum, frame):
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True
        self.say(f"\n{signal.Signals(signum).name}: stopping after this step with a checkpoint "
                 "(again to stop at once)")

    def restore(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}
