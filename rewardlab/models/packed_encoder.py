"""Padding-free packed forward for bidirectional encoders (BERT, MiniLM).

An encoder cannot share a prompt (every token attends to the completion too), but it can pack:
the sequences of a micro-batch are concatenated into ONE row without padding,

    [ seq 1 | seq 2 | ... | seq N ]

position ids restart at 0 for every sequence, token-type ids are 0 (rewardlab encodes prompt +
completion as one text), and attention runs block by block: each sequence sees itself, in
both directions, and nothing else. Every sequence therefore gets exactly the hidden states it
gets alone, and no compute goes to padding (on HH-RLHF batches, padding is most of the tokens).
The reward is read the model's own way: its pooler on the sequence's first token ([CLS]),
then the classifier.

Only architectures whose embeddings take absolute position ids and whose head is BERT's
pooler + classifier are packed (:func:`supports_packed_encoder`); anything else (relative
position buckets, other heads) keeps the padded forward, which is always exact. On CUDA a
loop of per-sequence attention calls is launch-bound, so packing is used on CPU only.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbone import hf_model, length_batches, rewards_of, score_in_batches
from .attention import use_block_attention
from .batch import PackedBatch


def per_token(model: nn.Module) -> bool:
    """A token-classification model: one output per token (outcome/process/value kinds)."""
    return type(hf_model(model)).__name__.endswith("ForTokenClassification")


def supports_packed_encoder(model: nn.Module, device: torch.device | None = None) -> bool:
    """BERT-style encoder classifiers: ``bert`` base with absolute positions, a pooler (or
    per-token outputs), a ``classifier`` head, attention through transformers' interface; on CPU."""
    model = hf_model(model)
    base = getattr(model, "bert", None)
    config = getattr(model, "config", None)
    if base is None or not isinstance(getattr(model, "classifier", None), nn.Module):
        return False
    if getattr(base, "pooler", None) is None and not per_token(model):
        return False
    if getattr(config, "position_embedding_type", "absolute") != "absolute" or getattr(config, "is_decoder", False):
        return False
    can_set = getattr(type(model), "_can_set_attn_implementation", None)
    if not callable(can_set) or not can_set():
        return False
    device = device or next(model.parameters()).device
    return torch.device(device).type == "cpu"


def build_packed(sequences: list[list[int]], dtype: torch.dtype = torch.float32,
                 reads: list[list[int]] | None = None) -> PackedBatch:
    """One padding-free row: ids, restarting positions, the first-token index of each sequence
    and one attention block per sequence (all allowed: bidirectional). ``reads[k]``: token
    indices of sequence k whose per-token outputs are wanted (token-classification models)."""
    ids, pos, starts, blocks, cols = [], [], [], [], []
    for k, s in enumerate(sequences):
        starts.append(len(ids))
        if reads is not None:
            cols += [len(ids) + i for i in reads[k]]
        blocks.append((0, len(ids), len(ids) + len(s), torch.zeros((1, 1, len(s), len(s)), dtype=dtype)))
        ids += s
        pos += range(len(s))
    return PackedBatch(torch.tensor([ids]), torch.tensor([pos]), torch.tensor(starts), blocks,
                       torch.tensor(cols, dtype=torch.long) if reads is not None else None)


def packed_encoder_outputs(model: nn.Module, batch: PackedBatch) -> torch.Tensor:
    """Head outputs of the packed sequences, in order; equal to the padded forward: (N, labels)
    from the pooler, or (R, labels) at ``packed_reads`` for a token-classification model."""
    model = hf_model(model)
    use_block_attention(model)
    device = batch.ids.device
    blocks = [(r, s, e, m.to(device)) for r, s, e, m in batch.blocks]
    hidden = model.bert(input_ids=batch.ids, position_ids=batch.positions,
                        token_type_ids=torch.zeros_like(batch.ids), rewardlab_blocks=blocks).last_hidden_state
    if batch.reads is not None:
        return model.classifier(model.dropout(hidden[0, batch.reads.to(device)]))
    first = hidden[0, batch.starts.to(device)].unsqueeze(1)  # (N, 1, H): each sequence's [CLS]
    pooled = model.bert.pooler(first)
    return model.classifier(model.dropout(pooled))


def packed_encoder_rewards(model: nn.Module, batch: PackedBatch) -> torch.Tensor:
    """Rewards (N,) of the packed sequences, in order; equal to the padded forward."""
    return rewards_of(packed_encoder_outputs(model, batch))


def score_packed(model: nn.Module, sequences: list[list[int]], batch_size: int = 16,
                 max_tokens: int = 16384) -> list[float]:
    """Rewards for token-id sequences, in input order, without gradients: sorted by length and
    packed into rows of at most ``batch_size`` sequences and ``max_tokens`` tokens (no padding)."""
    device = next(model.parameters()).device

    def rewards_of(idx):
        batch = build_packed([sequences[i] for i in idx])
        return packed_encoder_rewards(model, batch.to(device))

    batches = length_batches([len(s) for s in sequences], batch_size, max_tokens, padded=False)
    return score_in_batches(model, len(sequences), batches, rewards_of)
