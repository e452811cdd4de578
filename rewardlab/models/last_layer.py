"""The last decoder layer, computed only where its output is read.

A reward is read at one token per sequence. Every layer but the last must run at every token
(later tokens attend to its keys and values), but the last layer's output is used only at the
read positions: everywhere else only its keys and values are needed. So in the last layer the
query projection, the attention, the output projection and the MLP run at the read positions
only (one token per completion instead of all of them). This is exact: those modules act on
each token alone, and attention at a read position needs every key and value, which still
come from every token.

On the 4-layer SmolLM2-architecture model of bench/serve_load.py this removes about a fifth
of a scoring forward's matrix products. Used by the shared-prompt forward (shared_prompt.py)
when it knows its read positions; the plain padded forward stays the unmodified
``transformers`` one.

How: forward hooks on the last layer's ``self_attn.q_proj``, ``self_attn.o_proj`` and
``mlp`` (every decoder layer in ``transformers`` that has them applies them token by token)
give them the read rows only and scatter their outputs back into zeros; the attention itself
is told the read positions (see ``_grouped_attention`` in shared_prompt.py). The hooks are
installed once per model and do nothing unless :func:`reads_only` is active in the calling
thread, so a model scored from two threads, or trained, is never affected by another call.
"""

from __future__ import annotations

import contextlib
import threading

import torch
from torch import nn

_ACTIVE = threading.local()  # .parts: ids of the hooked modules now pruned; .rows/.cols/.shape


def last_layer(model: nn.Module) -> tuple[int, list[nn.Module]] | None:
    """(layer index, [q_proj, o_proj, mlp]) of a transformers decoder's last layer, or None
    when its layout is not the usual ``layers[-1].self_attn`` / ``.mlp`` one."""
    layers = getattr(getattr(model, "base_model", None), "layers", None)
    if not isinstance(layers, nn.ModuleList) or not len(layers):
        return None
    attn, mlp = getattr(layers[-1], "self_attn", None), getattr(layers[-1], "mlp", None)
    q, o = getattr(attn, "q_proj", None), getattr(attn, "o_proj", None)
    if not all(isinstance(m, nn.Module) for m in (attn, mlp, q, o)) or getattr(attn, "layer_idx", None) is None:
        return None
    return attn.layer_idx, [q, o, mlp]


def _select(module: nn.Module, args: tuple):
    if id(module) not in getattr(_ACTIVE, "parts", ()):
        return None
    if not args or not torch.is_tensor(args[0]):  # every transformers decoder passes its input positionally
        raise RuntimeError(f"{type(module).__name__} was called without a positional input; "
                           "train with --no-shared-prompt, serve with --no-prefix-sharing")
    return (args[0][_ACTIVE.rows, _ACTIVE.cols][None],) + tuple(args[1:])


def _scatter(module: nn.Module, args: tuple, out):
    if id(module) not in getattr(_ACTIVE, "parts", ()):
        return None
    if not torch.is_tensor(out):  # e.g. an MoE block that also returns its router logits
        raise RuntimeError(f"{type(module).__name__} returns {type(out).__name__}, not a tensor; "
                           "train with --no-shared-prompt, serve with --no-prefix-sharing")
    full = out.new_zeros(*_ACTIVE.shape, out.shape[-1])
    full[_ACTIVE.rows, _ACTIVE.cols] = out[0]
    return full


@contextlib.contextmanager
def reads_only(model: nn.Module, rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int]):
    """Within the block, the last layer of ``model`` computes its output only at the positions
    (rows[i], cols[i]) of an input of ``shape`` (batch, length); everywhere else its output is 0.
    Yields the last layer's index, or None where this does not apply (then nothing changes):
    an unusual layer layout, or gradient checkpointing while gradients are on (its recomputation
    runs after the block, on full-size inputs)."""
    found = last_layer(model)
    if found is None or (torch.is_grad_enabled() and getattr(model, "is_gradient_checkpointing", False)):
        yield None
        return
    index, parts = found
    for part in parts:
        if not getattr(part, "_rewardlab_reads_hooked", False):
            part.register_forward_pre_hook(_select)
            part.register_forward_hook(_scatter)
            part._rewardlab_reads_hooked = True
    flat = torch.unique(rows * shape[1] + cols)  # sorted, each position once
    _ACTIVE.rows, _ACTIVE.cols, _ACTIVE.shape = flat // shape[1], flat % shape[1], shape
    _ACTIVE.parts = {id(p) for p in parts}
    try:
        yield index
    finally:
        _ACTIVE.parts = set()
        _ACTIVE.rows = _ACTIVE.cols = _ACTIVE.shape = None
