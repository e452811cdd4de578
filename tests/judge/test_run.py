"""Judging logic: order mapping, FastChat tie rules, re-asking, cache resume, local backend, CLI."""

import json
import re

import pytest

from rewardlab.cli import main
from rewardlab.data import DataError
from rewardlab.judge.run import Cache, Runner, agreement, combine, judge_items, orders, winner_of
from rewardlab.judge.data import Item, read_items
from rewardlab.judge.backends import Reply
from rewardlab.judge.prompts import BUILTIN
from tests.conftest import PAIRS, write_jsonl


class Scripted:
    """A stand-in judge model: ``answer(user_text, repair)`` decides each reply."""

    identity = "scripted"
    max_new_tokens = 64

    def __init__(self, answer, stop_after=None):
        self.answer, self.calls, self.stop_after = answer, 0, stop_after

    def generate(self, conversations, temperature=0.0, seed=0, on_done=None, prefix="", max_new_tokens=0):
        out = []
        for i, conv in enumerate(conversations):
            if self.stop_after is not None and self.calls >= self.stop_after:
                raise KeyboardInterrupt
            self.calls += 1
            reply = Reply(self.answer(conv[1]["content"], len(conv) > 2))
            out.append(reply)
            on_done(i, reply)
        return out


def shown(user_text):
    """(answer shown as A, answer shown as B) in a pair-v2 prompt."""
    a = user_text.split("[The Start of Assistant A's Answer]\n")[1].split("\n[The End")[0]
    b = user_text.split("[The Start of Assistant B's Answer]\n")[1].split("\n[The End")[0]
    return a, b


def prefers_paris(text, repair):
    a, b = shown(text)
    return "Clearly [[A]]" if "Paris" in a or "seven" in a else "[[B]]" if "Paris" in b or "seven" in b else "[[C]]"


def items(n=2):
    return [Item(k + 1, p["prompt"], [p["chosen"].strip(), p["rejected"].strip()], p["prompt"],
                 [p["chosen"], p["rejected"]], labelled=True) for k, p in enumerate(PAIRS[:n])]


def test_verdicts_map_back_through_the_order_shown():
    assert winner_of((0, 1), "A") == 0 and winner_of((0, 1), "B") == 1
    assert winner_of((1, 0), "A") == 1 and winner_of((1, 0), "B") == 0
    assert winner_of((1, 0), "C") == -1
    assert winner_of((1, 0), None) is None  # an error stays an error (no "1 - (-1) = 2")


@pytest.mark.parametrize("winners,result", [
    ([0, 0], 0), ([1, 1], 1), ([0, 1], -1), ([0, -1], -1), ([-1, -1], -1), ([0, None], None), ([None, 1], None),
    ([1], 1), ([None], None),
])
def test_fastchat_tie_rules(winners, result):
    assert combine(winners) == result


def test_random_order_is_seeded_per_row():
    rows = [Item(k, "q", ["a", "b"], "q", ["a", "b"]) for k in range(40)]
    first = [orders(i, "random", seed=3) for i in rows]
    assert first == [orders(i, "random", seed=3) for i in rows]
    assert {o[0] for o in first} == {(0, 1), (1, 0)}
    assert orders(rows[0], "both", 0) == [(0, 1), (1, 0)] and orders(rows[0], "first", 0) == [(0, 1)]


def test_consistent_judge_agrees_in_both_orders():
    its = items()
    judge_items(its, BUILTIN["pair-v2"], Runner(Scripted(prefers_paris), Cache(None), progress=False))
    assert [i.winner for i in its] == [0, 0] and all(i.consistent for i in its)
    assert [j["order"] for j in its[0].judgments] == ["12", "21"]
    m = agreement(its)
    assert m["agreement"] == 1.0 and m["position_consistency"] == 1.0 and m["errors"] == 0


def test_position_biased_judge_gives_ties():
    its = items()
    judge_items(its, BUILTIN["pair-v2"], Runner(Scripted(lambda t, r: "[[A]]"), Cache(None), progress=False))
    assert [i.winner for i in its] == [-1, -1]
    m = agreement(its)
    assert m["agreement"] == 0.0 and m["agreement_without_ties"] is None and m["ties"] == 2
    assert m["position_consistency"] == 0.0 and m["agreement_ties_half"] == 0.5
    # one random order instead: the same judge now "agrees" about half the time, by luck
    its = items(4)
    judge_items(its, BUILTIN["pair-v2"], Runner(Scripted(lambda t, r: "[[A]]"), Cache(None), progress=False),
                position="random", seed=1)
    assert {i.winner for i in its} <= {0, 1} and all(len(i.judgments) == 1 for i in its)


def test_unparsable_answers_are_re_asked_then_counted_as_errors():
    its = items()
    runner = Runner(Scripted(lambda t, r: "[[B]]" if r else "I think both are fine."), Cache(None), progress=False)
    stats = judge_items(its, BUILTIN["pair-v2"], runner, parse_retries=1)
    assert stats == {"repair_asked": 4, "repair_fixed": 4, "cut": 0}
    assert [i.winner for i in its] == [-1, -1]  # B in both orders: inconsistent -> tie
    assert its[0].judgments[0]["raw"] == "I think both are fine." and its[0].judgments[0]["repair"] == "[[B]]"

    its = items()
    stats = judge_items(its, BUILTIN["pair-v2"], Runner(Scripted(lambda t, r: "no idea"), Cache(None),
                                                        progress=False), parse_retries=2)
    assert stats["repair_asked"] == 8 and stats["repair_fixed"] == 0
    assert [i.winner for i in its] == [None, None] and all(i.error for i in its)
    assert agreement(its)["errors"] == 2 and agreement(its)["agreement"] == 0.0
    its = items()
    judge_items(its, BUILTIN["pair-v2"], Runner(Scripted(lambda t, r: "no idea"), Cache(None), progress=False),
                parse_retries=0)
    assert all("unparsable" in j["error"] for i in its for j in i.judgments)


def test_single_grading_compares_ratings():
    its = items(2)
    judge = Scripted(lambda t, r: "Rating: [[8]]" if "Paris" in t or "seven" in t else "Rating: [[3]]")
    judge_items(its, BUILTIN["single"], Runner(judge, Cache(None), progress=False))
    assert [i.ratings for i in its] == [[8.0, 3.0], [8.0, 3.0]] and [i.winner for i in its] == [0, 0]
    assert its[0].confidence == pytest.approx(5 / 9)


def test_interrupted_run_resumes_from_the_cache(tmp_path):
    path = str(tmp_path / "cache.jsonl")
    full = items(4)
    judge_items(full, BUILTIN["pair-v2"], Runner(Scripted(prefers_paris), Cache(None), progress=False))
    with pytest.raises(KeyboardInterrupt):
        judge_items(items(4), BUILTIN["pair-v2"], Runner(Scripted(prefers_paris, stop_after=5), Cache(path),
                                                         progress=False))
    with open(path, "ab") as f:
        f.write('{"key": "half-writ\u00e9'.encode()[:-1])  # killed mid-write, inside a UTF-8 character
    judge = Scripted(prefers_paris)
    resumed = items(4)
    judge_items(resumed, BUILTIN["pair-v2"], Runner(judge, Cache(path), progress=False))
    assert judge.calls == 3  # 8 judgments, 5 cached
    assert [i.judgments for i in resumed] == [i.judgments for i in full]
    again = Scripted(prefers_paris)
    runner = Runner(again, Cache(path), progress=False)
    judge_items(items(4), BUILTIN["pair-v2"], runner)
    assert again.calls == 0 and runner.cache.hits == 8  # a rerun costs nothing
    # other settings are other judgments
    other = Scripted(prefers_paris)
    judge_items(items(4), BUILTIN["pair-v2"], Runner(other, Cache(path), temperature=0.7, progress=False))
    assert other.calls == 8


def test_rows_are_checked_with_file_and_row(tmp_path):
    hh = write_jsonl(tmp_path / "hh.jsonl", [{"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello!",
                                              "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away."}])
    (item,) = read_items(hh, "pairwise", False)
    assert item.question == "Human: Hi?" and item.answers == ["Hello!", "Go away."] and item.labelled
    assert item.outputs == [" Hello!", " Go away."] and item.prompt == "\n\nHuman: Hi?\n\nAssistant:"
    chat = write_jsonl(tmp_path / "c.jsonl", [{"prompt": [{"role": "user", "content": "Hi?"}],
                                              "completions": ["a", [{"role": "assistant", "content": "b"}]]}])
    (item,) = read_items(chat, "pairwise", False)
    assert item.question == "User: Hi?" and item.answers == ["a", "b"] and not item.labelled
    cases = [
        ({"prompt": "p", "chosen": "a"}, "pairwise", "row 2: missing column 'rejected'"),
        ({"prompt": "p", "completions": ["a", "b", "c"]}, "pairwise", "row 2: 'completions' must be a list of exactly 2"),
        ({"prompt": "p", "completion": "a"}, "pairwise", "row 2: expected 'chosen' + 'rejected'"),
        ({"prompt": "p", "completion": "a"}, "single-ref", "row 2: the template uses {reference}"),
    ]
    for row, mode, message in cases:
        path = write_jsonl(tmp_path / "bad.jsonl", [dict(PAIRS[0], reference="Paris"), row])
        with pytest.raises(DataError, match=re.escape(f"{path}: {message}")):
            read_items(path, mode.split("-")[0], mode.endswith("ref"))
    # an empty reply is real data (HH-RLHF: silence preferred): judged, not refused
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "  "}])
    assert read_items(empty, "pairwise", False)[0].answers == ["a", ""]


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory, smol_tokenizer_dir):
    """A random 2-layer llama causal LM with SmolLM2's tokenizer and chat template, long context."""
    from tests.conftest import make_tiny_llama

    return make_tiny_llama(smol_tokenizer_dir, tmp_path_factory.mktemp("tiny_judge"), max_position_embeddings=2048,
                           tie_word_embeddings=False)


def test_cli_judge_local_then_train_on_its_output(tiny_judge, tmp_path, capsys):
    data = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    out = tmp_path / "judged.jsonl"
    args = ["judge", "--data", data, "--output", str(out), "--model", tiny_judge, "--eval", "--json"]
    assert main(args + ["--max-new-tokens", "8"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 4 and report["judgments"] >= 8 and report["written"] + report["ties"] + report["errors"] == 4
    assert {"agreement", "agreement_without_ties", "position_consistency", "errors", "n"} <= set(report)
    undecided = [json.loads(x) for x in (tmp_path / "judged.undecided.jsonl").read_text().splitlines()]
    assert len(undecided) == report["ties"] + report["errors"]  # nothing dropped silently
    assert main(args + ["--max-new-tokens", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["fresh_calls"] == 0  # rerun: all from the cache

    assert main(args + ["--soft", "--output", str(tmp_path / "soft.jsonl")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["written"] == 4 and report["errors"] == 0 and 0 <= report["mean_p_human"] <= 1
    rows = [json.loads(x) for x in (tmp_path / "soft.jsonl").read_text().splitlines()]
    for row in rows:
        assert {"prompt", "chosen", "rejected", "confidence", "judgments"} <= set(row) and 0.5 <= row["confidence"] <= 1
        probs = row["judgments"][0]["probs"]
        assert sum(probs.values()) == pytest.approx(1.0) and set(probs) == {"A", "B", "C"}
    # RLAIF: the judge's preferences train a reward model directly
    assert main(["train", "--model", tiny_judge, "--data", str(tmp_path / "soft.jsonl"),
                 "--output", str(tmp_path / "rm"), "--max-steps", "1"]) == 0


def test_cli_judge_errors_are_one_line(tiny_judge, tmp_path, capsys):
    data = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "q", "completions": ["a", "b"]}])
    assert main(["judge", "--data", data, "--output", str(tmp_path / "o.jsonl"), "--eval"]) == 2
    assert capsys.readouterr().err.strip() == "rewardlab: error: --eval needs human labels: chosen/rejected rows"
    with pytest.raises(SystemExit) as exit_:  # argparse rejects a value outside the choices
        main(["judge", "--data", data, "--output", "o.jsonl", "--position", "sideways"])
    assert exit_.value.code == 2
    assert "argument --position: invalid choice: 'sideways'" in capsys.readouterr().err
    assert main(["judge", "--data", data, "--output", "o.jsonl", "--soft", "--backend", "openai"]) == 2
    assert "--soft needs --backend local" in capsys.readouterr().err


def test_python_api_soft_verdicts_locally(tiny_judge):
    from rewardlab.judge import Judge

    judge = Judge(tiny_judge, soft=True, max_new_tokens=8)
    result = judge.compare("What is the capital of France?", "Paris.", "I can't help with that.")
    assert result["winner"] in ("a", "b", "tie") and 0 <= result["p_a"] <= 1
    assert [j["order"] for j in result["judgments"]] == ["12", "21"]


def test_templates_without_a_system_turn_get_it_in_the_first_user_turn(tiny_judge, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    from rewardlab.judge.backends import LocalJudge

    folder = tmp_path / "gemma_like"
    shutil.copytree(tiny_judge, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}"
                         "{{ raise_exception('System role not supported') }}{% endif %}"
                         "<turn>{{ m['role'] }}\n{{ m['content'] }}</turn>\n{% endfor %}<turn>model\n")
    tok.save_pretrained(folder)
    judge = LocalJudge(str(folder), max_new_tokens=4)
    text = judge._render([{"role": "system", "content": "Be fair."}, {"role": "user", "content": "Q?"}])
    assert text.startswith("<turn>user\nBe fair.\n\nQ?</turn>\n<turn>model")


def test_python_api_picks_a_user_templates_mode(tiny_judge, tmp_path):
    from rewardlab.judge import Judge

    single = tmp_path / "grade.txt"
    single.write_text("Rate 1-10 as [[rating]].\nQ: {question}\nA: {answer}")
    judge = Judge(tiny_judge, template=str(single), max_new_tokens=4)
    assert judge.single_template.name == "grade.txt" and judge.pair_template.name == "pair-v2"
