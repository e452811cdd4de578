"""Shared-prompt forward: encode a prompt once for all of its completions (causal backbones).

A prompt's K completions are laid out as one row (layout.py) in which every completion sees the
prompt and its own earlier tokens, never another completion (the attention, attention.py).
Each completion therefore gets exactly the hidden states it would get alone, and the prompt is
computed once instead of K times (Wang & Hegde 2024, "prefix sharing"). The reward of
completion k is read at its last token. This module: which models can use it, the forward, and
the scoring loop (with the prefix cache, prefix_cache.py).

Encoders attend in both directions (the prompt would see the completions), so they use the
plain padded forward instead; :func:`supports_shared_prompt` tells which applies.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .attention import flex_block_mask, pick_attention, use_block_attention
from .backbone import has_lm_head, hf_model, reads_last_token, rewards_of
from .batch import SharedBatch
from .last_layer import reads_only
from .layout import build_batch, layout, prompt_length


def supports_shared_prompt(model: nn.Module, attention: str = "auto", device: torch.device | None = None,
                           half: bool | None = None) -> bool:
    """Causal decoders with a ``score`` head whose attention goes through transformers'
    attention interface, all layers full attention, and no sliding window, logit softcap or
    attention sinks (which the block path does not apply). Anything else uses the padded
    forward, which is always exact."""
    model = hf_model(model)
    if not (reads_last_token(model) or has_lm_head(model)):
        return False
    config = model.config
    can_set = getattr(type(model), "_can_set_attn_implementation", None)
    if not callable(can_set) or not can_set():
        return False
    if any(t != "full_attention" for t in (getattr(config, "layer_types", None) or [])):
        return False
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return False
    if any(getattr(config, k, None) for k in ("attn_logit_softcapping", "final_logit_softcapping", "sinks")):
        return False
    device = device or next(model.parameters()).device
    if half is None:
        half = next(model.parameters()).dtype in (torch.bfloat16, torch.float16)
    return pick_attention(attention, torch.device(device), model, half) is not None


def head_of(model: nn.Module):
    """The head applied to picked hidden states: ``score`` (or ``classifier``, GPT-2 style),
    after the dropout that token-classification models put before it (identity in eval mode); a
    causal language model's language-model head."""
    if has_lm_head(model):
        return model.get_output_embeddings()
    head = model.score if isinstance(getattr(model, "score", None), nn.Module) else model.classifier  # GPT-2 style
    drop = getattr(model, "dropout", None)
    if isinstance(drop, nn.Module):
        return lambda h: head(drop(h))
    return head


def _kernel(model: nn.Module, device: torch.device, attention: str = "auto") -> str | None:
    half = torch.is_autocast_enabled("cuda") or next(model.parameters()).dtype in (torch.bfloat16, torch.float16)
    return pick_attention(attention, device, model, half)


def can_use_prefix_cache(model: nn.Module) -> bool:
    """The cache is read by the block attention only, which needs each attention layer's index."""
    model = hf_model(model)
    device = next(model.parameters()).device
    attention = [m for m in model.modules() if hasattr(m, "num_key_value_groups")]
    return (_kernel(model, device) == "blocks" and bool(attention)
            and all(getattr(m, "layer_idx", None) is not None for m in attention))


def shared_prompt_outputs(model: nn.Module, batch: SharedBatch, attention: str = "auto", past: list | None = None,
                          keep: list | None = None):
    """Head outputs (R, num_labels) at every read position, group by group, in input order.

    ``attention``: 'blocks' (one SDPA call per group; best on CPU), 'flex' (one block-sparse
    flex_attention kernel per layer; best on GPU) or 'auto'. Both give the same outputs.
    ``past``/``keep``: prefix-cache hits and prompts to cache, per group (blocks only; see
    attention.py: ``_grouped_attention``)."""
    device = batch.input_ids.device
    model = hf_model(model)
    use_block_attention(model)
    kernel = _kernel(model, device, attention)
    if (past or keep) and kernel == "flex":  # the rows were built without the cached tokens
        raise RuntimeError("the prefix cache needs the block attention, not flex")
    if kernel == "flex":
        extra = {"rewardlab_flex": flex_block_mask(batch, device)}
    else:
        extra = {"rewardlab_groups": batch.blocks, "rewardlab_past": past, "rewardlab_keep": keep}
    rows, cols = batch.reward_rows.to(device), batch.reward_cols.to(device)
    # a joint language-model loss reads hidden states at many positions: the last layer runs whole
    pruned = reads_only(model, rows, cols, tuple(batch.input_ids.shape)) \
        if batch.hidden_rows is None else contextlib.nullcontext()
    with pruned as last_index:
        if last_index is not None and kernel != "flex":
            extra["rewardlab_last"] = (last_index, batch.group_reads)
        hidden = model.base_model(input_ids=batch.input_ids, position_ids=batch.position_ids,
                                  use_cache=False, **extra).last_hidden_state
    picked = hidden[rows, cols]
    if batch.hidden_rows is not None:  # and the hidden states a language-model loss reads
        return head_of(model)(picked), hidden[batch.hidden_rows.to(device), batch.hidden_cols.to(device)]
    return head_of(model)(picked)


def shared_prompt_rewards(model: nn.Module, batch: SharedBatch, attention: str = "auto") -> torch.Tensor:
    """Rewards of every completion (read at its last token), flattened group by group."""
    return rewards_of(shared_prompt_outputs(model, batch, attention))


@torch.no_grad()
def score_groups_shared(model: nn.Module, groups: list[list[list[int]]], pad_id: int, batch_size: int = 16,
                        max_tokens: int = 16384, cache=None) -> list[list[float]]:
    """Rewards for groups of sequences sharing a prompt, without gradients, in input order.

    Groups are sorted by their packed length and batched under a token budget, like
    :func:`rewardlab.models.backbone.score_sequences`. ``cache``: a :class:`PrefixCache` (models/
    prefix_cache.py) that prompts are looked up in and added to; used with the block attention.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    if cache is not None and not can_use_prefix_cache(model):
        cache = None
    sizes = [len(r[0]) for r in layout(groups)]
    order = sorted(range(len(groups)), key=lambda i: (-sizes[i], i))
    out: list[list[float]] = [[] for _ in groups]
    start = 0
    while start < len(order):
        n = max(1, min(batch_size, max_tokens // max(1, sizes[order[start]])))
        idx = order[start:start + n]
        start += n
        chunk = [groups[i] for i in idx]
        past, keep, prompts = None, None, [g[0][:prompt_length(g)] for g in chunk]
        if cache is not None:
            past = [cache.lookup(p) for p in prompts]
            past = [hit if hit[0] is not None else None for hit in past]
            # cache a prompt unless it is too short to be looked up or was entirely in the cache, and
            # copy no more of this chunk's keys and values than the cache can hold
            keep, room = [], cache.room_tokens()
            for p, hit in zip(prompts, past):
                wanted = len(p) >= cache.block and len(p) > (hit[1] if hit else 0) and len(p) <= room
                room -= len(p) if wanted else 0
                keep.append([] if wanted else None)
        batch = build_batch(chunk, pad_id, skip=[hit[1] if hit else 0 for hit in past] if past else None)
        rewards = rewards_of(shared_prompt_outputs(model, batch.to(device), past=past, keep=keep))
        for p, layers, hit in zip(prompts, keep or [], past or []):
            if layers:
                cache.add(p, layers, extends=hit[0] if hit else None)
        rewards = rewards.float().cpu().tolist()
        pos = 0
        for i in idx:
            out[i] = rewards[pos:pos + len(groups[i])]
            pos += len(groups[i])
    model.train(was_training)
    return out
