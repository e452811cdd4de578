"""Text -> token ids, the same way in training, evaluation and scoring (no train/serve skew).

A sequence is ``tokenizer(prompt + completion)`` (with the tokenizer's own special tokens,
unless a chat template already rendered them) followed by the end marker: the EOS token
for tokenizers that have one, unless the text already ends with it. Encoders such as BERT
have no EOS and end with their own [SEP]. A plain ``transformers`` user reproduces this
with ``tokenizer(prompt + completion + tokenizer.eos_token)``.

Too long? The prompt is cut from the left so that the end of the completion, where the
reward is read, is kept. Each sequence loses only what it must, so a completion's reward
never depends on the other completions it is batched or grouped with.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .preference import Example
from .text import Text


@dataclass
class Group:
    """One prompt with its K completions as token ids (K = 2 for a pair: chosen, rejected)."""

    sequences: list[list[int]]
    truncated: bool = False


@dataclass
class Counts:
    """What encoding had to change; reported to the user, never silent."""

    total: int = 0
    truncated: int = 0
    skipped: int = 0
    sent: int = 0  # scoring: tokens given, and tokens the forward processed (shared prefixes once)
    processed: int = 0
    notes: list = field(default_factory=list)  # what else encoding did to the data, one line each (said)

    def report(self, what: str, max_length: int) -> str | None:
        parts = []
        if self.truncated:
            parts.append(f"{self.truncated} {what} had their prompt cut from the left to fit max_length={max_length}")
        if self.skipped:
            parts.append(f"{self.skipped} {what} skipped because a completion alone is longer than "
                         f"max_length={max_length}")
        return "; ".join(parts) + f" (of {self.total})" if parts else None


def encode_texts(tokenizer, texts: list[Text]) -> list[tuple[list[int], int, int, list[tuple[int, int]]]]:
    """Tokenize; return (ids, first cuttable index, number of cuttable prompt tokens, character
    span of each token in prompt + completion) per text. Special tokens have empty spans."""
    out: list = [None] * len(texts)
    eos = tokenizer.eos_token_id
    special = set(tokenizer.all_special_ids) - {eos}
    for templated in (False, True):
        idx = [i for i, t in enumerate(texts) if t.templated == templated]
        if not idx:
            continue
        enc = tokenizer([texts[i].prompt + texts[i].completion for i in idx],
                        add_special_tokens=not templated, return_offsets_mapping=True)
        for j, i in enumerate(idx):
            ids = list(enc["input_ids"][j])
            offsets = enc["offset_mapping"][j]
            plen = len(texts[i].prompt)
            head = 0  # leading special tokens (BOS / [CLS], or a template's BOS text) are never cut
            while head < len(ids) and (offsets[head][0] == offsets[head][1] or ids[head] in special):
                head += 1
            n_prompt = 0
            while head + n_prompt < len(ids) and offsets[head + n_prompt][1] <= plen \
                    and offsets[head + n_prompt][0] < offsets[head + n_prompt][1]:
                n_prompt += 1
            spans = [tuple(o) for o in offsets]
            if eos is not None and (not ids or ids[-1] != eos):
                ids.append(eos)
                spans.append((len(texts[i].prompt + texts[i].completion),) * 2)
            out[i] = (ids, head, n_prompt, spans)
    return out


def encode_groups(tokenizer, groups: list[list[Text]], max_length: int,
                  cut_completion: bool = False) -> tuple[list[Group | None], Counts]:
    """Encode groups of texts that share a prompt.

    Returns one :class:`Group` per input group, or None where the group cannot fit (a
    completion alone exceeds ``max_length``) and ``cut_completion`` is False. With
    ``cut_completion=True`` (scoring, where every row must get a reward) such sequences
    keep their last ``max_length`` tokens instead.
    """
    flat = [t for g in groups for t in g]
    return fit_groups([len(g) for g in groups], [e[:3] for e in encode_texts(tokenizer, flat)], max_length,
                      cut_completion)


def fit_groups(sizes: list[int], encoded: list[tuple[list[int], int, int]], max_length: int,
               cut_completion: bool = False) -> tuple[list[Group | None], Counts]:
    """:func:`encode_groups` after tokenizing: ``encoded`` holds :func:`encode_texts`' first three
    fields per text, groups of ``sizes`` texts one after another (a server tokenizes once, to
    check a request's lengths, and scores these)."""
    counts = Counts(total=len(sizes))
    out: list[Group | None] = []
    pos = 0
    for size in sizes:
        items = encoded[pos:pos + size]
        pos += size
        if all(len(ids) <= max_length for ids, _, _ in items):
            out.append(Group([ids for ids, _, _ in items]))
            continue
        if any(len(ids) - max_length > n for ids, _, n in items) and not cut_completion:
            counts.skipped += 1
            out.append(None)
            continue
        # Drop prompt tokens from the left (after the leading special tokens); if that is not
        # enough (scoring only), keep the specials and the last tokens, where the reward is read.
        seqs = [ids if len(ids) <= max_length else ids[:head] + ids[len(ids) - max_length + head:]
                for ids, head, _ in items]
        counts.truncated += 1
        out.append(Group(seqs, truncated=True))
    return out, counts


def example_texts(e: Example) -> list[Text]:
    return [Text(e.prompt, c, e.templated) for c in e.completions]


def encode_examples(tokenizer, examples: list[Example], max_length: int, num_proc: int = 1,
                    cache_dir: str = "") -> tuple[list[tuple[Example, Group]], Counts]:
    """Encode examples (K completions each); those that cannot fit are dropped *and counted*.

    ``num_proc > 1`` tokenizes in that many processes through ``datasets.map``. ``cache_dir``
    keeps the token ids as an Arrow dataset keyed by the texts, the tokenizer and max_length,
    so a rerun on the same data loads them instead of tokenizing again.
    """
    if cache_dir:
        return _decode(examples, _tokenized_cached(tokenizer, examples, max_length, num_proc, Path(cache_dir)))
    if num_proc > 1 and len(examples) >= 2 * num_proc:
        return _decode(examples, _tokenized(tokenizer, examples, max_length, num_proc))
    encoded, counts = encode_groups(tokenizer, [example_texts(e) for e in examples], max_length)
    return [(e, g) for e, g in zip(examples, encoded) if g is not None], counts


def _tokenize_batch(batch: dict, tokenizer, max_length: int) -> dict:
    groups = [[Text(p, c, t) for c in cs] for p, cs, t in zip(batch["prompt"], batch["completions"], batch["templated"])]
    encoded, _ = encode_groups(tokenizer, groups, max_length)
    return {"ids": [g.sequences if g else [] for g in encoded],
            "status": [0 if g is None else 2 if g.truncated else 1 for g in encoded]}


def _tokenized(tokenizer, examples: list[Example], max_length: int, num_proc: int):
    """An Arrow dataset of ids (one list per completion) and status (0 skipped, 1 kept, 2 truncated)."""
    import datasets

    columns = {"prompt": [e.prompt for e in examples], "completions": [e.completions for e in examples],
               "templated": [e.templated for e in examples]}
    return datasets.Dataset.from_dict(columns).map(
        _tokenize_batch, batched=True, num_proc=num_proc if len(examples) >= 2 * num_proc else None,
        remove_columns=list(columns), fn_kwargs={"tokenizer": tokenizer, "max_length": max_length},
        desc="tokenize")


CACHE_VERSION = 2  # bump when the encoding rules change, so old caches are not reused


def _tokenized_cached(tokenizer, examples: list[Example], max_length: int, num_proc: int, cache_dir: Path):
    import hashlib

    import datasets
    from datasets.fingerprint import Hasher

    texts = hashlib.sha256()
    for e in examples:
        for part in (e.prompt, *e.completions, str(e.templated)):
            texts.update(part.encode("utf-8"))
            texts.update(b"\0")
        texts.update(b"\1")  # end of an example: K may vary
    key = Hasher.hash([CACHE_VERSION, Hasher.hash(tokenizer), max_length, texts.hexdigest()])
    path = cache_dir / f"examples-{key}"
    if (path / "dataset_info.json").exists():
        return datasets.load_from_disk(str(path))  # memory-mapped: not read into RAM
    ds = _tokenized(tokenizer, examples, max_length, num_proc)
    tmp = cache_dir / f".tmp-{key}-{os.getpid()}"
    ds.save_to_disk(str(tmp))
    try:
        tmp.rename(path)  # atomic: a half-written cache is never used
    except OSError:  # another process wrote the same entry first: keep it, it is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return datasets.load_from_disk(str(path))


def _decode(examples: list[Example], ds) -> tuple[list[tuple[Example, Group]], Counts]:
    status = ds["status"]
    counts = Counts(total=len(examples), truncated=status.count(2), skipped=status.count(0))
    kept = [(e, Group([list(s) for s in ids], truncated=st == 2))
            for e, ids, st in zip(examples, ds["ids"], status) if st]
    return kept, counts


def collate(sequences: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence; returns input_ids and attention_mask."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask}
