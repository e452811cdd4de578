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
are evicted least recently used beyond ``max_bytes`` (keys and values; the token ids and the
index are not counted). The cache belongs to a model whose
weights no longer change (a served model); it is used with the block attention (the CPU
kernel; on CUDA the compiled flex kernel does not read it) on the scalar-reward path.
"""

from __future__ import annotations

import threading
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
    whole number of blocks or more; (None, 0) on a miss). ``add(ids, layers)`` stores a prefix.
    Safe to share between threads (a lock guards the bookkeeping; a hit's tensors stay valid
    after eviction), for weights that no longer change."""

    def __init__(self, max_bytes: int, block: int = 16):
        self.max_bytes, self.block = max_bytes, block
        self.entries: OrderedDict[tuple[int, ...], Entry] = OrderedDict()  # least recently used first
        # chained hash of the first k blocks -> the entries holding those blocks (newest last)
        self.index: dict[int, dict[tuple[int, ...], None]] = {}
        self.bytes = 0
        self.hits = self.reused_tokens = self.evicted = 0
        self.lock = threading.Lock()
        self.token_bytes = 0  # bytes of keys and values per token, known after the first entry

    def _hashes(self, ids) -> list[int]:
        out, h = [], 0
        for at in range(self.block, len(ids) + 1, self.block):
            h = hash((h, tuple(ids[at - self.block:at])))
            out.append(h)
        return out

    def lookup(self, ids: list[int]) -> tuple[Entry | None, int]:
        hashes = self._hashes(ids)
        with self.lock:
            return self._lookup(ids, hashes)

    def _lookup(self, ids: list[int], hashes: list[int]) -> tuple[Entry | None, int]:
        best = None
        for h in hashes:
            holders = self.index.get(h)
            if not holders:
                break
            best = next(reversed(holders))  # every holder shares these blocks; the newest is likeliest kept
        if best is None:
            return None, 0
        entry = self.entries[best]
        n, limit = 0, min(len(ids), len(entry.ids))
        while n < limit and ids[n] == entry.ids[n]:  # the real count: a hash collision only costs a hit
            n += 1
        if n < self.block:
            return None, 0
        self.entries.move_to_end(best)
        self.hits += 1
        self.reused_tokens += n
        return entry, n

    def add(self, ids: list[int], layers: list[tuple[torch.Tensor, torch.Tensor]], extends: Entry | None = None) -> None:
        """Store the prefix ``ids`` with its per-layer keys and values (tensors of their own, not
        views of a batch). Prefixes shorter than a block are not worth a lookup. ``extends``: the
        entry this prefix was computed from; dropped when it is a prefix of ``ids`` (it would
        hold the same tokens twice)."""
        key = tuple(ids)
        entry = Entry(key, layers)
        if key:
            self.token_bytes = max(1, entry.nbytes // len(key))
        if len(key) < self.block or entry.nbytes > self.max_bytes:
            return
        with self.lock:
            self._add(entry, extends)

    def room_tokens(self) -> int | float:
        """How many tokens' keys and values the whole budget holds (unbounded until the first entry
        says what a token costs): a batch copies no more than that for the cache."""
        return self.max_bytes // self.token_bytes if self.token_bytes else float("inf")

    def _add(self, entry: Entry, extends: Entry | None) -> None:
        key = entry.ids
        if key in self.entries:
            self.entries.move_to_end(key)
            return
        if extends is not None and extends.ids in self.entries and key[:len(extends.ids)] == extends.ids:
            self._remove(extends.ids)
        self.entries[key] = entry
        self.bytes += entry.nbytes
        for h in self._hashes(key):
            self.index.setdefault(h, {})[key] = None
        while self.bytes > self.max_bytes:
            self._remove(next(iter(self.entries)))
            self.evicted += 1

    def _remove(self, key: tuple[int, ...]) -> None:
        old = self.entries.pop(key)
        self.bytes -= old.nbytes
        for h in self._hashes(key):
            holders = self.index.get(h)
            if holders is not None:
                holders.pop(key, None)
                if not holders:
                    del self.index[h]

    def __len__(self) -> int:
        return len(self.entries)


def cached_kv(past, layer: int, n_rep: int) -> tuple[torch.Tensor, torch.Tensor] | None:
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
