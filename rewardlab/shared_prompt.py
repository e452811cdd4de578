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

Encoders attend in both directions (the prompt would see the completions), so they use the
plain padded forward instead; :func:`supports_shared_prompt` tells which applies.
"""

from __future__ import annotations

import torch
from torch import nn

from .models import hf_model, reads_last_token


def supports_shared_prompt(model: nn.Module) -> bool:
    """Causal decoders with a ``score`` head: the ones whose tokens only look back."""
    return reads_last_token(model)


def common_prefix_length(sequences: list[list[int]]) -> int:
    """Longest common prefix of the sequences, leaving at least one token to each."""
    limit = min(len(s) for s in sequences) - 1
    n = 0
    while n < limit and all(s[n] == sequences[0][n] for s in sequences):
        n += 1
    return n


def layout(groups: list[list[list[int]]]) -> list[tuple[list[int], list[int], list[int], list[int]]]:
    """Per group: (token ids, position ids, segment ids, index of each completion's last token).
    Segment 0 is the prompt, segment k is completion k (1-based)."""
    rows = []
    for seqs in groups:
        p = common_prefix_length(seqs) if len(seqs) > 1 else len(seqs[0]) - 1
        ids, pos, seg, last = list(seqs[0][:p]), list(range(p)), [0] * p, []
        for k, s in enumerate(seqs, 1):
            tail = s[p:]
            ids += tail
            pos += range(p, p + len(tail))
            seg += [k] * len(tail)
            last.append(len(ids) - 1)
        rows.append((ids, pos, seg, last))
    return rows


def build_batch(groups: list[list[list[int]]], pad_id: int, dtype: torch.dtype = torch.float32) -> dict:
    """Tensors for :func:`shared_prompt_rewards`: one row per group, right-padded."""
    rows = layout(groups)
    width = max(len(r[0]) for r in rows)
    n = len(rows)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    pos = torch.zeros((n, width), dtype=torch.long)
    seg = torch.full((n, width), -1, dtype=torch.long)
    for i, (r_ids, r_pos, r_seg, _) in enumerate(rows):
        ids[i, :len(r_ids)] = torch.tensor(r_ids)
        pos[i, :len(r_pos)] = torch.tensor(r_pos)
        seg[i, :len(r_seg)] = torch.tensor(r_seg)
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    q, k = seg[:, :, None], seg[:, None, :]
    allowed = causal & (k != -1) & ((k == 0) | (k == q))
    allowed |= torch.eye(width, dtype=torch.bool)  # padding rows see themselves: no all-masked softmax row
    mask = torch.zeros((n, 1, width, width), dtype=dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    last = [(i, j) for i, r in enumerate(rows) for j in r[3]]
    return {"input_ids": ids, "position_ids": pos, "attention_mask": mask,
            "reward_rows": torch.tensor([i for i, _ in last]), "reward_cols": torch.tensor([j for _, j in last])}


def shared_prompt_rewards(model: nn.Module, batch: dict) -> torch.Tensor:
    """Rewards of every completion, flattened group by group, in input order."""
    device = batch["input_ids"].device
    model = hf_model(model)
    hidden = model.base_model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                              attention_mask=batch["attention_mask"].to(device), use_cache=False).last_hidden_state
    picked = hidden[batch["reward_rows"].to(device), batch["reward_cols"].to(device)]
    return model.score(picked)[:, 0]


def tokens_processed(groups: list[list[list[int]]]) -> tuple[int, int]:
    """(tokens the shared-prompt layout processes, tokens of the plain per-sequence layout)."""
    shared = sum(len(r[0]) for r in layout(groups))
    plain = sum(len(s) for g in groups for s in g)
    return shared, plain


@torch.no_grad()
def score_groups_shared(model: nn.Module, groups: list[list[list[int]]], pad_id: int, batch_size: int = 16,
                        max_tokens: int = 16384) -> list[list[float]]:
    """Rewards for groups of sequences sharing a prompt, without gradients, in input order.

    Groups are sorted by their packed length and batched under a token budget, like
    :func:`rewardlab.models.score_sequences`.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sizes = [len(r[0]) for r in layout(groups)]
    order = sorted(range(len(groups)), key=lambda i: (-sizes[i], i))
    out: list[list[float]] = [[] for _ in groups]
    start = 0
    while start < len(order):
        n = max(1, min(batch_size, max_tokens // max(1, sizes[order[start]])))
        idx = order[start:start + n]
        start += n
        batch = build_batch([groups[i] for i in idx], pad_id)
        rewards = shared_prompt_rewards(model, {k: v.to(device) for k, v in batch.items()}).float().cpu().tolist()
        pos = 0
        for i in idx:
            out[i] = rewards[pos:pos + len(groups[i])]
            pos += len(groups[i])
    model.train(was_training)
    return out
