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

class Rows(list):
    """Rows of a source, with the number a message should name for each: the 1-based row
    (the line, for JSONL files), counted in the whole source even when it was sliced."""

    numbers: list[int] | None = None

    def number(self, i: int) -> int:
        return self.numbers[i] if self.numbers is not None else i + 1


def read_rows(path: str) -> Rows:
    """All rows of a data source as plain dicts, in order. Raises DataError if unreadable.

    ``FILE[a:b]`` selects rows a..b-1 (Python slice, 0-based), e.g. ``pairs.jsonl.gz[:1600]``.
    """
    if not path:
        raise DataError("no data given (use --data FILE)")
    m = re.fullmatch(r"(.+)\[(-?\d*):(-?\d*)\]", path)
    if m and not Path(path).exists():
        rows = _read_source(m.group(1))
        start, stop, _ = slice(int(m.group(2)) if m.group(2) else None,
                               int(m.group(3)) if m.group(3) else None).indices(len(rows))
        out = Rows(rows[start:stop])
        out.numbers = [rows.number(i) for i in range(start, stop)]
        return out
    return _read_source(path)


def _read_source(path: str) -> Rows:
    p = Path(path)
    if p.is_dir():
        return Rows(_read_dataset_folder(p))
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix.lower() == ".gz" else p.suffix.lower()
    if not p.exists():
        if "/" in path and not path.startswith((".", "/")) and suffix == "":
            return Rows(_read_hub(path))
        raise DataError(f"{path}: file not found")
    if suffix in (".jsonl", ".jsonl.gz"):
        return _read_jsonl(p)
    if suffix == ".json":
        return Rows(_read_json(p))
    if suffix in (".parquet", ".csv"):
        return Rows(_read_with_datasets(p, suffix[1:]))
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'}: use .jsonl(.gz), .json, .parquet or .csv")


def iter_jsonl(p: Path):
    """(line number, row) for each non-blank line, read lazily."""
    try:
        opener = gzip.open if p.suffix.lower() == ".gz" else open
        with opener(p, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue  # blank lines carry no row
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{p}: line {n}: invalid JSON: {e.msg} (column {e.colno})") from None
                if not isinstance(row, dict):
                    raise DataError(f"{p}: line {n}: expected a JSON object, got {type(row).__name__}")
                yield n, row
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise DataError(f"{p}: cannot read: {e}") from None


def iter_rows(path: str):
    """(row number, row) of a source without loading it whole: JSONL read line by line,
    Parquet / CSV through ``datasets`` streaming, saved ``datasets`` folders memory-mapped."""
    p = Path(path)
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix.lower() == ".gz" else p.suffix.lower()
    if suffix in (".jsonl", ".jsonl.gz") and p.exists():
        yield from iter_jsonl(p)
        return
    if suffix in (".parquet", ".csv") and p.exists():
        import datasets

        try:
            rows = datasets.load_dataset(suffix[1:], data_files=str(p), split="train", streaming=True)
            yield from enumerate(rows, 1)
        except DataError:
            raise
        except Exception as e:
            raise DataError(f"{p}: cannot read as {suffix[1:]}: {str(e).splitlines()[0]}") from None
        return
    rows = read_rows(path)  # folders, JSON, slices: already memory-mapped or small
    for i, row in enumerate(rows):
        yield rows.number(i), row


def _read_jsonl(p: Path) -> Rows:
    rows, numbers = Rows(), []
    for n, row in iter_jsonl(p):
        rows.append(row)
        numbers.append(n)
    rows.numbers = numbers
    return rows


def _read_json(p: Path) -> list[dict]:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{p}: line {e.lineno}: invalid JSON: {e.msg}") from None
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
        raise DataError(f"{p}: cannot read as {kind}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return ds.to_list()


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


