"""Prefix cache: the keys and values of recently scored prefixes, reused by later batches.

An RL loop sends the n samples of one prompt as separate requests, and a batch boundary often
falls among them, or they arrive mixed with other prompts' samples. Within a batch the
shared-prompt forward encodes a common prefix once (shared_prompt.py); across batches this
cache keeps, per layer, the attention keys and values (after rotary embedding) of each
group's prefix, so a later text that starts with the same tokens skips them: its remaining
tokens attend to the cached keys and values exactly as they would to recomputed ones. In a
causal model the keys and values at position i depend on tokens 0..i only, so any cached
sequence serves every text sharing a start with it, for as many tokens as they share.

Lookup is by token ids, in blocks of ``block`` tokens (as vLLM's automatic prefix caching):
each cached prefix registers a chained hash per whole block; a query walks its own block
hashes to the deepest one known, then the real common prefix is counted token by token
against that entry (so a hash collision can only cost a hit, never a wrong result). Entries
are evicted least recently used beyond ``max_bytes``. The cache belongs to a model whose
weights no longer change (a served model); it is used by the block attention (CPU, or
``attention='blocks'``) and the scalar-reward path.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch


@dataclass
class Entry:
    """A cached prefix: its token ids and, per layer, (keys, values) of shape (kv_heads, len, head_dim)."""

    ids: tuple[int, ...]
    layers: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.layers)


class PrefixCache:
    """``lookup(ids)`` -> (entry, n): a cached entry sharing the first n tokens of ``ids`` (n is a
    whole number of blocks or more; (None, 0) on a miss). ``add(ids, layers)`` stores a prefix."""

    def __init__(self, max_bytes: int, block: int = 16):
        self.max_bytes, self.block = max_bytes, block
        self.entries: OrderedDict[tuple[int, ...], Entry] = OrderedDict()
        self.index: dict[int, tuple[int, ...]] = {}  # chained block hash -> the newest entry holding that block
        self.bytes = 0
        self.hits = self.reused_tokens = self.evicted = 0

    def _hashes(self, ids) -> list[int]:
        out, h = [], 0
        for at in range(self.block, len(ids) + 1, self.block):
            h = hash((h, tuple(ids[at - self.block:at])))
            out.append(h)
        return out

    def lookup(self, ids: list[int]) -> tuple[Entry | None, int]:
        best = None
        for h in self._hashes(ids):
            key = self.index.get(h)
            if key is None or key not in self.entries:
                break
            best = key
        if best is None:
            return None, 0
        entry = self.entries[best]
        n, limit = 0, min(len(ids), len(entry.ids))
        while n < limit and ids[n] == entry.ids[n]:
            n += 1
        if n < self.block:
            return None, 0
        self.entries.move_to_end(best)
        self.hits += 1
        self.reused_tokens += n
        return entry, n

    def add(self, ids: list[int], layers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Store the prefix ``ids`` with its per-layer keys and values (copied: no view keeps a
        whole batch's tensors alive). Prefixes shorter than a block are not worth a lookup."""
        key = tuple(ids)
        if len(key) < self.block or key in self.entries:
            return
        entry = Entry(key, [(k.clone(), v.clone()) for k, v in layers])
        if entry.nbytes > self.max_bytes:
            return
        self.entries[key] = entry
        self.bytes += entry.nbytes
        for h in self._hashes(key):
            self.index[h] = key
        while self.bytes > self.max_bytes:
            _, old = self.entries.popitem(last=False)
            self.bytes -= old.nbytes
            self.evicted += 1
            for h in self._hashes(old.ids):
                if self.index.get(h) == old.ids:
                    del self.index[h]

    def __len__(self) -> int:
        return len(self.entries)


def cached_keys(past, layer: int, n_rep: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (keys, values) of a cache hit ``past = (entry, n)`` at ``layer``, first n tokens,
    repeated to the query heads: (heads, n, head_dim)."""
    if past is None:
        return None
    entry, n = past
    k, v = entry.layers[layer]
    k, v = k[:, :n], v[:, :n]
    if n_rep > 1:
        k, v = k.repeat_interleave(n_rep, dim=0), v.repeat_interleave(n_rep, dim=0)
    return k, v
