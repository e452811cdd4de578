"""Shared-prompt forward: encode a prompt once for all of its completions (causal backbones).

A pair (or K completions) of one prompt becomes ONE row:

    [ prompt | completion 1 | completion 2 | ... | completion K | padding ]

with a 4D attention mask in which every completion token sees the prompt and the earlier
tokens of its own completion, never another completion; position ids restart after the
prompt for every completion. Each completion therefore gets exactly the hidden states it
would get alone, and the prompt is computed once instead of K times (Wang & Hegde 2024,
"prefix sharing"). The reward of completion k is read at its last token.

The prompt here is the longest common *token* prefix of the K full sequences, so a token
that straddles the prompt/completion boundary is handled exactly.

On CPU a dense mask over a packed row would spend most attention compute on blocked
pairs, so attention runs group by group, and within a group the prompt causally, then each
completion against the prompt and itself (registered with transformers as
the attention implementation ``rewardlab_blocks``, which falls back to SDPA for ordinary
inputs).

Encoders attend in both directions (the prompt would see the completions), so they use the
plain padded forward instead; :func:`supports_shared_prompt` tells which applies.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .backbone import hf_model, reads_last_token
from .last_layer import reads_only


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


def flex_block_mask(batch: dict, device: torch.device):
    """A block-sparse mask for the packed rows: a token sees earlier tokens of its own group's
    prompt and of its own completion (same rule as the per-group masks)."""
    from torch.nn.attention.flex_attention import create_block_mask

    doc, seg = batch["doc"].to(device), batch["seg"].to(device)

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


def supports_shared_prompt(model: nn.Module, attention: str = "auto", device: torch.device | None = None,
                           half: bool | None = None) -> bool:
    """Causal decoders with a ``score`` head whose attention goes through transformers'
    attention interface, all layers full attention, and no sliding window, logit softcap or
    attention sinks (which the block path does not apply). Anything else uses the padded
    forward, which is always exact."""
    model = hf_model(model)
    if not reads_last_token(model):
        return False
    config = model.config
    can_set = getattr(type(model), "_can_set_attn_implementation", None)
    if not callable(can_set) or not can_set():
        return False
    if any(t != "full_attention" for t in (getattr(config, "layer_types", None) or [])):
        return False
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return False
    if any(getattr(config, k, None) for k in ("attn_logit_softcapping", "sinks")):
        return False
    device = device or next(model.parameters()).device
    if half is None:
        half = next(model.parameters()).dtype in (torch.bfloat16, torch.float16)
    return pick_attention(attention, torch.device(device), model, half) is not None


def common_prefix_length(sequences: list[list[int]]) -> int:
    """Longest common prefix of the sequences, leaving at least one token to each."""
    limit = min(len(s) for s in sequences) - 1
    n = 0
    while n < limit and all(s[n] == sequences[0][n] for s in sequences):
        n += 1
    return n


def prompt_length(seqs: list[list[int]]) -> int:
    """The prompt segment of a group: its common prefix (a group of one: all but the last token)."""
    return common_prefix_length(seqs) if len(seqs) > 1 else max(0, len(seqs[0]) - 1)


def layout(groups: list[list[list[int]]], reads: list[list[list[int]]] | None = None,
           skip: list[int] | None = None) -> list[tuple[list[int], list[int], list[int], list[int]]]:
    """Per group: (token ids, position ids, segment ids, the row positions read). Segment 0 is
    the prompt, segment k is completion k (1-based). ``reads[g][k]``: the token indices of
    sequence k whose outputs are wanted (default: its last token, where a reward is read);
    an index inside the shared prefix is read there (the prefix's hidden states are the same
    for every sequence that shares it). ``skip[g]``: leading prompt tokens left out of the row
    (their keys and values come from the prefix cache; nothing there can be read)."""
    rows = []
    for g, seqs in enumerate(groups):
        p, c = prompt_length(seqs), skip[g] if skip else 0
        ids, pos, seg, cols = list(seqs[0][c:p]), list(range(c, p)), [0] * (p - c), []
        for k, s in enumerate(seqs, 1):
            tail = s[p:]
            start = len(ids)
            ids += tail
            pos += range(p, p + len(tail))
            seg += [k] * len(tail)
            wanted = [len(s) - 1] if reads is None else reads[g][k - 1]
            if any(i < c for i in wanted):
                raise ValueError("a read position lies in the cached prefix")
            cols += [i - c if i < p else start + i - p for i in wanted]
        rows.append((ids, pos, seg, cols))
    return rows


def build_batch(groups: list[list[list[int]]], pad_id: int, dtype: torch.dtype = torch.float32,
                packed: bool = True, reads: list[list[list[int]]] | None = None,
                hidden_reads: list[list[list[int]]] | None = None, skip: list[int] | None = None) -> dict:
    """Tensors for :func:`shared_prompt_outputs` (and :func:`shared_prompt_rewards`).

    ``packed=True`` (padding-free): every group of the batch goes into ONE row; groups cannot
    see each other (block attention) and their positions restart, so rewards are unchanged
    and no compute goes to padding. ``packed=False``: one right-padded row per group.
    ``hidden_reads``: positions whose hidden states are wanted too (a joint language-model loss).
    ``skip``: prompt tokens per group that come from the prefix cache (see :func:`layout`).
    """
    laid = layout(groups, reads, skip)
    sizes = [len(r[0]) for r in laid]
    rows = [list(range(len(groups)))] if packed else [[i] for i in range(len(groups))]
    width = max(sum(sizes[i] for i in row) for row in rows)
    n = len(rows)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    pos = torch.zeros((n, width), dtype=torch.long)
    doc = torch.full((n, width), -1, dtype=torch.long)  # group of each token (-1: padding)
    seg = torch.full((n, width), -1, dtype=torch.long)  # 0: prompt, k: completion k
    where: dict[int, tuple[int, int]] = {}  # group -> (row, first column)
    for r, row in enumerate(rows):
        at = 0
        for g in row:
            g_ids, g_pos, g_seg, _ = laid[g]
            ids[r, at:at + len(g_ids)] = torch.tensor(g_ids)
            pos[r, at:at + len(g_ids)] = torch.tensor(g_pos)
            doc[r, at:at + len(g_ids)] = g
            seg[r, at:at + len(g_ids)] = torch.tensor(g_seg)
            where[g] = (r, at)
            at += len(g_ids)
    blocks = []  # per group: (row, start, prompt length, completion lengths), for the block attention
    for g, (_, _, g_seg, _) in enumerate(laid):
        r, start = where[g]
        blocks.append((r, start, g_seg.count(0), [g_seg.count(k) for k in range(1, len(groups[g]) + 1)]))
    rows_idx = [where[g][0] for g in range(len(groups)) for _ in laid[g][3]]
    cols_idx = [where[g][1] + c for g in range(len(groups)) for c in laid[g][3]]
    out = {"input_ids": ids, "position_ids": pos, "blocks": blocks, "doc": doc, "seg": seg,
           "reward_rows": torch.tensor(rows_idx, dtype=torch.long), "reward_cols": torch.tensor(cols_idx, dtype=torch.long),
           "group_reads": [r[3] for r in laid]}  # per group, the read positions from its start
    if hidden_reads is not None:
        more = layout(groups, hidden_reads, skip)
        out["hidden_rows"] = torch.tensor([where[g][0] for g in range(len(groups)) for _ in more[g][3]], dtype=torch.long)
        out["hidden_cols"] = torch.tensor([where[g][1] + c for g in range(len(groups)) for c in more[g][3]],
                                          dtype=torch.long)
    return out


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def head_of(model: nn.Module):
    """The head applied to picked hidden states: ``score`` (or ``classifier``, GPT-2 style),
    after the dropout that token-classification models put before it (identity in eval mode)."""
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


def shared_prompt_outputs(model: nn.Module, batch: dict, attention: str = "auto", past: list | None = None,
                          keep: list | None = None) -> torch.Tensor:
    """Head outputs (R, num_labels) at every read position, group by group, in input order.

    ``attention``: 'blocks' (one SDPA call per group; best on CPU), 'flex' (one block-sparse
    flex_attention kernel per layer; best on GPU) or 'auto'. Both give the same outputs.
    ``past``/``keep``: prefix-cache hits and prompts to cache, per group (blocks only; see
    :func:`_grouped_attention`)."""
    device = batch["input_ids"].device
    model = hf_model(model)
    use_block_attention(model)
    kernel = _kernel(model, device, attention)
    if (past or keep) and kernel == "flex":  # the rows were built without the cached tokens
        raise RuntimeError("the prefix cache needs the block attention, not flex")
    if kernel == "flex":
        extra = {"rewardlab_flex": flex_block_mask(batch, device)}
    else:
        extra = {"rewardlab_groups": batch["blocks"], "rewardlab_past": past, "rewardlab_keep": keep}
    rows, cols = batch["reward_rows"].to(device), batch["reward_cols"].to(device)
    # a joint language-model loss reads hidden states at many positions: the last layer runs whole
    pruned = reads_only(model, rows, cols, tuple(batch["input_ids"].shape)) \
        if "hidden_rows" not in batch and "group_reads" in batch else contextlib.nullcontext()
    with pruned as last_index:
        if last_index is not None and kernel != "flex":
            extra["rewardlab_last"] = (last_index, batch["group_reads"])
        hidden = model.base_model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                                  use_cache=False, **extra).last_hidden_state
    picked = hidden[rows, cols]
    if "hidden_rows" in batch:  # and the hidden states a language-model loss reads
        return head_of(model)(picked), hidden[batch["hidden_rows"].to(device), batch["hidden_cols"].to(device)]
    return head_of(model)(picked)


def shared_prompt_rewards(model: nn.Module, batch: dict, attention: str = "auto") -> torch.Tensor:
    """Rewards of every completion (read at its last token), flattened group by group."""
    return shared_prompt_outputs(model, batch, attention)[:, 0]


def group_by_prefix(sequences: list[list[int]], min_shared: int = 8, longest_group: int = 256) -> list[list[int]]:
    """Indices of independent sequences, grouped so that each group shares a token prefix of
    at least ``min_shared`` tokens (the n samples of one prompt, sent as whole texts); the
    others are groups of one. Any grouping is exact (the shared-prompt layout gives every
    sequence the hidden states it gets alone); this one only decides how much is saved.

    Sorting puts sequences with a common start next to each other, and a sorted run's common
    prefix is the smallest of the common prefixes of its adjacent members. Greedy runs would merge two prompts
    that merely begin alike (every HH prompt starts with "Human:", every chat with its system
    prompt) and then share only those first tokens; instead the runs are chosen by dynamic
    programming to save the most tokens: a run of n members sharing p tokens saves (n - 1) * p.
    ``longest_group`` bounds the work (runs longer than it are split)."""
    order = sorted(range(len(sequences)), key=lambda i: sequences[i])
    seqs = [sequences[i] for i in order]
    near = [0] + [common_prefix_length([seqs[j - 1], seqs[j]]) for j in range(1, len(seqs))]
    saved = [0] * (len(seqs) + 1)  # saved[j]: the most tokens saved over the first j sequences
    cut = [0] * (len(seqs) + 1)  # where the last run of that best grouping starts
    for b in range(len(seqs)):
        saved[b + 1], cut[b + 1] = saved[b], b
        shared = None
        for a in range(b - 1, max(-1, b - longest_group), -1):
            shared = near[a + 1] if shared is None else min(shared, near[a + 1])
            if shared < min_shared:
                break
            if saved[a] + (b - a) * shared > saved[b + 1]:
                saved[b + 1], cut[b + 1] = saved[a] + (b - a) * shared, a
    groups, end = [], len(seqs)
    while end:
        groups.append([order[i] for i in range(cut[end], end)])
        end = cut[end]
    return groups[::-1]


def tokens_processed(groups: list[list[list[int]]]) -> tuple[int, int]:
    """(tokens the shared-prompt layout processes, tokens of the plain per-sequence layout)."""
    shared = sum(len(r[0]) for r in layout(groups))
    plain = sum(len(s) for g in groups for s in g)
    return shared, plain


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
        rewards = shared_prompt_outputs(model, to_device(batch, device), past=past, keep=keep)[:, 0]
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
