"""The layout of shared-prompt rows: a prompt and its K completions as ONE row,

    [ prompt | completion 1 | completion 2 | ... | completion K | padding ]

position ids restart after the prompt for every completion, and each completion token sees
the prompt and the earlier tokens of its own completion only (the attention, attention.py).
The prompt is the longest common *token* prefix of the K full sequences, so a token that
straddles the prompt/completion boundary is handled exactly. Also here: which independent
texts share a prefix (:func:`group_by_prefix`, the n samples of one prompt sent as whole texts).
"""

from __future__ import annotations

import torch

from .batch import SharedBatch


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
                hidden_reads: list[list[list[int]]] | None = None, skip: list[int] | None = None) -> SharedBatch:
    """The rows for :func:`rewardlab.models.shared_prompt.shared_prompt_outputs`.

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
    doc = torch.full((n, width), -1, dtype=torch.long)
    seg = torch.full((n, width), -1, dtype=torch.long)
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
    blocks = []
    for g, (_, _, g_seg, _) in enumerate(laid):
        r, start = where[g]
        blocks.append((r, start, g_seg.count(0), [g_seg.count(k) for k in range(1, len(groups[g]) + 1)]))

    def positions(laid_out):  # (rows, columns) of every read position, group by group
        rows_idx = [where[g][0] for g in range(len(groups)) for _ in laid_out[g][3]]
        cols_idx = [where[g][1] + c for g in range(len(groups)) for c in laid_out[g][3]]
        return torch.tensor(rows_idx, dtype=torch.long), torch.tensor(cols_idx, dtype=torch.long)

    hidden = positions(layout(groups, hidden_reads, skip)) if hidden_reads is not None else (None, None)
    return SharedBatch(ids, pos, doc, seg, blocks, *positions(laid), [r[3] for r in laid], *hidden)


def tokens_processed(groups: list[list[list[int]]]) -> tuple[int, int]:
    """(tokens the shared-prompt layout processes, tokens of the plain per-sequence layout)."""
    shared = sum(len(r[0]) for r in layout(groups))
    plain = sum(len(s) for g in groups for s in g)
    return shared, plain


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
