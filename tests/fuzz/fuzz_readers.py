"""Property-based fuzzing of every reader and row form (run by test_fuzz.py in a subprocess under
a memory limit and a time limit; not collected on its own, the name does not start with test_).

The property: for any file of any rows, reading them as any kind's training rows, or as the row
forms `score` and `/score` read, either gives a result for every row or stops with one line
that names the file and the row; with --skip-bad-rows it never stops, and kept + skipped rows
add up to the rows written. Never a traceback, a hang or unbounded memory.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rewardlab.data.loader import load_examples
from rewardlab.errors import DataError
from rewardlab.inference.rows import build_groups

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
COLUMNS = ["prompt", "chosen", "rejected", "completions", "ranking", "scores", "completion", "label", "steps",
           "labels", "reward", "ratings", "margin", "subset", "answers", "partial", "correct", "problem"]
ODD = ["", " ", "\n", "\t\u00a0\u2028", "\u200b", "<|im_end|>", "<|im_start|>user\nhi<|im_end|>\n", "\x00",
       "\ud800 lone surrogate", "\U0001F600" * 3, "e\u0301", "\\n\\nHuman: hi\n\nAssistant:", "x" * 300]
text = st.one_of(st.text(max_size=30), st.sampled_from(ODD))
number = st.one_of(st.integers(min_value=-10**30, max_value=10**30), st.floats(allow_nan=True, allow_infinity=True),
                   st.booleans(), st.none(), st.sampled_from([0, 1, -1, 0.5, 2]))
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", ""]),
                                           "content": st.one_of(text, number)}), max_size=3)
anything = st.recursive(st.one_of(text, number), lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=3)), max_leaves=8)
ranking = st.lists(st.one_of(st.integers(-2, 5), st.lists(st.integers(-2, 5), max_size=3)), max_size=5)
column = st.one_of(text, number, messages, st.lists(text, max_size=4), ranking, anything,
                   st.dictionaries(st.sampled_from(["helpfulness", "safety", ""]), number, max_size=2))
row = st.dictionaries(st.sampled_from(COLUMNS), column, max_size=7)
# Rows that are nearly right, so the checks past the first ones are reached too.
pair = st.fixed_dictionaries({"prompt": text, "chosen": st.one_of(text, messages), "rejected": st.one_of(text, messages)},
                             optional={"margin": number, "subset": st.one_of(text, number)})
group = st.fixed_dictionaries({"prompt": text, "completions": st.lists(st.one_of(text, messages), max_size=5)},
                              optional={"ranking": ranking, "scores": st.lists(number, max_size=5),
                                        "partial": number, "answers": st.lists(st.one_of(text, st.none()), max_size=5)})
point = st.fixed_dictionaries({"prompt": text, "completion": st.one_of(text, messages)},
                              optional={"label": number, "reward": number, "ratings": column,
                                        "steps": st.lists(text, max_size=4), "labels": st.lists(number, max_size=4)})
rows = st.lists(st.one_of(row, pair, group, point), min_size=1, max_size=6)


def _one_line(message: str, path: str) -> None:
    assert "\n" not in message and "Traceback" not in message, message
    assert message.startswith(path), message


def _write(tmp: Path, data: list[dict], fmt: str, raw_lines: list[bytes]) -> str:
    """The rows as a file of format ``fmt``; ``raw_lines`` (bytes that are not rows) go into JSONL."""
    path = tmp / f"rows.{fmt}"
    if fmt in ("jsonl", "jsonl.gz"):
        body = b"\n".join([json.dumps(r).encode() for r in data] + raw_lines) + b"\n"
        path.write_bytes(gzip.compress(body) if fmt.endswith(".gz") else body)
    elif fmt == "json":
        path.write_text(json.dumps(data))
    elif fmt == "csv":  # Python's writer quotes what must be quoted (datasets' to_csv left "\r" bare)
        import csv

        keys = sorted({k for r in data for k in r})
        assume(keys)
        try:
            with open(path, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, keys)
                writer.writeheader()
                writer.writerows({k: v if isinstance(v, str) else json.dumps(v) for k, v in r.items()} for r in data)
        except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form: nothing to read back
            assume(False)
    else:
        import datasets

        flat = [{k: v if isinstance(v, str) else json.dumps(v) for k, v in r.items()} for r in data]
        keys = sorted({k for r in flat for k in r})
        table = [{k: r.get(k) for k in keys} for r in flat]
        try:
            datasets.Dataset.from_list(table).to_parquet(str(path))
        except Exception:  # the writer cannot hold these values: not the reader's problem
            assume(False)
    return str(path)


def _parsers(tok):
    """Every kind's row parser (the built-in kinds), with a small settings each."""
    from rewardlab import kinds

    out = {}
    for name, kind in kinds.KINDS.items():
        obj = kind.Options(**({"attributes": "helpfulness,safety"} if name == "regression" else {}))
        out[name] = (kind.parser(obj), lambda e, where, k=kind, o=obj: k.check(e, where, o))
    return out


@pytest.fixture(scope="module")
def tok(smol_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_tokenizer_dir)


RAW = st.lists(st.sampled_from([b'{"prompt": "caf\xe9"}', b"{not json", b"[1, 2]", b'"a string"',
                                b'{"chosen": "a", "chosen": "b", "rejected": "c"}', b"\xff\xfe\x00", b"   ",
                                b'{"a": ' * 3000]), max_size=2)


@FUZZ
@given(data=rows, fmt=st.sampled_from(["jsonl", "jsonl.gz", "json", "csv", "parquet"]), raw=RAW)
def test_every_kind_reads_any_file_to_a_result_or_one_line(tmp_path_factory, tok, data, fmt, raw):
    raw = raw if fmt.startswith("jsonl") else []
    path = _write(tmp_path_factory.mktemp("f"), data, fmt, raw)
    total = len(data) + sum(1 for r in raw if r.strip())
    for name, (parse, check) in _parsers(tok).items():
        try:
            examples = load_examples(path, tok, parse=parse, check=check)
            assert len(examples) == total, name
        except DataError as e:
            _one_line(str(e), path)
            if str(e).endswith(": no rows") or ": cannot read as " in str(e):  # the whole file: no row to name
                continue
            assert str(e).endswith("(--skip-bad-rows leaves such rows out)") or ": line " in str(e), str(e)
        notes: list[str] = []
        try:
            kept = load_examples(path, tok, skip_bad=True, report=notes.append, parse=parse, check=check)
        except DataError as e:  # only a file with no rows at all may still stop
            _one_line(str(e), path)
            assert str(e).endswith("no rows") or "cannot read" in str(e), str(e)
            continue
        skipped = int(notes[0].split("skipped ")[1].split(" of ")[0]) if notes else 0
        assert len(kept) + skipped == total, (name, len(kept), skipped, total)


@FUZZ
@given(data=rows, raw=RAW)
def test_score_row_forms_give_every_row_a_result_or_one_line(tmp_path_factory, tok, data, raw):
    from rewardlab.data.rows import read_rows

    path = _write(tmp_path_factory.mktemp("s"), data, "jsonl", raw)
    read = read_rows(path, keep_bad=True)
    for chat in (False, True):
        try:
            groups, fields = build_groups(read, tok, path, chat=chat)
            assert len(groups) == len(read) and all(groups)
        except DataError as e:
            _one_line(str(e), path)
        groups, fields = build_groups(read, tok, path, skip_bad=True, chat=chat)
        assert len(groups) == len(fields) == len(read)
        for g, f in zip(groups, fields):
            assert (not g) == f.startswith("error: ")
            assert all(isinstance(t.prompt, str) and isinstance(t.completion, str) for t in g)
