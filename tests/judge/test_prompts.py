"""Judge prompts and strict verdict parsing."""

import pytest

from rewardlab.judge.prompts import BUILTIN, JudgeError, ParseError, load_template, parse_pairwise, parse_rating


def test_pair_v2_is_the_mt_bench_prompt_with_slots_filled():
    msgs = load_template("", "pairwise").messages(question="Q?", answer_a="first", answer_b="second")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"].startswith("Please act as an impartial judge and evaluate the quality of the "
                                         "responses provided by two AI assistants")
    assert msgs[0]["content"].endswith('"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, '
                                       'and "[[C]]" for a tie.')
    assert msgs[1]["content"] == ("[User Question]\nQ?\n\n[The Start of Assistant A's Answer]\nfirst\n"
                                  "[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n"
                                  "second\n[The End of Assistant B's Answer]")


def test_substitution_is_one_pass():
    # An answer that contains a placeholder is inserted literally, never filled again.
    msgs = BUILTIN["pair-v2"].messages(question="{answer_b}", answer_a="{question}", answer_b="b")
    assert "[User Question]\n{answer_b}\n" in msgs[1]["content"]
    assert "Answer]\n{question}\n[The End" in msgs[1]["content"]


def test_reference_templates():
    assert load_template("", "pairwise", reference=True).name == "pair-ref"
    single = load_template("", "single", reference=True)
    assert single.name == "single-ref" and single.needs_reference
    text = single.messages(question="q", answer="a", reference="R")[1]["content"]
    assert "[The Start of Reference Answer]\nR\n[The End of Reference Answer]" in text
    assert not load_template("", "single").needs_reference


def test_user_templates_are_checked_before_any_call(tmp_path):
    good = tmp_path / "t.yaml"
    good.write_text("system: Be fair.\nuser: 'Q: {question}\nA: {answer_a}\nB: {answer_b}\nSay [[A]] or [[B]].'\n")
    t = load_template(str(good), "pairwise")
    assert t.messages(question="q", answer_a="x", answer_b="y")[0] == {"role": "system", "content": "Be fair."}
    missing = tmp_path / "m.txt"
    missing.write_text("Q: {question} A: {answer_a}")
    with pytest.raises(JudgeError, match=r"needs the placeholder\(s\) \{answer_b\}"):
        load_template(str(missing), "pairwise")
    unknown = tmp_path / "u.txt"
    unknown.write_text("{question} {answer_a} {answer_b} {rubric}")
    with pytest.raises(JudgeError, match=r"unknown placeholder\(s\) \{rubric\}"):
        load_template(str(unknown), "pairwise")
    with pytest.raises(JudgeError, match="single template but --mode is pairwise"):
        bad = tmp_path / "s.yaml"
        bad.write_text("mode: single\nuser: '{question} {answer}'\n")
        load_template(str(bad), "pairwise")
    with pytest.raises(JudgeError, match="no such template file"):
        load_template(str(tmp_path / "nope.txt"), "pairwise")
    extra = tmp_path / "e.yaml"
    extra.write_text("user: '{question} {answer}'\ntemprature: 0\n")
    with pytest.raises(JudgeError, match="unknown key"):
        load_template(str(extra), "single")


@pytest.mark.parametrize("text,verdict", [
    ("Assistant A is more helpful. [[A]]", "A"),
    ("Final verdict: [[B]]", "B"),
    ("They are equally good. [[C]]", "C"),
    ("[[B]] because ... so again [[B]]", "B"),
    # the judge echoes the instruction in quotes, then gives its verdict
    ('I must output "[[A]]" if assistant A is better, "[[B]]" if B is better. My verdict: [[B]]', "B"),
    ('My final verdict is "[[A]]".', "A"),  # quoted, but the only verdict there is
])
def test_parse_pairwise(text, verdict):
    assert parse_pairwise(text) == verdict


@pytest.mark.parametrize("text,problem", [
    ("A is better than B.", "no verdict"),
    ("", "no verdict"),
    (None, "no verdict"),
    ("Maybe [[A]], but on reflection [[B]].", "ambiguous"),  # FastChat would silently say A
    ('Output "[[A]]", "[[B]]" or "[[C]]".', "ambiguous"),
    ("[[D]]", "no verdict"),
    ("[A]", "no verdict"),
])
def test_parse_pairwise_errors(text, problem):
    with pytest.raises(ParseError, match=problem):
        parse_pairwise(text)


def test_parse_rating():
    assert parse_rating("Rating: [[7]]") == 7.0
    assert parse_rating("Rating: [[7.5]]") == 7.5
    assert parse_rating("Rating: [8]") == 8.0  # MT-Bench's single-bracket fallback
    assert parse_rating('The format is "Rating: [[5]]". Rating: [[9]]') == 9.0
    assert parse_rating("[[10]] ... [[10.0]]") == 10.0
    for text, problem in [("no number", "no rating"), ("[[11]]", "outside"), ("[[0]]", "outside"),
                          ("[[3]] or [[4]]", "ambiguous")]:
        with pytest.raises(ParseError, match=problem):
            parse_rating(text)
