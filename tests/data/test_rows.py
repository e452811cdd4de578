import gzip
import json

import pytest

from rewardlab.data import DataError, load_examples, read_rows, split_shared_prefix
from tests.conftest import PAIRS, shared_data, write_jsonl


@pytest.fixture(scope="module")
def smol_tok(smol_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_tokenizer_dir)


def test_split_shared_prefix_moves_to_word_start():
    prompt, c, r = split_shared_prefix("\n\nHuman: hi\n\nAssistant: I can help.",
                                       "\n\nHuman: hi\n\nAssistant: I won't.")
    assert prompt == "\n\nHuman: hi\n\nAssistant:"
    assert (c, r) == (" I can help.", " I won't.")


def test_explicit_format(tmp_path):
    pairs = load_examples(write_jsonl(tmp_path / "p.jsonl", PAIRS), None)
    assert len(pairs) == 4 and pairs[0].prompt == PAIRS[0]["prompt"] and pairs[0].chosen == " Paris."
    assert pairs[0].margin == 0.0 and not pairs[0].templated


def test_implicit_prompt_format(tmp_path):
    rows = [{"chosen": r["prompt"] + r["chosen"], "rejected": r["prompt"] + r["rejected"]} for r in PAIRS]
    pairs = load_examples(write_jsonl(tmp_path / "p.jsonl", rows), None)
    assert [p.prompt for p in pairs] == [r["prompt"] for r in PAIRS]
    assert [p.rejected for p in pairs] == [r["rejected"] for r in PAIRS]


def test_conversational_format_uses_chat_template(tmp_path, smol_tok):
    user = {"role": "user", "content": "Capital of France?"}
    rows = [{"chosen": [user, {"role": "assistant", "content": "Paris."}],
             "rejected": [user, {"role": "assistant", "content": "No idea."}]}]
    (pair,) = load_examples(write_jsonl(tmp_path / "c.jsonl", rows), smol_tok)
    assert pair.templated
    assert pair.prompt.endswith("<|im_start|>assistant\n") and "Capital of France?" in pair.prompt
    assert pair.chosen == "Paris.<|im_end|>" and pair.rejected == "No idea.<|im_end|>"


def test_conversational_without_template_uses_the_plain_one(tmp_path, tiny_bert):
    from transformers import AutoTokenizer

    from rewardlab.data.text import chat_rendering

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    tok.chat_template = None
    rows = [{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q"},
                        {"role": "assistant", "content": "r"}, {"role": "user", "content": "q2"}],
             "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}]
    (pair,) = load_examples(write_jsonl(tmp_path / "c.jsonl", rows), tok)
    prompt = "\n\nSystem: Be brief.\n\nHuman: q\n\nAssistant: r\n\nHuman: q2\n\nAssistant:"
    assert (pair.prompt, pair.chosen, pair.rejected, pair.templated) == (prompt, " a", " b", False)
    assert "plain template" in chat_rendering(tok)


def test_margin_and_subset_columns(tmp_path):
    rows = [dict(PAIRS[0], margin=3, subset="chat")]
    (pair,) = load_examples(write_jsonl(tmp_path / "m.jsonl", rows), None)
    assert pair.margin == 3.0 and pair.subset == "chat"


@pytest.mark.parametrize("row, problem", [
    ({"prompt": "p", "chosen": "a"}, "row 2: missing column 'rejected'"),
    ({"prompt": "p", "chosen": 5, "rejected": "b"}, "row 2: 'chosen' must be a string or a list"),
    ({"prompt": "p", "chosen": "   ", "rejected": "b"}, "row 2: empty chosen completion"),
    ({"prompt": "p", "chosen": "same", "rejected": "same"}, "row 2: chosen and rejected are identical"),
    ({"prompt": 3, "chosen": "a", "rejected": "b"}, "row 2: 'prompt' must be a string"),
    ({"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}, "row 2: 'margin' must be a number"),
    ({"prompt": "p", "chosen": "a", "rejected": "b", "margin": -1}, "row 2: 'margin' must be >= 0"),
    ({"chosen": "Human: hi Assistant: ok", "rejected": "Human: hi Assistant:"}, "row 2: empty rejected completion"),
])
def test_bad_rows_name_file_row_and_problem(tmp_path, row, problem):
    path = write_jsonl(tmp_path / "bad.jsonl", [PAIRS[0], row])
    with pytest.raises(DataError) as err:
        load_examples(path, None, allow_empty=False)
    msg = str(err.value)
    assert msg.startswith(path) and problem in msg and "\n" not in msg
    assert msg.endswith("(--skip-bad-rows leaves such rows out)")  # every row error names the way out


def test_unreadable_files(tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text(json.dumps(PAIRS[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"broken\.jsonl: line 2: invalid JSON"):
        read_rows(str(bad))
    with pytest.raises(DataError, match="file not found"):
        read_rows(str(tmp_path / "missing.jsonl"))
    with pytest.raises(DataError, match="unsupported file type"):
        read_rows(write_jsonl(tmp_path / "x.txt", []))
    garbage = tmp_path / "g.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"g\.parquet: cannot read as parquet"):
        read_rows(str(garbage))


def test_skip_bad_rows_counts_and_reports(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [PAIRS[0], {"prompt": "p", "chosen": "", "rejected": "b"}, PAIRS[1]])
    notes = []
    pairs = load_examples(path, None, skip_bad=True, report=notes.append, allow_empty=False)
    assert len(pairs) == 2 and [p.row for p in pairs] == [1, 3]
    assert "skipped 1 of 3 rows" in notes[0] and "row 2: empty chosen completion" in notes[0]


def test_other_file_formats_and_slices(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list(PAIRS)
    ds.to_parquet(str(tmp_path / "p.parquet"))
    ds.to_csv(str(tmp_path / "p.csv"), index=False)
    ds.save_to_disk(str(tmp_path / "folder"))
    (tmp_path / "p.json").write_text(json.dumps(PAIRS))
    with gzip.open(tmp_path / "p.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in PAIRS))
    for name in ("p.parquet", "p.csv", "folder", "p.json", "p.jsonl.gz"):
        assert [p.chosen for p in load_examples(str(tmp_path / name), None)] == [r["chosen"] for r in PAIRS], name
    tail = read_rows(str(tmp_path / "p.jsonl.gz") + "[2:]")
    assert tail == PAIRS[2:] and tail.number(0) == 3
    bad = write_jsonl(tmp_path / "b.jsonl", PAIRS[:2] + [{"prompt": "p", "chosen": "x", "rejected": "x"}])
    with pytest.raises(DataError, match=r"row 3: chosen and rejected are identical"):
        load_examples(bad + "[1:]", None)


def test_real_hh_rlhf_pairs_split_at_the_last_assistant_turn():
    path = shared_data("hh-rlhf-harmless", "pairs.jsonl.gz")
    pairs = load_examples(str(path), None)  # empty replies are real data: kept by default
    assert len(pairs) == 2000 and sum(p.empty_completions() for p in pairs) == 4
    notes = []
    strict = load_examples(str(path), None, skip_bad=True, report=notes.append, allow_empty=False)
    assert len(strict) == 1996  # 4 real rows have an empty chosen reply: reported, not hidden
    assert "skipped 4 of 2000" in notes[0]
    ends = sum(p.prompt.endswith("Assistant:") for p in pairs)
    assert ends / len(pairs) > 0.95


def test_a_line_that_is_not_utf8_or_json_is_a_bad_row_like_any_other(tmp_path, tiny_llama, capsys):
    """A stray byte once stopped the whole file with a byte offset: now it names its line, and
    --skip-bad-rows leaves it out (counted) in training, or writes it back in `score`."""
    from rewardlab.cli import main

    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(p).encode() for p in PAIRS * 2]
    lines.insert(2, b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}')  # latin-1, not UTF-8
    lines.insert(5, b"{not json")
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError) as err:
        load_examples(str(path), None)
    assert str(err.value).startswith(f"{path}: line 3: not UTF-8 (byte 0xe9 at column 16)")
    assert str(err.value).endswith("(--skip-bad-rows leaves such rows out)")
    notes = []
    kept = load_examples(str(path), None, skip_bad=True, report=notes.append)
    assert len(kept) == 8 and "skipped 2 of 10 rows" in notes[0] and "line 3: not UTF-8" in notes[0]
    model = str(tmp_path / "rm")
    assert main(["train", "--model", tiny_llama, "--data", str(path), "--output", model, "--max-steps", "1",
                 "--skip-bad-rows"]) == 0
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--model", model, "--data", str(path), "--output", str(out)]) == 2
    assert "line 3: not UTF-8" in capsys.readouterr().err
    assert main(["score", "--model", model, "--data", str(path), "--output", str(out), "--skip-bad-rows"]) == 0
    back = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(back) == 10 and back[2]["error"].startswith("line 3: not UTF-8") and back[2]["line"].startswith('{"prompt"')
    assert back[5]["error"].startswith("line 6: invalid JSON") and back[5]["line"] == "{not json"
    assert all("chosen_reward" in b for i, b in enumerate(back) if i not in (2, 5))


def test_csv_cells_are_read_as_written(tmp_path):
    """Found by the fuzz suite: pandas' type guessing read a prompt "\\r0" as the number 0 (and
    "007" as 7, an empty reply as missing); cells are now strings, JSON decoded only where a
    column holds numbers or lists."""
    import csv

    path = tmp_path / "p.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, ["prompt", "completions", "scores", "label", "completion"])
        w.writeheader()
        w.writerow({"prompt": "007", "completions": '["a", "b"]', "scores": "[1, 0]", "label": "1", "completion": ""})
        w.writerow({"prompt": "\r0", "completions": "", "scores": "", "label": "0.5", "completion": "[not json"})
    rows = read_rows(str(path))
    assert rows[0] == {"prompt": "007", "completions": ["a", "b"], "scores": [1, 0], "label": 1, "completion": ""}
    assert rows[1] == {"prompt": "\r0", "completions": None, "scores": None, "label": 0.5, "completion": "[not json"}


def test_a_repeated_key_is_a_bad_row_not_a_silent_overwrite(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(PAIRS[0]) + '\n{"prompt": "p", "chosen": "a", "chosen": "b", "rejected": "c"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl: line 2: duplicate key 'chosen' in one object"):
        load_examples(str(path), None)
    assert len(load_examples(str(path), None, skip_bad=True)) == 1
