"""The forward that training wraps (DDP/FSDP): token ids in, head outputs out.

A micro-batch is a list of groups, one per prompt, each with its K sequences (K may vary from
prompt to prompt; K = 1 for the pointwise kinds). Outputs come back flat, group by group,
sequence by sequence, read position by read position, whichever path computed them:
- the shared-prompt packed forward (causal backbones): each prompt encoded once for its K
  completions, see shared_prompt.py (rows: layout.py);
- the packed forward (BERT-style encoders on CPU): every sequence in one padding-free row,
  attention within each sequence only, see packed_encoder.py;
- the padded forward (anything else, or --no-shared-prompt): one right-padded row per sequence.
Either way every sequence is forwarded exactly once per step.

Where outputs are read: a sequence-classification model (a reward, N attribute ratings) gives
one output vector per sequence, at its last token (decoders) or from the pooler (encoders). A
token-classification model (outcome, process, value models) gives one at each index of
``reads[g][k]``, the token positions that carry a label.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.encode import collate
from ..errors import ConfigError
from .backbone import compute_outputs, hf_model, length_batches, rewards_of, token_outputs
from .packed_encoder import build_packed, packed_encoder_outputs, per_token, supports_packed_encoder
from .batch import PackedBatch, PaddedBatch, SharedBatch
from .layout import build_batch, group_by_prefix, layout
from .shared_prompt import head_of, shared_prompt_outputs, supports_shared_prompt


Batch = SharedBatch | PackedBatch | PaddedBatch


def head_outputs(model: nn.Module, batch: Batch, attention: str = "auto"):
    """(R, num_labels) for a batch from :func:`make_batch`; with hidden reads in it, also the
    hidden states (R2, H) at those positions (causal token models)."""
    if isinstance(batch, SharedBatch):
        return shared_prompt_outputs(model, batch, attention)
    if isinstance(batch, PackedBatch):
        return packed_encoder_outputs(model, batch)
    if batch.hidden_rows is not None:  # padded rows, a causal token model: its base, then its own head
        inner = hf_model(model)
        hidden = inner.base_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                  use_cache=False).last_hidden_state
        return head_of(inner)(hidden[batch.read_rows, batch.read_cols]), hidden[batch.hidden_rows, batch.hidden_cols]
    if batch.read_rows is not None:
        return token_outputs(model, batch.input_ids, batch.attention_mask, batch.read_rows, batch.read_cols)
    return compute_outputs(model, batch.input_ids, batch.attention_mask)


class HeadOutputs(nn.Module):
    """Wraps a transformers model: a batch from :func:`make_batch` in, (R, num_labels) out, or
    with ``scalar`` one reward per sequence, (R,) ((R, N) with N reward heads). A batch with ``hidden_reads`` also returns
    language-model logits there, from the input embeddings (tied output embeddings only)."""

    def __init__(self, model: nn.Module, attention: str = "auto", scalar: bool = False):
        super().__init__()
        self.model, self.attention, self.scalar = model, attention, scalar
        # FSDP's transformer-based wrapping looks for the layer classes here.
        self._no_split_modules = getattr(model, "_no_split_modules", None)

    def forward(self, batch: Batch):
        out = head_outputs(self.model, batch, self.attention)
        if isinstance(out, tuple):  # next-token logits for a joint language-model loss
            inner = hf_model(self.model)
            if not getattr(inner.config, "tie_word_embeddings", False):
                raise ConfigError("--lm-coef needs a backbone whose output embeddings are its input embeddings "
                                  "(tie_word_embeddings): a token classifier keeps no separate LM head")
            embeddings = inner.get_input_embeddings().weight
            return out[0], out[1] @ embeddings.T
        return rewards_of(out) if self.scalar else out


def completion_rewards(model: nn.Module, attention: str = "auto") -> HeadOutputs:
    """The preference kind's forward: one reward per completion."""
    return HeadOutputs(model, attention, scalar=True)


def make_batch(groups: list[list[list[int]]], pad_id: int, path: str, device,
               reads: list[list[list[int]]] | None = None, hidden_reads: list[list[list[int]]] | None = None) -> Batch:
    """Micro-batch tensors for :func:`head_outputs` (``path``: shared, packed or padded);
    outputs come back as [g0 s0 reads, g0 s1 reads, ..., g1 s0 reads, ...] on every path.
    ``reads``: per group, per sequence, the token indices to read (token-classification
    models); None reads one output per sequence."""
    if hidden_reads is not None and path == "packed":
        raise ConfigError("a joint language-model loss needs a causal backbone")
    if path == "shared":
        batch = build_batch(groups, pad_id, reads=reads, hidden_reads=hidden_reads)
    elif path == "packed":
        batch = build_packed([s for g in groups for s in g], reads=None if reads is None else
                             [r for g in reads for r in g])
    else:
        padded = collate([s for g in groups for s in g], pad_id)
        batch = PaddedBatch(padded["input_ids"], padded["attention_mask"], *_positions(reads), *_positions(hidden_reads))
    return batch.to(device)


def _positions(reads: list[list[list[int]]] | None) -> tuple:
    """(rows, columns) of the read positions of padded rows (one row per sequence), or (None, None)."""
    if reads is None:
        return None, None
    flat = [r for g in reads for r in g]
    return (torch.tensor([k for k, r in enumerate(flat) for _ in r], dtype=torch.long),
            torch.tensor([i for r in flat for i in r], dtype=torch.long))


def forward_path(model: nn.Module, shared_prompt: bool = True, attention: str = "auto", device=None,
                 half: bool | None = None) -> str:
    """'shared' (causal decoders), 'packed' (BERT-style encoders on CPU) or 'padded'."""
    if not shared_prompt:
        return "padded"
    if supports_shared_prompt(model, attention, device, half):
        return "shared"
    return "packed" if supports_packed_encoder(model, device) else "padded"


@torch.no_grad()
def score_outputs(model: nn.Module, groups: list[list[list[int]]], pad_id: int,
                  reads: list[list[list[int]]] | None = None, batch_size: int = 16,
                  max_tokens: int = 16384, share_prefixes: bool = False) -> list[list[torch.Tensor]]:
    """Head outputs without gradients, per group, per sequence: a (R, num_labels) float tensor
    for the sequence's reads (one row when ``reads`` is None). Batches are sorted by length
    under a token budget, so results do not depend on batch size or input order.
    ``share_prefixes``: single sequences that start with the same tokens (the samples of one
    prompt) are scored as one shared-prompt group on causal backbones (exact)."""
    if reads is None and per_token(model):
        reads = [[[len(s) - 1] for s in g] for g in groups]
    device = next(model.parameters()).device
    path = forward_path(model, device=device)
    if share_prefixes and path == "shared" and len(groups) > 1 and all(len(g) == 1 for g in groups):
        flat = [g[0] for g in groups]
        found = group_by_prefix(flat)
        merged = score_outputs(model, [[flat[i] for i in f] for f in found], pad_id,
                               None if reads is None else [[reads[i][0] for i in f] for f in found],
                               batch_size, max_tokens)
        out: list[list[torch.Tensor]] = [[] for _ in groups]
        for f, values in zip(found, merged):
            for i, v in zip(f, values):
                out[i] = [v]
        return out
    was_training = model.training
    model.eval()
    if path == "shared":
        sizes = [len(r[0]) for r in layout(groups, reads)]
    elif path == "packed":
        sizes = [sum(len(s) for s in g) for g in groups]
    else:  # padded rows cost the longest row x the rows (groups here hold one sequence)
        sizes = [max(len(s) for s in g) for g in groups]
    out: list[list[torch.Tensor]] = [[] for _ in groups]
    for idx in length_batches(sizes, batch_size, max_tokens, padded=path == "padded"):
        sub = [groups[i] for i in idx]
        sub_reads = None if reads is None else [reads[i] for i in idx]
        values = head_outputs(model, make_batch(sub, pad_id, path, device, sub_reads)).float().cpu()
        at = 0
        for j, i in enumerate(idx):
            for k, s in enumerate(groups[i]):
                n = 1 if sub_reads is None else len(sub_reads[j][k])
                out[i].append(values[at:at + n])
                at += n
    model.train(was_training)
    return out
