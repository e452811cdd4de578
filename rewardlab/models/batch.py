"""A micro-batch's tensors, one small record per forward path (heads.py picks the path once,
by :func:`rewardlab.models.heads.forward_path`, and the record's type says which forward runs):

- :class:`SharedBatch`: shared-prompt packed rows of causal backbones (layout.py);
- :class:`PackedBatch`: one padding-free row of encoder sequences (packed_encoder.py);
- :class:`PaddedBatch`: one right-padded row per sequence (anything else).

Outputs come back in the same order on every path: group by group, sequence by sequence, read
position by read position.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


class _Moves:
    def to(self, device):
        """The same record with its tensors on ``device`` (lists stay as they are)."""
        return dataclasses.replace(self, **{f.name: getattr(self, f.name).to(device)
                                            for f in dataclasses.fields(self) if torch.is_tensor(getattr(self, f.name))})


@dataclass
class SharedBatch(_Moves):
    """Rows of [prompt | completion 1 | ... | completion K] groups (see layout.py)."""

    input_ids: torch.Tensor  # (rows, width)
    position_ids: torch.Tensor  # restart after the prompt for every completion
    doc: torch.Tensor  # the group of each token (-1: padding)
    seg: torch.Tensor  # 0: the prompt, k: completion k, -1: padding
    blocks: list  # per group: (row, start, prompt tokens in the row, completion lengths)
    reward_rows: torch.Tensor  # where outputs are read: (row, column) pairs, in output order
    reward_cols: torch.Tensor
    group_reads: list  # per group, its read positions from the group's start (last_layer.py)
    hidden_rows: torch.Tensor | None = None  # positions whose hidden states a joint LM loss reads
    hidden_cols: torch.Tensor | None = None


@dataclass
class PackedBatch(_Moves):
    """Encoder sequences in one padding-free row, attention within each sequence only."""

    ids: torch.Tensor  # (1, total tokens)
    positions: torch.Tensor  # restart at 0 for every sequence
    starts: torch.Tensor  # each sequence's first token ([CLS], read by the pooler)
    blocks: list  # per sequence: (row, start, end, additive mask)
    reads: torch.Tensor | None = None  # token-classification models: the columns read


@dataclass
class PaddedBatch(_Moves):
    """One right-padded row per sequence."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    read_rows: torch.Tensor | None = None  # token-classification models: the positions read
    read_cols: torch.Tensor | None = None
    hidden_rows: torch.Tensor | None = None  # positions whose hidden states a joint LM loss reads
    hidden_cols: torch.Tensor | None = None
