"""Reading a data source row by row, the same way for every kind and every command.

Every reader (training rows, evaluation rows, the training stream, the rows ``score`` and
``/score`` write back) goes through :func:`checked_rows`: a row is parsed (BadRow: a line that
could not be read), checked, and on a problem either stops everything with one line naming the
file, the row and what is wrong, or, with ``--skip-bad-rows``, is counted in :class:`Skipped`
and reported: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataError
from .preference import check_example
from .rows import BadRow, read_rows, rename_columns, source_name

SKIP_HINT = " (--skip-bad-rows leaves such rows out)"


@dataclass
class Skipped:
    """Rows left out (or written back with an error) under ``--skip-bad-rows``."""

    rows: int = 0
    first: list[str] = field(default_factory=list)  # the first few problems, without the file name

    def add(self, problem: str) -> None:
        self.rows += 1
        if len(self.first) < 3:
            self.first.append(problem.split(": ", 1)[-1])

    def note(self, total: int, what: str) -> str:
        """One line: how many of ``total`` rows were skipped, and the first problems."""
        return (f"note: skipped {self.rows} of {total} {what} (--skip-bad-rows): " + "; ".join(self.first)
                + (" ..." if self.rows > len(self.first) else ""))


def checked_rows(rows: Iterable[tuple[int, Any]], source: str, parse: Callable[[Any, str, int], Any],
                 skip_bad: bool = False, skipped: Skipped | None = None,
                 hint: str = SKIP_HINT) -> Iterator[tuple[int, Any, str | None]]:
    """``(row number, row)`` pairs -> ``(n, parse(row, where, n), None)``; a bad row raises its
    one-line DataError ending with ``hint``, or with ``skip_bad`` gives ``(n, None, message)``
    and is counted in ``skipped``."""
    for n, row in rows:
        where = f"{source}: row {n}"
        try:
            if isinstance(row, BadRow):
                raise DataError(row.problem)
            yield n, parse(row, where, n), None
        except DataError as e:
            if not skip_bad:
                raise DataError(str(e) + hint) from None
            if skipped is not None:
                skipped.add(str(e))
            yield n, None, str(e)


def parse_row(row: dict, tokenizer, where: str, n: int, allow_empty: bool, chat: bool,
              columns: dict[str, str] | None, parse=None):
    """A row through a kind's parser (default: preference rows), the user's columns renamed."""
    if parse is None:
        return check_example(row, tokenizer, where, n, allow_empty, chat, columns)
    return parse(rename_columns(row, columns) if columns else row, tokenizer, where, n, allow_empty, chat)


def example_parser(tokenizer, allow_empty: bool = True, check=None, chat: bool = False,
                   columns: dict[str, str] | None = None, parse=None) -> Callable[[Any, str, int], Any]:
    """``(row, where, n) -> example``: a kind's parser (default: preference rows), then the rules
    of the loss that uses the examples (``check(example, where)``), if any."""
    def one(row, where: str, n: int):
        example = parse_row(row, tokenizer, where, n, allow_empty, chat, columns, parse)
        if check is not None:
            check(example, where)
        return example
    return one


def load_examples(path, tokenizer, skip_bad: bool = False, report=None, allow_empty: bool = True,
                  check=None, chat: bool = False, columns: dict[str, str] | None = None, parse=None) -> list:
    """Read and validate every row of a data source (see :func:`example_parser`). The first bad
    row raises DataError, unless ``skip_bad``: then bad rows are left out and ``report`` (e.g.
    print) gets their count and the first few problems."""
    rows, name = read_rows(path, keep_bad=True), source_name(path)  # an unreadable line fails or is skipped
    if not rows:
        raise DataError(f"{name}: no rows")
    skipped = Skipped()
    numbered = ((rows.number(i), row) for i, row in enumerate(rows))
    one = example_parser(tokenizer, allow_empty, check, chat, columns, parse)
    examples = [e for _, e, problem in checked_rows(numbered, name, one, skip_bad, skipped) if problem is None]
    if skipped.rows and report is not None:
        report(skipped.note(len(rows), f"rows of {name}"))
    return examples


def usable(examples: list, check, path, skip_bad: bool, report) -> list:
    """The parsed examples a loss can learn from (``check(example, where)``); the others stop
    with one line, or with ``skip_bad`` are left out and counted."""
    skipped = Skipped()
    numbered = ((e.row, e) for e in examples)
    kept = [e for _, e, problem in checked_rows(numbered, source_name(path), lambda e, where, n: (check(e, where), e)[1],
                                                skip_bad, skipped) if problem is None]
    if skipped.rows:
        report(skipped.note(len(examples), "rows the loss cannot use"))
    return kept
