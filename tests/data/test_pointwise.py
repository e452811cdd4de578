"""Pointwise rows (orm, prm, value, regression): validation and where labels are read."""

import re

import pytest
from transformers import AutoTokenizer

from rewardlab.data import Text
from rewardlab.data.pointwise import (encode_points, mark_steps, parse_orm, parse_prm, parse_regression, parse_value,
                                      text_point)
from rewardlab.errors import DataError

STEPS = ["Natalia sold 48/2 = 24 clips in May.", "She sold 48 + 24 = 72 clips.", "The answer is 72."]


@pytest.fixture(scope="module")
def tok(smol_tokenizer_dir):
    return AutoTokenizer.from_pretrained(smol_tokenizer_dir)


def test_orm_reads_every_completion_token_and_no_prompt_token(tok):
    p = parse_orm({"prompt": "Question: how many?", "completion": " 72 clips.", "label": True}, tok, "f: row 1", 1)
    [(_, enc)], _ = encode_points(tok, [p], 256, "tokens")
    ids, reads = enc.sequences[0], enc.reads[0]
    assert tok.decode(ids[reads[0]:reads[-1]]) == " 72 clips."  # the completion, then the EOS at the last read
    assert reads == list(range(reads[0], len(ids))) and ids[reads[-1]] == tok.eos_token_id
    [(_, last)], _ = encode_points(tok, [p], 256, "last")
    assert last.reads == [[len(ids) - 1]]


@pytest.mark.parametrize("marker", ["\n", "\n\n", " <extra_0>"])
def test_prm_label_is_read_at_each_markers_last_token(tok, marker):
    row = {"prompt": "Q: how many clips?", "steps": STEPS, "labels": [True, False, False]}
    p = parse_prm(row, tok, "f: row 1", 1, marker)
    [(_, enc)], _ = encode_points(tok, [p], 256, "steps")
    ids, reads = enc.sequences[0], enc.reads[0]
    assert len(reads) == 3 and reads == sorted(reads)
    text = tok.decode(ids[:reads[-1] + 1])
    assert text.endswith(marker)
    for r, step in zip(reads, STEPS):  # each read token ends the marker right after its step
        assert tok.decode(ids[:r + 1]).endswith(step + marker)


def test_step_marking_is_the_same_in_training_and_scoring(tok):
    """Round trip: a training row and the plain text a server receives read the same tokens."""
    p = parse_prm({"prompt": "Q:", "steps": STEPS, "labels": [1, 1, 0]}, tok, "f: row 1", 1, "\n")
    plain = Text("Q:", "\n".join(STEPS))  # the last step without a separator, as users send it
    q = text_point(plain, "\n")
    a, _ = encode_points(tok, [p], 256, "steps")
    b, _ = encode_points(tok, [q], 256, "steps")
    assert a[0][1].sequences == b[0][1].sequences and a[0][1].reads == b[0][1].reads


def test_prm_label_schemes_and_first_error_rows(tok):
    base = {"prompt": "Q:", "steps": STEPS}
    assert parse_prm({**base, "labels": [1, 0, 0]}, tok, "w", 1, "\n").target == [1.0, 0.0, 0.0]
    assert parse_prm({**base, "labels": [0.9, 0.3, 0.0]}, tok, "w", 1, "\n", "soft").target == [0.9, 0.3, 0.0]
    assert parse_prm({**base, "labels": [1, 0, -1]}, tok, "w", 1, "\n", "ternary").target == [1.0, 0.0, -1.0]
    assert parse_prm({"problem": "Q:", "steps": STEPS, "label": 1}, tok, "w", 1, "\n").target == [1.0, 0.0, 0.0]
    assert parse_prm({**base, "label": -1}, tok, "w", 1, "\n").target == [1.0, 1.0, 1.0]
    bad = [({**base, "labels": [1, 0]}, "binary", "one label per step (3), got 2"),
           ({**base, "labels": [1, -1, 0]}, "binary", "--prm-labels ternary"),
           ({**base, "labels": [1, 0.3, 0]}, "binary", "--prm-labels soft"),
           ({**base, "labels": [1, 2, 0]}, "ternary", "must be -1, 0 or 1"),
           ({**base, "labels": [1, 1.5, 0]}, "soft", "must be in [0, 1]"),
           ({**base, "label": 3}, "binary", "first wrong step"),
           ({"prompt": "Q:", "steps": ["a", ""], "labels": [1, 1]}, "binary", "non-empty strings")]
    for row, scheme, message in bad:
        with pytest.raises(DataError, match="^data.jsonl: row 4: ") as e:
            parse_prm(row, tok, "data.jsonl: row 4", 4, "\n", scheme)
        assert message in str(e.value) and "\n" not in str(e.value)


def test_orm_value_regression_rows_are_checked(tok):
    where = "d.jsonl: row 2"
    assert parse_orm({"prompt": "Q", "completion": " a", "label": 0.25}, tok, where, 2).target == 0.25
    assert parse_value({"prompt": "Q", "completion": " a", "reward": -3}, tok, where, 2).target == -3.0
    p = parse_regression({"prompt": "Q", "completion": " a", "ratings": {"b": 2, "a": None}}, tok, where, 2, ["a", "b"])
    assert p.target == [None, 2.0]
    for fn, row, message in [
            (parse_orm, {"prompt": "Q", "completion": " a", "label": 2}, "must be in [0, 1]"),
            (parse_orm, {"prompt": "Q", "completion": " a"}, "missing column 'label'"),
            (parse_value, {"prompt": "Q", "completion": " a", "reward": "high"}, "must be a number"),
            (lambda r, *a: parse_regression(r, *a, ["a"]), {"prompt": "Q", "completion": " a", "ratings": {"z": 1}},
             "does not have"),
            (lambda r, *a: parse_regression(r, *a, ["a"]), {"prompt": "Q", "completion": " a", "ratings": {"a": None}},
             "rates no attribute")]:
        with pytest.raises(DataError, match=f"^{re.escape(where)}: .*{re.escape(message)}"):
            fn(row, tok, where, 2)


def test_truncation_cuts_the_prompt_and_counts_what_cannot_fit(tok):
    long_prompt = "word " * 60
    p = parse_prm({"prompt": long_prompt, "steps": STEPS, "labels": [1, 1, 1]}, tok, "w", 1, "\n")
    full, _ = encode_points(tok, [p], 1000, "steps")
    cut, counts = encode_points(tok, [p], 50, "steps")
    n = len(full[0][1].sequences[0]) - 50
    assert counts.truncated == 1 and len(cut[0][1].sequences[0]) == 50
    assert cut[0][1].reads[0] == [r - n for r in full[0][1].reads[0]]  # the same tokens, shifted
    assert cut[0][1].sequences[0][-1] == full[0][1].sequences[0][-1]
    none, counts = encode_points(tok, [p], 12, "steps")  # the steps alone do not fit: skipped, counted
    assert none == [] and counts.skipped == 1
    scored, _ = encode_points(tok, [p], 12, "steps", cut_completion=True)  # scoring keeps the end
    shift = len(full[0][1].sequences[0]) - 12
    assert scored[0][1].reads[0][0] is None and scored[0][1].reads[0][-1] == full[0][1].reads[0][-1] - shift


def test_mark_steps():
    assert mark_steps(["a", "bc"], "\n") == ("a\nbc\n", [2, 5])
