"""Group rows (prompt + K completions with a ranking or scores) -> Examples, and their encoding."""

import pytest

from rewardlab.data import DataError, load_examples
from rewardlab.data.encode import encode_examples
from tests.conftest import GROUP_ROWS, write_jsonl


def test_group_rows_become_tiers(tmp_path):
    gsm, colour, partial, pair, graded = load_examples(write_jsonl(tmp_path / "g.jsonl", GROUP_ROWS), None)
    assert gsm.tiers == [0, 1, 0, 1] and gsm.scores == [1.0, 0.0, 1.0, 0.0]
    assert gsm.strict_pairs() == [(0, 1), (0, 3), (2, 1), (2, 3)] and gsm.tied_pairs() == [(0, 2), (1, 3)]
    assert colour.tiers == [1, 2, 0] and colour.strict_pairs() == [(0, 1), (2, 0), (2, 1)]
    # A partial top-k: the unlisted are below the listed, never compared among themselves.
    assert partial.tiers == [0, None, None, 0] and partial.strict_pairs() == [(0, 1), (0, 2), (3, 1), (3, 2)]
    assert partial.tied_pairs() == [(0, 3)]
    assert pair.tiers == [0, 1] and pair.is_pair  # a ranked K=2 row is a pair
    assert graded.tiers == [0, 2, 1]


def test_nested_ranking_ties():
    from rewardlab.data.preference import tiers_from_ranking

    assert tiers_from_ranking([2, [0, 3], 1], 4, False, "w") == [1, 2, 0, 1]


@pytest.mark.parametrize("row, problem", [
    ({"prompt": "p", "completions": ["a", "b"], "ranking": [0, 2]}, "'ranking' index 2 is out of range for 2"),
    ({"prompt": "p", "completions": ["a", "b"], "ranking": [0, [0, 1]]}, "'ranking' lists completion 0 twice"),
    ({"prompt": "p", "completions": ["a", "b", "c"], "ranking": [2, 0]}, "'ranking' leaves out completions [1]"),
    ({"prompt": "p", "completions": ["a", "b"], "ranking": ["a"]}, "'ranking' holds 'a'"),
    ({"prompt": "p", "completions": ["a", "b"], "scores": [1]}, "'scores' must hold one number per completion (2), got 1"),
    ({"prompt": "p", "completions": ["a", "b"], "scores": [1, "x"]}, "scores[1] must be a number"),
    ({"prompt": "p", "completions": ["a", "a"], "scores": [1, 0]}, "fewer than 2 distinct completions"),
    ({"prompt": "p", "completions": ["a"], "scores": [1]}, "'completions' must be a list of at least 2"),
    ({"prompt": "p", "completions": ["a", "b"]}, "needs exactly one of 'ranking' or 'scores'"),
    ({"prompt": "p", "completions": ["a", "b"], "scores": [1, 0], "ranking": [0, 1]}, "exactly one of"),
    ({"completions": ["a", "b"], "scores": [1, 0]}, "missing column 'prompt'"),
    ({"prompt": "p", "completions": ["a", "b", "c"], "ranking": [0, [], [1, 2]]}, "an empty tie group"),
    ({"prompt": "p", "completions": ["a", "a", "b"], "scores": [1, 0, 0.5]}, "the same completion is ranked twice"),
    ({"prompt": "p", "completions": ["a", "b"], "scores": [10 ** 400, 1]}, "scores[0] must be a finite number"),
    ({"prompt": "p", "completions": ["a", "b"], "scores": [float("nan"), 1]}, "scores[0] must be a finite number"),
    ({"prompt": "p", "completions": ["a", "b"], "ranking": [0], "partial": "false"}, "'partial' must be true or false"),
    ({"prompt": "p", "completions": ["a", "b"], "scores": [1, 0], "answers": [[1], [2]]}, "'answers' must hold one"),
])
def test_bad_group_rows_are_one_line(tmp_path, row, problem):
    path = write_jsonl(tmp_path / "bad.jsonl", [GROUP_ROWS[0], row])
    with pytest.raises(DataError) as err:
        load_examples(path, None)
    msg = str(err.value)
    assert msg.startswith(f"{path}: row 2: ") and problem in msg and "\n" not in msg
    assert msg.endswith("(--skip-bad-rows leaves such rows out)")


def test_empty_completions_are_kept_and_counted(tmp_path):
    rows = [{"prompt": "p", "completions": ["", "an answer", " "], "scores": [2, 1, 0]}]
    (e,) = load_examples(write_jsonl(tmp_path / "e.jsonl", rows), None)
    assert e.empty_completions() == 2
    with pytest.raises(DataError, match="empty completion 0 "):
        load_examples(write_jsonl(tmp_path / "e.jsonl", rows), None, allow_empty=False)


def test_group_encoding_parallel_and_cached_equal_serial(tmp_path):
    from transformers import AutoTokenizer

    from rewardlab.models.backbone import minilm_path

    tok = AutoTokenizer.from_pretrained(minilm_path())
    examples = load_examples(write_jsonl(tmp_path / "g.jsonl", GROUP_ROWS * 4), tok)
    serial, counts = encode_examples(tok, examples, 64)
    for kw in ({"num_proc": 2}, {"cache_dir": str(tmp_path / "cache")}, {"cache_dir": str(tmp_path / "cache")}):
        other, c = encode_examples(tok, examples, 64, **kw)
        assert [g.sequences for _, g in other] == [g.sequences for _, g in serial] and vars(c) == vars(counts)
    assert [len(g.sequences) for _, g in serial[:5]] == [4, 3, 4, 2, 3]


def test_apply_chat_template_renders_plain_strings(tmp_path, smol_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Rome."}])
    (plain,) = load_examples(path, tok)
    (chat,) = load_examples(path, tok, chat=True)
    assert plain.prompt == "Capital of France?" and not plain.templated
    assert chat.templated and "<|im_start|>user\nCapital of France?<|im_end|>" in chat.prompt
    assert chat.prompt.endswith("<|im_start|>assistant\n") and chat.chosen == "Paris.<|im_end|>"


def test_completions_share_one_prompt():
    from rewardlab.data.preference import one_prompt
    from rewardlab.data.text import Text

    texts = one_prompt([Text("<s>user: hi<a>", "ok", True), Text("<s>user: hi<b>", "no", True)])
    assert [t.prompt for t in texts] == ["<s>user: hi<", "<s>user: hi<"] and [t.completion for t in texts] == ["a>ok", "b>no"]
