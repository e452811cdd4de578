import pytest
from transformers import AutoTokenizer

from rewardlab.data import Example, Text
from rewardlab.data.encode import collate, encode_groups, encode_examples


@pytest.fixture(scope="module")
def smol(smol_tokenizer_dir):
    return AutoTokenizer.from_pretrained(smol_tokenizer_dir)


@pytest.fixture(scope="module")
def bert(tiny_bert):
    return AutoTokenizer.from_pretrained(tiny_bert)


def test_eos_appended_once_and_matches_plain_tokenizer(smol):
    (g,), _ = encode_groups(smol, [[Text("Q: hi\nA:", " hello")]], 64)
    assert g.sequences[0] == smol("Q: hi\nA: hello" + smol.eos_token)["input_ids"]
    assert g.sequences[0][-1] == smol.eos_token_id
    (g,), _ = encode_groups(smol, [[Text("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n", "a<|im_end|>",
                                          templated=True)]], 64)
    assert g.sequences[0].count(smol.eos_token_id) == 2  # one from the user turn, one at the end: not doubled


def test_encoder_keeps_its_own_cls_and_sep(bert):
    (g,), _ = encode_groups(bert, [[Text("question?", " answer.")]], 64)
    ids = g.sequences[0]
    assert ids[0] == bert.cls_token_id and ids[-1] == bert.sep_token_id and bert.eos_token_id is None


def test_long_prompt_is_cut_from_the_left_of_each_sequence(smol):
    prompt = " ".join(f"word{i}" for i in range(100))
    pair = Example(prompt, [" short", " a somewhat longer answer"], [0, 1])
    kept, counts = encode_examples(smol, [pair], 20)
    (_, g), = kept
    assert counts.truncated == 1 and counts.skipped == 0
    assert [len(s) for s in g.sequences] == [20, 20]
    ends = [smol.decode(s) for s in g.sequences]
    assert ends[0].endswith(" short" + smol.eos_token) and ends[1].endswith(" a somewhat longer answer" + smol.eos_token)
    assert "word99" in ends[0] and "word0 " not in ends[0]
    # each sequence is exactly what it would be alone: no dependence on its sibling
    (alone,), _ = encode_groups(smol, [[Text(prompt, " short")]], 20)
    assert alone.sequences[0] == g.sequences[0]


def test_completion_too_long_is_skipped_and_counted(smol):
    pair = Example("prompt", [" " + "very long " * 30, " ok"], [0, 1])
    kept, counts = encode_examples(smol, [pair, Example("p", [" a", " b"], [0, 1])], 20)
    assert len(kept) == 1 and counts.skipped == 1 and counts.total == 2
    assert "1 training pairs skipped" in counts.report("training pairs", 20)


def test_scoring_never_drops_a_row(smol):
    (g,), counts = encode_groups(smol, [[Text("p", " " + "very long " * 30)]], 20, cut_completion=True)
    assert len(g.sequences[0]) == 20 and g.sequences[0][-1] == smol.eos_token_id and counts.truncated == 1


def test_bert_truncation_keeps_cls(bert):
    prompt = " ".join(["context"] * 50)
    (g,), counts = encode_groups(bert, [[Text(prompt, " the answer")]], 16)
    ids = g.sequences[0]
    assert len(ids) == 16 and ids[0] == bert.cls_token_id and ids[-1] == bert.sep_token_id
    assert bert.decode(ids[-3:-1]) == "the answer"


def test_collate_right_pads():
    batch = collate([[5, 6, 7], [8]], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_parallel_tokenization_equals_serial(smol):
    pairs = [Example(f"prompt {i} " + "context " * (i % 7) * 10, [f" reply {i}", f" other {i}" + " long" * (i % 5) * 20],
                     [0, 1]) for i in range(40)]
    serial, c1 = encode_examples(smol, pairs, 48)
    parallel, c2 = encode_examples(smol, pairs, 48, num_proc=2)
    assert [(p.prompt, g.sequences, g.truncated) for p, g in serial] == \
           [(p.prompt, g.sequences, g.truncated) for p, g in parallel]
    assert (c1.total, c1.truncated, c1.skipped) == (c2.total, c2.truncated, c2.skipped) and c1.skipped > 0


def test_tokenized_cache_reuses_arrow_data(smol, tmp_path, monkeypatch):
    from rewardlab.data import encode
    from tests.conftest import PAIRS

    pairs = [Example(p["prompt"] * k, [p["chosen"], p["rejected"]], [0, 1]) for k in (1, 9) for p in PAIRS]
    serial, counts = encode_examples(smol, pairs, 48)
    first, c1 = encode_examples(smol, pairs, 48, cache_dir=str(tmp_path))
    assert [g.sequences for _, g in first] == [g.sequences for _, g in serial] and vars(c1) == vars(counts)
    assert counts.truncated > 0  # the cache keeps truncation flags and counts too

    def boom(*a, **k):
        raise AssertionError("tokenized again")

    monkeypatch.setattr(encode, "_tokenize_batch", boom)
    again, c2 = encode_examples(smol, pairs, 48, cache_dir=str(tmp_path))  # loaded from disk
    assert [(p, g.sequences, g.truncated) for p, g in again] == [(p, g.sequences, g.truncated) for p, g in first]
    assert vars(c2) == vars(counts)
    with pytest.raises(Exception, match="tokenized again"):  # other settings, other cache entry
        encode_examples(smol, pairs, 40, cache_dir=str(tmp_path))
