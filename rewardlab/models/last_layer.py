"""The last decoder layer, computed only where its output is read.

A reward is read at one token per sequence. Every layer but the last must run at every token
(later tokens attend to its keys and values), but the last layer's output is used only at the
read positions: everywhere else only its keys and values are needed. So in the last layer the
query projection, the attention, the output projection and the MLP run at the read positions
only (one token per completion instead of all of them). This is exact (up to float rounding:
the same sums, in a product over fewer rows): those modules act on each token alone, and
attention at a read position needs every key and value, which still come from every token.

Measured with ``bench/last_layer.py`` (SmolLM2 architecture, HH-RLHF, CPU, medians of 5
interleaved runs): at 4 layers a training step is 6.4% faster and scoring 12.6%; at the full 30
layers 7.2% and 5.7%. Only a plain last layer is pruned (linear q/o projections, a dense MLP);
anything else, a mixture-of-experts block for one, runs whole. Used by the shared-prompt forward (shared_prompt.py)
when it knows its read positions; the plain padded forward stays the unmodified
``transformers`` one.

How: forward hooks on the last layer's ``self_attn.q_proj``, ``self_attn.o_proj`` and
``mlp`` (every decoder layer in ``transformers`` that has them applies them token by token)
give them the read rows only and scatter their outputs back into zeros; the block attention
(CPU) is told the read positions and computes only those queries (see ``_grouped_attention``
in attention.py; the flex kernel still computes every query). The hooks are
installed once per model and do nothing unless :func:`reads_only` is active in the calling
thread, so a model scored from two threads, or trained, is never affected by another call.
"""

from __future__ import annotations

import contextlib
import threading

import torch
from torch import nn

_ACTIVE = threading.local()  # .parts: ids of the hooked modules now pruned; .rows/.cols/.shape
_INSTALL = threading.Lock()  # two threads' first calls must not hook a module twice
_REFUSE = "train with --no-shared-prompt, serve with --no-prefix-sharing"
ENABLED = True  # bench/last_layer.py turns it off to measure what the pruning saves


def last_layer(model: nn.Module) -> tuple[int, list[nn.Module]] | None:
    """(layer index, [q_proj, o_proj, mlp]) of a transformers decoder's last layer, or None
    when its layout is not the usual ``layers[-1].self_attn`` / ``.mlp`` one, or when a
    part of it also serves an earlier layer (shared or looped layers)."""
    layers = getattr(getattr(model, "base_model", None), "layers", None)
    if not isinstance(layers, nn.ModuleList) or not len(layers):
        return None
    attn, mlp = getattr(layers[-1], "self_attn", None), getattr(layers[-1], "mlp", None)
    q, o = getattr(attn, "q_proj", None), getattr(attn, "o_proj", None)
    if not all(isinstance(m, nn.Module) for m in (attn, mlp, q, o)) or getattr(attn, "layer_idx", None) is None:
        return None
    if not (_linear(q) and _linear(o) and _dense(mlp)):
        return None  # fail closed: only plain projections and a plain dense MLP are pruned
    earlier = {id(m) for layer in layers[:-1] for m in layer.modules()}
    if any(id(m) in earlier for m in (q, o, mlp)):
        return None
    return attn.layer_idx, [q, o, mlp]


def _linear(module: nn.Module) -> bool:
    """A linear layer, or a LoRA-wrapped one (peft keeps the original as ``base_layer``; the
    adapter acts on each token alone too)."""
    return isinstance(module, nn.Linear) or isinstance(getattr(module, "base_layer", None), nn.Linear)


def _dense(mlp: nn.Module) -> bool:
    """A plain dense MLP: its children are linear layers and parameter-free activations, none of
    them a router or a list of experts (a mixture-of-experts block, where tokens may compete
    for capacity, is left whole)."""
    children = dict(mlp.named_children())
    if not children or any(name in ("gate", "router", "experts", "shared_expert") for name in children):
        return False
    return all(_linear(m) or not any(True for _ in m.parameters()) for m in children.values())


def _checkpointed(model: nn.Module) -> bool:
    """Activation checkpointing, set by transformers or by accelerate's FSDP wrapper: its
    recomputation runs after the block, on full-size inputs, so nothing may be pruned."""
    try:
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import CheckpointWrapper
    except ImportError:  # a torch built without torch.distributed
        CheckpointWrapper = ()  # noqa: N806
    return any(getattr(m, "gradient_checkpointing", False) is True or isinstance(m, CheckpointWrapper)
               for m in model.modules())


def _select(module: nn.Module, args: tuple, kwargs: dict):
    if id(module) not in (getattr(_ACTIVE, "parts", None) or ()):
        return None
    # every transformers decoder passes one token-wise input, positionally; anything else is refused
    if not args or not torch.is_tensor(args[0]) or any(torch.is_tensor(x) for x in (*args[1:], *kwargs.values())):
        raise RuntimeError(f"{type(module).__name__} takes other inputs than one positional tensor; {_REFUSE}")
    return (args[0][_ACTIVE.rows, _ACTIVE.cols][None], *args[1:]), kwargs


def _scatter(module: nn.Module, args: tuple, out):
    if id(module) not in (getattr(_ACTIVE, "parts", None) or ()):
        return None
    if not torch.is_tensor(out):  # e.g. an MoE block that also returns its router logits
        raise RuntimeError(f"{type(module).__name__} returns {type(out).__name__}, not a tensor; {_REFUSE}")
    full = out.new_zeros(*_ACTIVE.shape, out.shape[-1])
    full[_ACTIVE.rows, _ACTIVE.cols] = out[0]
    return full


@contextlib.contextmanager
def reads_only(model: nn.Module, rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int]):
    """Within the block, the last layer of ``model`` computes its query and output projections
    and its MLP only at the positions (rows[i], cols[i]) of an input of ``shape`` (batch,
    length); elsewhere those give 0, so the layer's output there is meaningless (nothing reads
    it). Yields the last layer's index (the block attention then computes only the read
    queries), or None where this does not apply and nothing changes: an unusual layer layout,
    or activation checkpointing while gradients are on."""
    found = last_layer(model) if ENABLED else None
    if found is None or (torch.is_grad_enabled() and _checkpointed(model)):
        yield None
        return
    index, parts = found
    with _INSTALL:
        for part in parts:
            if not getattr(part, "_rewardlab_reads_hooked", False):
                part.register_forward_pre_hook(_select, with_kwargs=True)
                part.register_forward_hook(_scatter)
                part._rewardlab_reads_hooked = True
    before = {k: getattr(_ACTIVE, k, None) for k in ("parts", "rows", "cols", "shape")}
    flat = torch.unique(rows * shape[1] + cols)  # sorted, each position once
    _ACTIVE.rows, _ACTIVE.cols, _ACTIVE.shape = flat // shape[1], flat % shape[1], shape
    _ACTIVE.parts = {id(p) for p in parts}
    try:
        yield index
    finally:
        for k, v in before.items():  # an enclosing block (if any) applies again
            setattr(_ACTIVE, k, v)
