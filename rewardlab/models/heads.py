"""The forward that training wraps (DDP/FSDP): token ids in, one reward per completion out.

A micro-batch is a list of groups, one per prompt, each with its K completions (K may vary
from prompt to prompt). Rewards come back flat, group by group, completion by completion,
whichever path computed them:
- the shared-prompt packed forward (causal backbones): each prompt encoded once for its K
  completions, see shared_prompt.py;
- the padded forward (encoders, or --no-shared-prompt): one right-padded row per completion.
- the packed forward (BERT-style encoders on CPU): every sequence in one padding-free row,
  attention within each sequence only, see packed_encoder.py;
Either way every completion is forwarded exactly once per step.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.encode import collate
from .backbone import compute_rewards
from .packed_encoder import build_packed, packed_encoder_rewards
from .shared_prompt import build_batch, shared_prompt_rewards, to_device


class CompletionRewards(nn.Module):
    """Wraps a transformers reward model: a batch from :func:`make_batch` in, rewards (N,) out."""

    def __init__(self, model: nn.Module, attention: str = "auto"):
        super().__init__()
        self.model, self.attention = model, attention
        # FSDP's transformer-based wrapping looks for the layer classes here.
        self._no_split_modules = getattr(model, "_no_split_modules", None)

    def forward(self, batch: dict) -> torch.Tensor:
        if "reward_rows" in batch:
            return shared_prompt_rewards(self.model, batch, self.attention)
        if "packed_ids" in batch:
            return packed_encoder_rewards(self.model, batch)
        return compute_rewards(self.model, batch["input_ids"], batch["attention_mask"])


def make_batch(groups: list[list[list[int]]], pad_id: int, path: str, device) -> dict:
    """Micro-batch tensors for :class:`CompletionRewards` (``path``: shared, packed or padded);
    rewards come back as [g0 c0, g0 c1, ..., g1 c0, ...] on every path."""
    if path == "shared":
        batch = build_batch(groups, pad_id)
    elif path == "packed":
        batch = build_packed([s for g in groups for s in g])
    else:
        batch = collate([s for g in groups for s in g], pad_id)
    return to_device(batch, device)
