"""Reading preference data from disk and checking it, row by row.

Files: JSONL / JSON (read with the standard library so an error can name the line),
Parquet / CSV and saved ``datasets`` folders (read with ``datasets``), hub dataset names
when online. Every problem is a :class:`DataError` whose message is one line:
``FILE: row N: what is wrong``.

Row formats for pairs (see the README):
  (a) explicit: ``prompt``, ``chosen``, ``rejected`` strings;
  (b) implicit prompt: ``chosen`` and ``rejected`` are whole texts sharing a prefix (HH-RLHF);
      the shared prefix becomes the prompt;
  (c) conversational: ``chosen`` / ``rejected`` (and optional ``prompt``) are lists of
      ``{"role", "content"}`` messages, rendered with the tokenizer's chat template.
Optional columns: ``margin`` (number >= 0, used by the loss), ``subset`` (for evaluation).
"""

from __future__ import annotations

import gzip
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """Bad input data; the message names the file, the row and the problem in one line."""


@dataclass
class Text:
    """One prompt + completion to score, already rendered to text.

    ``templated`` is True when a chat template produced the text: the template already
    holds its special tokens, so the tokenizer must not add its own.
    """

    prompt: str
    completion: str
    templated: bool = False


@dataclass
class Pair:
    prompt: str
    chosen: str
    rejected: str
    templated: bool = False
    margin: float = 0.0
    subset: str | None = None
    row: int = 0  # 1-based row number in the source, for messages


# ---------------------------------------------------------------- reading files

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


# ---------------------------------------------------------------- row checks

def split_shared_prefix(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two whole texts at their shared prefix: (prompt, chosen_tail, rejected_tail).

    In the HH-RLHF dialogue format the prompt ends with the last shared "\\n\\nAssistant:",
    so "...Assistant: I can" / "...Assistant: I won't" gives the prompt "...Assistant:" and
    the replies " I can" / " I won't". Otherwise the cut moves back to the start of the word
    (and the whitespace before it) where the texts diverge.
    """
    n = 0
    limit = min(len(chosen), len(rejected))
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    turn = chosen.rfind("\n\nAssistant:", 0, n)
    if turn >= 0:  # the HH-RLHF dialogue format: the prompt ends with the last shared "Assistant:"
        n = turn + len("\n\nAssistant:")
    else:
        if any(n < len(t) and not t[n].isspace() for t in (chosen, rejected)):
            while n > 0 and not chosen[n - 1].isspace():  # back to the start of the diverging word
                n -= 1
        while n > 0 and chosen[n - 1].isspace():
            n -= 1
    return chosen[:n], chosen[n:], rejected[n:]


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)


def render_chat(prompt_msgs: list[dict], completion_msgs: list[dict], tokenizer, where: str) -> tuple[str, str]:
    """Render a conversation with the tokenizer's chat template; return (prompt, completion) text."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise DataError(f"{where}: conversational rows need a chat template and this model's tokenizer has none; "
                        "use plain-text prompt/chosen/rejected columns instead")
    try:
        prompt = tokenizer.apply_chat_template(prompt_msgs, tokenize=False, add_generation_prompt=bool(prompt_msgs))
        full = tokenizer.apply_chat_template(prompt_msgs + completion_msgs, tokenize=False)
    except Exception as e:  # jinja raises TemplateError and others from inside the template
        raise DataError(f"{where}: the chat template failed on this conversation: {e}") from None
    if not full.startswith(prompt):
        # Some templates render the generation prompt differently; fall back to the common prefix.
        prompt, _, _ = split_shared_prefix(prompt, full)
    # Drop the template's trailing newline so the sequence ends on its end-of-turn token.
    return prompt, full[len(prompt):].rstrip()


def to_text(prompt: Any, completion: Any, tokenizer, where: str, name: str = "completion") -> Text:
    """Check one prompt/completion and render it to text."""
    if prompt is None:
        prompt = [] if _is_messages(completion) else ""
    if isinstance(completion, str) and isinstance(prompt, str):
        if not completion.strip():
            raise DataError(f"{where}: empty {name}")
        return Text(prompt, completion)
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}] if prompt else []
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    if not _is_messages(prompt):
        raise DataError(f"{where}: 'prompt' must be a string or a list of {{role, content}} messages, "
                        f"got {_type(prompt)}")
    if not _is_messages(completion):
        raise DataError(f"{where}: '{name}' must be a string or a list of {{role, content}} messages, "
                        f"got {_type(completion)}")
    if not completion or not any(str(m["content"]).strip() for m in completion):
        raise DataError(f"{where}: empty {name}")
    p, c = render_chat(prompt, completion, tokenizer, where)
    return Text(p, c, templated=True)


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _require(row: dict, keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if key not in row or row[key] is None:
            found = ", ".join(sorted(k for k, v in row.items() if v is not None)) or "nothing"
            raise DataError(f"{where}: missing column '{key}' (found: {found})")


def check_pair(row: dict, tokenizer, where: str, n: int) -> Pair:
    """Validate one preference row and render it to a :class:`Pair`."""
    _require(row, ("chosen", "rejected"), where)
    chosen, rejected, prompt = row["chosen"], row["rejected"], row.get("prompt")
    for key in ("chosen", "rejected"):
        if not isinstance(row[key], str) and not _is_messages(row[key]):
            raise DataError(f"{where}: '{key}' must be a string or a list of {{role, content}} messages, "
                            f"got {_type(row[key])}")
    if chosen == rejected:
        raise DataError(f"{where}: chosen and rejected are identical")
    if prompt is None and isinstance(chosen, str) and isinstance(rejected, str):
        prompt, chosen, rejected = split_shared_prefix(chosen, rejected)
    elif prompt is None and _is_messages(chosen) and _is_messages(rejected):
        k = 0
        while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
            k += 1
        prompt, chosen, rejected = chosen[:k], chosen[k:], rejected[k:]
    elif prompt is not None and not isinstance(prompt, str) and not _is_messages(prompt):
        raise DataError(f"{where}: 'prompt' must be a string or a list of {{role, content}} messages, "
                        f"got {_type(prompt)}")
    c = to_text(prompt, chosen, tokenizer, where, "chosen completion")
    r = to_text(prompt, rejected, tokenizer, where, "rejected completion")
    if c.templated != r.templated:
        raise DataError(f"{where}: chosen and rejected must both be strings or both be message lists")
    margin = row.get("margin", 0.0)
    if margin is None or isinstance(margin, bool) or not isinstance(margin, (int, float)) \
            or not math.isfinite(margin):
        raise DataError(f"{where}: 'margin' must be a number, got {_type(margin)}")
    if margin < 0:
        raise DataError(f"{where}: 'margin' must be >= 0 (it is how much better chosen is), got {margin}")
    subset = row.get("subset")
    return Pair(c.prompt, c.completion, r.completion, c.templated, float(margin),
                None if subset is None else str(subset), n)


def load_pairs(path: str, tokenizer, skip_bad: bool = False, report=None) -> list[Pair]:
    """Read and validate every preference pair of a data source.

    The first bad row raises DataError, unless ``skip_bad``: then bad rows are left out and
    ``report`` (e.g. print) gets their count and the first few problems.
    """
    rows = read_rows(path)
    if not rows:
        raise DataError(f"{path}: no rows")
    pairs, problems = [], []
    for i, row in enumerate(rows):
        n = rows.number(i)
        try:
            pairs.append(check_pair(row, tokenizer, f"{path}: row {n}", n))
        except DataError as e:
            if not skip_bad:
                raise
            problems.append(str(e))
    if problems and report is not None:
        shown = "; ".join(p.split(": ", 1)[1] for p in problems[:3])
        report(f"note: skipped {len(problems)} of {len(rows)} rows of {path} (--skip-bad-rows): {shown}"
               + (" ..." if len(problems) > 3 else ""))
    return pairs
