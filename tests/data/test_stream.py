"""--streaming: lazily read data, seeded shuffle buffer, exact resume."""

import pytest

from rewardlab.config import ConfigError
from rewardlab.data import DataError
from rewardlab.data.stream import ExampleStream as PairStream
from rewardlab.training import train
from tests.conftest import PAIRS, write_jsonl
from tests.training.test_loop import _cfg, _same_run, interrupted_run


def test_stream_is_deterministic_and_covers_every_pair_each_epoch(tmp_path, smol_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    rows = [dict(p, prompt=p["prompt"] + f" #{i}") for i in range(5) for p in PAIRS]  # 20 distinct pairs
    path = write_jsonl(tmp_path / "s.jsonl", rows)
    it = iter(PairStream(path, tok, 256, seed=1, buffer_size=6))
    first = [next(it)[0].row for _ in range(40)]
    assert sorted(first[:20]) == list(range(1, 21)) and sorted(first[20:]) == list(range(1, 21))
    assert first[:20] != list(range(1, 21))  # shuffled
    again = iter(PairStream(path, tok, 256, seed=1, buffer_size=6))
    assert [next(again)[0].row for _ in range(40)] == first
    in_order = iter(PairStream(path, tok, 256, seed=1, buffer_size=1))
    assert [next(in_order)[0].row for _ in range(20)] == list(range(1, 21))


def test_streaming_training_resumes_exactly(tiny_llama, pairs_file, tmp_path, monkeypatch):
    stream = dict(streaming=True, max_steps=6, shuffle_buffer=5, batch_size=4)  # 6 steps > one epoch of 4
    train(_cfg(tiny_llama, pairs_file, tmp_path / "full", **stream))
    interrupted_run(monkeypatch, _cfg(tiny_llama, pairs_file, tmp_path / "cut", **stream), 4)
    train(_cfg(tiny_llama, pairs_file, tmp_path / "cut", resume=True, **stream))
    _same_run(tmp_path / "full", tmp_path / "cut")


def test_streaming_errors(tiny_llama, tmp_path):
    with pytest.raises(ConfigError, match="--streaming needs --max-steps"):
        train(_cfg(tiny_llama, "x.jsonl", tmp_path / "o", streaming=True))
    bad = write_jsonl(tmp_path / "bad.jsonl", PAIRS + [{"prompt": "p", "chosen": "a", "rejected": "a"}])
    with pytest.raises(DataError, match=r"bad\.jsonl: row 5: chosen and rejected are identical"):
        train(_cfg(tiny_llama, bad, tmp_path / "o2", streaming=True, max_steps=3, batch_size=2))


def test_iter_rows_reads_lazily_from_every_format(tmp_path):
    import datasets

    from rewardlab.data import iter_rows

    ds = datasets.Dataset.from_list(PAIRS)
    ds.to_parquet(str(tmp_path / "p.parquet"))
    ds.to_csv(str(tmp_path / "p.csv"), index=False)
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("\n".join(__import__("json").dumps(r) for r in PAIRS[:2]) + "\n\n"
                     + __import__("json").dumps(PAIRS[2]) + "\n")
    for name in ("p.parquet", "p.csv"):
        assert [r for _, r in iter_rows(str(tmp_path / name))] == PAIRS, name
    assert [n for n, _ in iter_rows(str(jsonl))] == [1, 2, 4]  # numbers are file lines
