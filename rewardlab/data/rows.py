"""Reading rows from disk: JSONL / JSON (read with the standard library so an error can name
the line), Parquet / CSV and saved ``datasets`` folders (read with ``datasets``), hub dataset
names when online. ``FILE[a:b]`` selects rows. Every problem is a :class:`DataError` whose
message is one line: ``FILE: row N: what is wrong``.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from ..errors import DataError


class BadRow(dict):
    """A line that could not be read as a row (not UTF-8, invalid JSON, not an object), kept in
    its place when the caller skips bad rows: parsing it raises its problem, so it is counted
    and named like any bad row, and ``score`` writes its text back with the error."""

    def __init__(self, problem: str, raw: str):
        super().__init__(line=raw)
        self.problem = problem


class Rows(list):
    """Rows of a source, with the number a message should name for each: the 1-based row
    (the line, for JSONL files), counted in the whole source even when it was sliced."""

    numbers: list[int] | None = None
    files: list[tuple[int, str]] | None = None  # a folder of files: (first row, file) each, in order
    name: str | None = None  # rows given in memory: how messages name them

    def number(self, i: int) -> int:
        return self.numbers[i] if self.numbers is not None else i + 1

    def where(self, i: int, source: str) -> str:
        """Where row ``i`` is, for a message: ``SOURCE: row N``, or in a folder of files the file
        and the row within it."""
        n = self.number(i)
        if self.files:
            start, name = next((s, f) for s, f in reversed(self.files) if s < n)
            return f"{Path(source) / name}: row {n - start}"
        return f"{source}: row {n}"


def source_name(data) -> str:
    """How messages name a data source: a path as given; rows in memory by what they are
    (``rows`` for a list, ``Dataset``, ``IterableDataset``)."""
    if data is None or isinstance(data, str):
        return data or ""
    if isinstance(data, Rows) and getattr(data, "name", None):
        return data.name
    return "rows" if isinstance(data, list) else type(data).__name__


def in_memory(data) -> bool:
    """Rows given as Python objects (a list of dicts, a ``datasets`` Dataset or IterableDataset), not a path."""
    return data is not None and not isinstance(data, str)


def _memory_rows(data) -> Rows:
    """A list of dicts or a ``datasets.Dataset`` as :class:`Rows` numbered from 1; each row must be a dict."""
    if hasattr(data, "to_list") and not isinstance(data, list):
        data = data.to_list()
    elif not isinstance(data, list):
        if hasattr(data, "__iter__"):  # an IterableDataset read whole
            data = list(data)
        else:
            raise DataError(f"data must be a path, a list of row dicts or a datasets.Dataset, got {type(data).__name__}")
    name = source_name(data)
    for n, row in enumerate(data, 1):
        if not isinstance(row, dict):
            raise DataError(f"{name}: row {n}: expected a dict, got {type(row).__name__}")
    out = Rows(data)
    out.name = name
    return out


def read_rows(path, keep_bad: bool = False) -> Rows:
    """All rows of a data source as plain dicts, in order. Raises DataError if unreadable.

    ``path``: a file, a folder, a hub name, or rows in memory (a list of dicts, a ``datasets``
    Dataset). ``FILE[a:b]`` selects rows a..b-1 (Python slice, 0-based), e.g.
    ``pairs.jsonl.gz[:1600]``. ``keep_bad``: a JSONL line that is not a row becomes a
    :class:`BadRow` instead of an error.
    """
    if in_memory(path):
        return _memory_rows(path)
    if not path:
        raise DataError("no data given (use --data FILE)")
    m = re.fullmatch(r"(.+)\[(-?\d*):(-?\d*)\]", path)
    if m and not Path(path).exists():
        rows = _read_source(m.group(1), keep_bad)
        start, stop, _ = slice(int(m.group(2)) if m.group(2) else None,
                               int(m.group(3)) if m.group(3) else None).indices(len(rows))
        out = Rows(rows[start:stop])
        out.numbers = [rows.number(i) for i in range(start, stop)]
        return out
    return _read_source(path, keep_bad)


def _read_source(path: str, keep_bad: bool = False) -> Rows:
    p = Path(path)
    if p.is_dir():
        return _read_tree(p) if _is_tree(p) else Rows(_read_dataset_folder(p))
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix.lower() == ".gz" else p.suffix.lower()
    if not p.exists():
        if "/" in path and not path.startswith((".", "/")) and suffix == "":
            return Rows(_read_hub(path))
        raise DataError(f"{path}: file not found")
    if suffix in (".jsonl", ".jsonl.gz"):
        return _read_jsonl(p, keep_bad)
    if suffix == ".json":
        return Rows(_read_json(p))
    if suffix == ".csv":
        return Rows(row for _, row in _iter_csv(p))
    if suffix == ".parquet":
        return Rows(_read_with_datasets(p, "parquet"))
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'}: use .jsonl(.gz), .json, .parquet or .csv")


def iter_jsonl(p: Path, keep_bad: bool = False):
    """(line number, row) for each non-blank line, read lazily. A line that is not a row (not
    UTF-8, invalid JSON, not an object) raises, naming its line; with ``keep_bad`` it is a
    :class:`BadRow` and the lines after it are still read."""
    try:
        opener = gzip.open if p.suffix.lower() == ".gz" else open
        with opener(p, "rb") as f:
            for n, raw in enumerate(f, 1):
                row = _parse_line(p, n, raw)
                if row is None:
                    continue  # blank lines carry no row
                if isinstance(row, BadRow) and not keep_bad:
                    raise DataError(row.problem)
                yield n, row
    except (OSError, EOFError) as e:
        raise DataError(f"{p}: cannot read: {e}") from None


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object, refused when a key repeats (JSON readers keep the last value, so the first
    would be lost without a word). The check is ``dict``'s own; the key is looked for only then."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _Duplicate(f"duplicate key {key!r} in one object")
    return out


def _parse_line(p: Path, n: int, raw: bytes) -> dict | None:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return BadRow(f"{p}: line {n}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})",
                      raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    if not line.strip():
        return None
    try:
        row = json.loads(line, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        return BadRow(f"{p}: line {n}: invalid JSON: {e.msg} (column {e.colno})", line.rstrip("\r\n"))
    except _Duplicate as e:
        return BadRow(f"{p}: line {n}: {e}", line.rstrip("\r\n"))
    except RecursionError:
        return BadRow(f"{p}: line {n}: invalid JSON: nested too deeply", line.rstrip("\r\n"))
    if not isinstance(row, dict):
        return BadRow(f"{p}: line {n}: expected a JSON object, got {type(row).__name__}", line.rstrip("\r\n"))
    return row


def iter_rows(path, keep_bad: bool = False):
    """(row number, row) of a source without loading it whole: JSONL read line by line,
    Parquet / CSV through ``datasets`` streaming, saved ``datasets`` folders memory-mapped, a
    ``datasets.IterableDataset`` as it streams, rows in memory as they are."""
    if in_memory(path):
        if isinstance(path, list) or hasattr(path, "to_list"):
            rows = _memory_rows(path)
            yield from enumerate(rows, 1)
            return
        for n, row in enumerate(path, 1):
            if not isinstance(row, dict):
                raise DataError(f"{source_name(path)}: row {n}: expected a dict, got {type(row).__name__}")
            yield n, row
        return
    p = Path(path)
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix.lower() == ".gz" else p.suffix.lower()
    if suffix in (".jsonl", ".jsonl.gz") and p.exists():
        yield from iter_jsonl(p, keep_bad)
        return
    if suffix == ".csv" and p.exists():
        yield from _iter_csv(p)
        return
    if suffix == ".parquet" and p.exists():
        import datasets

        try:
            rows = datasets.load_dataset(suffix[1:], data_files=str(p), split="train", streaming=True)
            yield from enumerate(rows, 1)
        except DataError:
            raise
        except Exception as e:
            raise DataError(f"{p}: cannot read as {suffix[1:]}: {_cause(e)}") from None
        return
    rows = read_rows(path, keep_bad)  # folders, JSON, slices: already memory-mapped or small
    for i, row in enumerate(rows):
        yield rows.number(i), row


TEXT_COLUMNS = ("prompt", "chosen", "rejected", "completion", "subset", "question", "problem", "answer")
NUMBER_COLUMNS = ("label", "reward", "margin", "correct", "partial", "num_correct")


def _iter_csv(p: Path):
    """(row number, row) of a CSV file, read as written (pandas' type guessing turned a prompt
    "0" into the number 0 and an empty reply into a missing value): every cell is a string,
    except that a list or object cell (``completions``, ``ranking``, ``scores``, ``ratings``;
    chat messages in a text column) is decoded from JSON, and the number columns (``label``,
    ``reward``, ``margin``...) read numbers and true/false. Empty cells of other columns than
    text ones are absent. A repeated header or a row longer than the header is an error."""
    import csv

    csv.field_size_limit(2**31 - 1)  # a long prompt or conversation is one cell
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if len(set(header)) != len(header):
                twice = sorted({h for h in header if header.count(h) > 1})
                raise DataError(f"{p}: line 1: column {twice[0]!r} appears twice in the header")
            for n, row in enumerate(reader, 1):  # the n-th row under the header
                if None in row:
                    raise DataError(f"{p}: row {n}: {len(row[None])} more cells than the header has columns")
                yield n, {k: _csv_cell(k, v) for k, v in row.items()}
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{p}: cannot read as csv: {e}") from None


def _csv_cell(column: str, value: str | None):
    if value is None:
        return None
    if not value.strip():  # an empty reply is real data; an empty cell elsewhere is an absent value
        return value if column in TEXT_COLUMNS else None
    stripped = value.strip()
    if stripped[0] in "[{":
        try:
            decoded = json.loads(stripped)
        except (ValueError, RecursionError):
            return value
        messages = isinstance(decoded, list) and bool(decoded) and all(isinstance(m, dict) and "role" in m
                                                                        for m in decoded)
        return decoded if column not in TEXT_COLUMNS or messages else value
    if column in NUMBER_COLUMNS:
        if stripped.lower() in ("true", "false"):
            return stripped.lower() == "true"
        try:
            return json.loads(stripped)
        except ValueError:
            return value
    return value


def _read_jsonl(p: Path, keep_bad: bool = False) -> Rows:
    rows, numbers = Rows(), []
    for n, row in iter_jsonl(p, keep_bad):
        rows.append(row)
        numbers.append(n)
    rows.numbers = numbers
    return rows


def _read_json(p: Path) -> list[dict]:
    try:
        data = json.loads(p.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicates)
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{p}: line {e.lineno}: invalid JSON: {e.msg}") from None
    except _Duplicate as e:
        raise DataError(f"{p}: {e}") from None
    if isinstance(data, dict):  # {"train": [...]} or {"data": [...]} or column-oriented
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(data) == 1 and lists:
            data = lists[0]
        elif lists and len(lists) == len(data) and len({len(v) for v in lists}) == 1:
            data = [dict(zip(data, vals)) for vals in zip(*data.values())]
        else:
            raise DataError(f"{p}: expected a list of row objects")
    if not isinstance(data, list):
        raise DataError(f"{p}: expected a list of row objects")
    for n, row in enumerate(data, 1):
        if not isinstance(row, dict):
            raise DataError(f"{p}: row {n}: expected an object, got {type(row).__name__}")
    return data


def _read_with_datasets(p: Path, kind: str) -> list[dict]:
    import datasets

    try:
        ds = datasets.load_dataset(kind, data_files=str(p), split="train")
    except Exception as e:  # pyarrow and pandas raise many types; all mean "unreadable"
        raise DataError(f"{p}: cannot read as {kind}: {_cause(e)}") from None
    return ds.to_list()


def _cause(e: BaseException) -> str:
    """The innermost message of a chain of exceptions, on one line ("No columns to parse from
    file", not datasets' "An error occurred while generating the dataset")."""
    while (e.__cause__ or e.__context__) is not None:
        e = e.__cause__ or e.__context__
    return (str(e).splitlines() or [type(e).__name__])[0] or type(e).__name__


def _is_tree(p: Path) -> bool:
    """A folder of .json/.jsonl files (how RMB and PRMBench release their data), not a saved
    ``datasets`` folder."""
    return not (p / "dataset_info.json").exists() and not (p / "dataset_dict.json").exists() and \
        any(f.suffix in (".json", ".jsonl") for f in p.rglob("*") if f.is_file())


def _read_tree(p: Path) -> Rows:
    """The .json/.jsonl files of ``p`` as one source (sorted paths): those in ``p`` itself when
    it holds some (PRMBench's data folder, whose ``debug/`` its loader skips), else every one
    below it (RMB's tree). Rows are numbered across the files; :meth:`Rows.where` names the
    file and the row within it."""
    def data(fs):
        return sorted(f for f in fs if f.is_file() and f.suffix in (".json", ".jsonl"))

    out, files = Rows(), []
    for f in data(p.iterdir()) or data(p.rglob("*")):
        files.append((len(out), str(f.relative_to(p))))
        out.extend(_read_jsonl(f) if f.suffix == ".jsonl" else _read_json(f))
    out.files = files
    return out


def _read_dataset_folder(p: Path) -> list[dict]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(p))
    except Exception as e:
        raise DataError(f"{p}: not a saved `datasets` folder: {str(e).splitlines()[0]}") from None
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise DataError(f"{p}: dataset has splits {list(ds)}; point to one split's folder")
        ds = ds["train"]
    return ds.to_list()


def _read_hub(name: str) -> list[dict]:
    import datasets

    repo, _, split = name.partition(":")
    try:
        ds = datasets.load_dataset(repo, split=split or "train")
    except Exception as e:
        raise DataError(f"{name}: no such file, and loading it as a hub dataset failed: "
                        f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return ds.to_list()


def rename_columns(row: dict, columns: dict[str, str]) -> dict:
    """A copy of ``row`` with the user's column names replaced by rewardlab's."""
    out = dict(row)
    for ours, theirs in columns.items():
        if theirs in out:
            out[ours] = out.pop(theirs)
    return out
