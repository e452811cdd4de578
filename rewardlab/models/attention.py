"""The attention kernels of rewardlab's packed forwards, registered with transformers as the
attention implementation ``rewardlab_blocks`` (plain SDPA for ordinary inputs).

- Shared-prompt groups (shared_prompt.py): per group, the prompt causally, then each completion
  against the prompt and causally itself, never a sibling (:func:`_grouped_attention`); with a
  prefix cache, cached keys and values go in front; in the last layer, optionally only the read
  queries (last_layer.py).
- Packed encoder rows (packed_encoder.py): each sequence sees itself in both directions.
- On CUDA, one block-sparse ``flex_attention`` kernel over the packed rows (:func:`flex_block_mask`).

On CPU a dense mask over a packed row would spend most attention compute on blocked pairs,
hence the per-group calls.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbone import hf_model

BLOCK_ATTENTION = "rewardlab_blocks"


def block_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """Attention within the groups of packed rows only: ``rewardlab_groups`` (shared-prompt
    groups, see :func:`_grouped_attention`), ``rewardlab_blocks`` (a list of (row, start, end,
    additive mask of the block): the packed encoder's bidirectional blocks) or
    ``rewardlab_flex``; plain SDPA without any."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    flex_mask = kwargs.pop("rewardlab_flex", None)
    if flex_mask is not None:  # one block-sparse kernel over the packed rows
        out = _flex_attention(query.device)(query, key, value, block_mask=flex_mask, scale=scaling,
                                            enable_gqa=key.shape[1] != query.shape[1])
        return out.transpose(1, 2).contiguous(), None
    groups = kwargs.pop("rewardlab_groups", None)
    if groups is not None:
        return _grouped_attention(module, query, key, value, groups, scaling, dropout,
                                  kwargs.pop("rewardlab_past", None), kwargs.pop("rewardlab_keep", None),
                                  kwargs.pop("rewardlab_last", None)), None
    blocks = kwargs.pop("rewardlab_blocks", None)
    if blocks is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    n_rep = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, n_rep), repeat_kv(value, n_rep)
    out = query.new_zeros(query.shape)  # padding positions stay 0; nothing reads them
    for row, start, end, mask in blocks:
        out[row:row + 1, :, start:end] = torch.nn.functional.scaled_dot_product_attention(
            query[row:row + 1, :, start:end], key[row:row + 1, :, start:end], value[row:row + 1, :, start:end],
            attn_mask=mask.to(query.dtype), scale=scaling, dropout_p=dropout if module.training else 0.0)
    return out.transpose(1, 2).contiguous(), None


def _grouped_attention(module, query, key, value, groups, scaling, dropout: float, past=None, keep=None,
                       last=None) -> torch.Tensor:
    """Attention of packed shared-prompt groups, computing only the allowed pairs: per group,
    the prompt causally (SDPA's fused causal kernel), then each completion against the whole
    prompt and causally itself, one call each (batching a group's completions padded to the
    longest was about 8% slower on HH replies, whose lengths vary widely). A dense mask over
    the group would also compute every completion against every other one.
    ``groups``: (row, start, prompt tokens in the row, completion lengths).

    ``past[g]``: a prefix-cache hit (entry, n) for group g: the first n prompt tokens are not in
    the row (so ``p`` below counts only the rest), their cached keys and values are put in front. ``keep[g]``: a list that receives
    this layer's keys and values of the group's whole prompt (cached part included), to cache.
    ``last``: (index of the last layer, per group the positions read in it); in that layer only
    those queries are computed (see last_layer.py), the rest of its output stays 0, unless a
    group reads more than half its tokens (the fused causal kernel is then cheaper)."""
    from transformers.integrations.sdpa_attention import repeat_kv

    from .prefix_cache import cached_kv

    n_rep = getattr(module, "num_key_value_groups", 1)
    layer = getattr(module, "layer_idx", None)
    if layer is None and any(x is not None for x in (past or []) + (keep or [])):
        raise RuntimeError(f"{type(module).__name__} has no layer_idx: the prefix cache cannot be used with it")
    raw_k, raw_v = key, value
    key, value = repeat_kv(key, n_rep), repeat_kv(value, n_rep)
    drop = dropout if module.training else 0.0
    out = query.new_zeros(query.shape)  # padding positions stay 0; nothing reads them
    for g, (row, start, p, lens) in enumerate(groups):
        q, k, v = (x[row, :, start:start + p + sum(lens)] for x in (query, key, value))  # (H, L, d)
        hit = cached_kv(past[g] if past else None, layer, n_rep)
        kp, vp = (k[:, :p], v[:, :p]) if hit is None else (torch.cat([hit[0], k[:, :p]], 1), torch.cat([hit[1], v[:, :p]], 1))
        if keep and keep[g] is not None:
            keep[g].append(_prompt_kv(raw_k, raw_v, row, start, p, past[g] if past else None, layer))
        reads = sorted(set(last[1][g])) if last is not None and layer == last[0] else None
        span = out[row, :, start:start + p + sum(lens)]  # a view: the pieces write into ``out``
        if reads is not None and 2 * len(reads) <= p + sum(lens):
            _read_only_attention(span, q, k, v, kp, vp, p, lens, reads, scaling, drop)
            continue
        _prompt_attention(span, q, k, v, kp, vp, p, scaling, drop)
        _completion_attention(span, q, k, v, kp, vp, p, lens, scaling, drop)
    return out.transpose(1, 2).contiguous()


def _prompt_kv(raw_k, raw_v, row: int, start: int, p: int, hit, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This layer's keys and values of a group's whole prompt (a cached part first), copied: a
    view would keep the whole batch's keys alive in the cache."""
    new_k, new_v = raw_k[row, :, start:start + p], raw_v[row, :, start:start + p]
    if hit is not None:
        old_k, old_v = hit[0].layers[layer]
        n = hit[1]
        new_k, new_v = torch.cat([old_k[:, :n], new_k], 1), torch.cat([old_v[:, :n], new_v], 1)
    return new_k.clone(), new_v.clone()


def _prompt_attention(span, q, k, v, kp, vp, p: int, scaling, drop: float) -> None:
    """The prompt causally: SDPA's fused causal kernel, or after a cached prefix (every cached
    token visible, then causally itself)."""
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    c = kp.shape[1] - p  # cached tokens in front
    if p and not c:
        span[:, :p] = sdpa(q[None, :, :p], k[None, :, :p], v[None, :, :p], is_causal=True, scale=scaling,
                           dropout_p=drop)[0]
    elif p:
        tri = torch.ones(p, p, dtype=torch.bool, device=q.device).tril()
        mask = torch.cat([tri.new_ones(p, c), tri], dim=1)
        span[:, :p] = sdpa(q[None, :, :p], kp[None], vp[None], attn_mask=mask, scale=scaling, dropout_p=drop)[0]


def _completion_attention(span, q, k, v, kp, vp, p: int, lens: list[int], scaling, drop: float) -> None:
    """Each completion alone: against the whole prompt (cached part included), causally itself
    (no padding, never a sibling)."""
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    c = kp.shape[1] - p
    tri = torch.ones(max(lens), max(lens), dtype=torch.bool, device=q.device).tril()
    at = p
    for n in lens:
        mask = torch.cat([tri.new_ones(n, c + p), tri[:n, :n]], dim=1)
        keys, values = torch.cat([kp, k[:, at:at + n]], dim=1), torch.cat([vp, v[:, at:at + n]], dim=1)
        span[:, at:at + n] = sdpa(q[None, :, at:at + n], keys[None], values[None], attn_mask=mask, scale=scaling,
                                  dropout_p=drop)[0]
        at += n


def _read_only_attention(span, q, k, v, kp, vp, p: int, lens: list[int], reads: list[int], scaling,
                         drop: float) -> None:
    """The last layer: only the read queries, each against what it may see (the prompt, cached
    part included, and its own completion causally); the other positions stay 0."""
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    c = kp.shape[1] - p
    x = torch.tensor(reads, dtype=torch.long, device=q.device)
    seg = torch.repeat_interleave(torch.arange(len(lens) + 1, device=q.device), torch.tensor([p, *lens], device=q.device))
    y = torch.arange(len(seg), device=q.device)
    mask = (y[None] <= x[:, None]) & ((seg[None] == 0) | (seg[None] == seg[x][:, None]))
    mask = torch.cat([mask.new_ones(len(x), c), mask], dim=1)[None, None]  # cached prefix: all visible
    keys, values = torch.cat([kp, k[:, p:]], dim=1), torch.cat([vp, v[:, p:]], dim=1)
    span[:, x] = sdpa(q[None, :, x], keys[None], values[None], attn_mask=mask, scale=scaling,
                      dropout_p=drop)[0].to(span.dtype)  # (autocast may give bf16)


_COMPILED = {}


def _flex_attention(device: torch.device):
    """torch's flex_attention: compiled (Triton) on CUDA; eager elsewhere (exact but slow,
    used by the CPU tests only)."""
    from torch.nn.attention.flex_attention import flex_attention

    if device.type != "cuda":
        return flex_attention
    if "cuda" not in _COMPILED:
        _COMPILED["cuda"] = torch.compile(flex_attention, dynamic=True)
    return _COMPILED["cuda"]


def flex_available() -> bool:
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


def _head_dim(model: nn.Module | None) -> int | None:
    config = getattr(hf_model(model), "config", None) if model is not None else None
    if config is None:
        return None
    heads = getattr(config, "num_attention_heads", None)
    return getattr(config, "head_dim", None) or (config.hidden_size // heads if heads else None)


def pick_attention(attention: str, device: torch.device, model: nn.Module | None = None,
                   half: bool = False) -> str | None:
    """The packed forward's kernel: 'blocks', 'flex', or None (use the padded forward).

    'auto': blocks on CPU. On CUDA a loop of small SDPA calls is launch-bound (measured 4x
    slower than TRL's padded forward on an H100), so 'auto' takes the compiled flex kernel
    under bf16/fp16 (measured 1.2-1.5x TRL, 0.42x memory) and the padded forward otherwise:
    in fp32, torch 2.11's compiled flex kernel failed to lower for packed rows
    (NoValidChoicesError), and it needs a head dimension >= 16."""
    flex_ok = flex_available() and (device.type != "cuda" or ((_head_dim(model) or 16) >= 16 and half))
    if attention == "auto":
        return "blocks" if device.type != "cuda" else "flex" if flex_ok else None
    if attention == "flex" and not flex_ok:
        raise RuntimeError("attention 'flex' needs torch >= 2.5, and on CUDA --bf16 and a head dimension >= 16")
    return attention


def flex_block_mask(batch, device: torch.device):
    """A block-sparse mask for the packed rows: a token sees earlier tokens of its own group's
    prompt and of its own completion (same rule as the per-group masks)."""
    from torch.nn.attention.flex_attention import create_block_mask

    doc, seg = batch.doc.to(device), batch.seg.to(device)

    def allowed(b, h, q, kv):
        return (doc[b, q] == doc[b, kv]) & (kv <= q) & ((seg[b, kv] == 0) | (seg[b, kv] == seg[b, q]))

    rows, width = doc.shape
    # Compiled on CUDA: building the mask eagerly costs about as much as the attention itself.
    return create_block_mask(allowed, B=rows, H=None, Q_LEN=width, KV_LEN=width, device=device,
                             _compile=device.type == "cuda")


def use_block_attention(model: nn.Module) -> None:
    """Register and select :func:`block_attention` on a causal transformers model."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    def block_mask(*args, attention_mask=None, **kwargs):
        # Packed rows come without a padding mask and block_attention builds one small mask
        # per group, so skip the dense T x T mask; padded inputs get the usual SDPA mask.
        return None if attention_mask is None else sdpa_mask(*args, attention_mask=attention_mask, **kwargs)

    AttentionInterface.register(BLOCK_ATTENTION, block_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(BLOCK_ATTENTION, block_mask)
    if model.config._attn_implementation != BLOCK_ATTENTION:
        model.set_attn_implementation(BLOCK_ATTENTION)
    if model.config._attn_implementation != BLOCK_ATTENTION:  # transformers may refuse, with a warning
        raise RuntimeError(f"{type(model).__name__} does not accept a custom attention implementation; "
                           "train with --no-shared-prompt")


