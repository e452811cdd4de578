"""Streaming training data: examples read, checked and tokenized as they are needed.

For data larger than memory (``--streaming``): nothing is loaded whole. Rows are read lazily
(see :func:`rewardlab.data.iter_rows`), checked and tokenized one by one, and shuffled
through a seeded buffer of ``shuffle_buffer`` examples; at the end of the file the next epoch
starts with the next seed. The stream is a pure function of (file, seed, buffer size), so a
resumed run re-reads it and skips the examples already trained on: resume stays exact.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from ..errors import DataError
from .encode import Counts, Group, encode_examples
from .loader import checked_rows, example_parser
from .rows import iter_rows, source_name


class ExampleStream:
    """An endless iterator of (Example, Group), epoch after epoch. ``check(example, where)``
    adds the rules of the loss that uses them, as in :func:`load_examples`."""

    def __init__(self, path: str, tokenizer, max_length: int, seed: int, buffer_size: int,
                 skip_bad: bool = False, report=None, allow_empty: bool = True, check=None, chat: bool = False,
                 columns: dict[str, str] | None = None, parse=None, encode=None):
        self.allow_empty, self.check, self.chat, self.columns = allow_empty, check, chat, columns
        # A kind's row parser and encoder (default: preference rows).
        self.parse, self.encode = parse, encode or encode_examples
        self.path, self.tokenizer, self.max_length = path, tokenizer, max_length
        self.seed, self.buffer_size, self.skip_bad, self.report = seed, buffer_size, skip_bad, report
        self.epoch = 0
        self.counts = Counts()
        self.bad_rows = 0
        self.empty = 0

    def _examples(self) -> Iterator[tuple]:
        """One pass over the file: checked, tokenized examples in file order."""
        empty = True
        one = example_parser(self.tokenizer, self.allow_empty, self.check, self.chat, self.columns, self.parse)
        for _, example, problem in checked_rows(iter_rows(self.path, keep_bad=True), source_name(self.path), one,
                                                  self.skip_bad):
            empty = False
            if problem is not None:
                if self.epoch == 0:
                    self.bad_rows += 1
                    if self.report:
                        self.report(f"note: skipped (--skip-bad-rows): {problem}")
                continue
            kept, counts = self.encode(self.tokenizer, [example], self.max_length)
            if self.epoch == 0:
                self.empty += example.empty_completions()
                self.counts.total += 1
                self.counts.truncated += counts.truncated
                self.counts.skipped += counts.skipped
            yield from kept
        if empty:
            raise DataError(f"{source_name(self.path)}: no rows")

    def __iter__(self) -> Iterator[tuple[object, Group]]:
        while True:
            rng = random.Random(self.seed + self.epoch)
            buffer: list = []
            yielded = False
            for item in self._examples():
                if len(buffer) < self.buffer_size:
                    buffer.append(item)
                    continue
                k = rng.randrange(len(buffer))
                buffer[k], item = item, buffer[k]
                yielded = True
                yield item
            rng.shuffle(buffer)
            for item in buffer:
                yielded = True
                yield item
            if not yielded:
                raise DataError(f"{source_name(self.path)}: no example fits max_length={self.max_length}")
            self.epoch += 1
