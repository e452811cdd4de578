"""Kind judge (a pairwise judge trained on MT-Bench's prompt): both orders of every pair in its
training data, the loss in closed form, the Bradley-Terry fit, and end to end on a tiny causal
model: train -> `rewardlab judge --model` -> score (rewards equal to a hand computation with
plain transformers) -> eval -> serve."""

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rewardlab.cli import main
from rewardlab.data.text import Text
from rewardlab.errors import DataError
from rewardlab.judge.backends import render
from rewardlab.judge.prompts import BUILTIN
from rewardlab import kinds
from rewardlab.kinds import judge
from tests.conftest import make_tiny_llama, write_jsonl

ROWS = [{"prompt": "What is 2 + 3?", "chosen": "5.", "rejected": "6."},
        {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "A car."},
        {"prompt": "What is 10 - 4?", "chosen": "6.", "rejected": "7."},
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Rome."}]


@pytest.fixture(scope="module")
def tiny_chat(tmp_path_factory, smol_tokenizer_dir) -> str:
    """A tiny causal LM whose context holds MT-Bench's pairwise prompt (about 250 tokens of instructions)."""
    return make_tiny_llama(smol_tokenizer_dir, tmp_path_factory.mktemp("tiny_chat"), max_position_embeddings=1024)


def _encoded(tok, rows, obj=judge.Options()):
    parse = judge.parser(obj)
    examples = [parse(r, tok, f"f: row {n}", n) for n, r in enumerate(rows, 1)]
    return examples, judge.encode(tok, examples, 1024, obj)


def test_both_orders_of_every_pair_are_trained_and_only_the_answer_is_supervised(smol_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    rows = ROWS[:1] + [{"prompt": "Pick one.", "completions": ["x", "y", "z"], "scores": [2, 1, 1]}]
    examples, (items, counts) = _encoded(tok, rows)
    assert [e.pairs for e in examples] == [[(0, 1, "A")], [(0, 1, "A"), (0, 2, "A"), (1, 2, "C")]]
    assert len(items) == 4 and counts.skipped == 0
    (target, enc) = items[0]
    answers = examples[0].answers
    for k, (first, second, letter) in enumerate(((0, 1, "A"), (1, 0, "B"))):  # chosen first, then swapped
        seq, reads, tokens = enc.sequences[k], enc.reads[0 + k], target.tokens[k]
        messages = BUILTIN["pair-v2"].messages(question="What is 2 + 3?", answer_a=answers[first],
                                               answer_b=answers[second])
        prompt = render(tok, messages)
        # the prompt, then exactly the answer rewardlab judge parses: [[A]] or [[B]] and the end of the turn
        assert tok.decode(seq) == prompt + f"[[{letter}]]<|im_end|>"
        assert [seq[r + 1] for r in reads] == tokens  # every read predicts the next answer token
        assert tok.decode(tokens) == f"[[{letter}]]<|im_end|>"
        assert tokens[target.letter_at[k]] == target.letters["ABC".index(letter)]
        # the letter is read where `rewardlab judge --soft` reads it: after the prompt and "[["
        assert seq[:reads[target.letter_at[k]] + 1] == tok(prompt + "[[", add_special_tokens=False)["input_ids"]
    tie = items[3][0]
    assert [tie.tokens[k][tie.letter_at[k]] for k in (0, 1)] == [tie.letters[2]] * 2  # a tie is [[C]] both ways


def test_loss_is_the_cross_entropy_of_the_answer_tokens(smol_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    _, (items, _) = _encoded(tok, ROWS[:2])
    n = sum(len(t) for item, _ in items for t in item.tokens)
    torch.manual_seed(0)
    outputs = torch.randn(n, len(tok))
    value, stats = judge.loss(outputs, items, judge.Options())
    targets = torch.tensor([x for item, _ in items for t in item.tokens for x in t])
    want = -torch.log_softmax(outputs, -1)[torch.arange(n), targets].sum()
    assert value.item() == pytest.approx(want.item(), rel=1e-5)
    assert stats["orders"] == 4 and 0 <= stats["correct"] <= 4


def test_bradley_terry_fit_and_win_rates():
    # two completions: sigma(s0 - s1) = P(0 beats 1) exactly (no ridge)
    wins = torch.tensor([[float("nan"), 0.8], [0.2, float("nan")]])
    s = judge.bradley_terry_fit(wins, ridge=0.0)
    assert float(s[0] - s[1]) == pytest.approx(math.log(0.8 / 0.2), abs=1e-8) and float(s.sum()) == pytest.approx(0)
    # P(0 beats 1) from both orders: shown first (p_A + p_C / 2) and shown second (p_B + p_C / 2)
    probs = {"0,1": [0.6, 0.2, 0.2], "1,0": [0.3, 0.5, 0.2]}
    assert judge.beats(probs, 0, 1) == pytest.approx((0.7 + 0.6) / 2)
    answers = judge.rewards_of(probs, 2, "win_rate")
    assert [a["reward"] for a in answers] == pytest.approx([0.65, 0.35])
    bt = judge.rewards_of(probs, 2, "bradley_terry")
    assert bt[0]["reward"] > 0 > bt[1]["reward"] and bt[0]["win_rate"] == pytest.approx(0.65)


def test_bad_rows_and_lone_completions_are_refused(smol_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    parse = judge.parser(judge.Options(judge_template="pair-ref"))
    with pytest.raises(DataError, match=r"^f: row 3: the template uses \{reference\}"):
        parse(ROWS[0], tok, "f: row 3", 3)
    with pytest.raises(DataError, match="f: row 2: .*rejected"):
        judge.parser(judge.Options())({"prompt": "q", "chosen": "a"}, tok, "f: row 2", 2)


def _letters_plain(tok, model, question, a, b):
    """p(A), p(B), p(C) renormalised, after the judge prompt and "[[", with plain transformers."""
    text = render(tok, BUILTIN["pair-v2"].messages(question=question, answer_a=a, answer_b=b)) + "[["
    ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids
    letters = [tok("x[[" + c, add_special_tokens=False).input_ids[-1] for c in "ABC"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1]
    return torch.softmax(logits[letters], -1).tolist()


def test_judge_end_to_end(tiny_chat, tmp_path, capsys):
    import httpx

    from rewardlab.config import ServeConfig
    from rewardlab.inference import RewardModel
    from rewardlab.serve import create_app
    from tests.conftest import serving

    data = write_jsonl(tmp_path / "pairs.jsonl", ROWS)
    out = str(tmp_path / "judge")
    assert main(["train", "--model", tiny_chat, "--kind", "judge", "--data", data, "--eval-data", data,
                 "--output", out, "--batch-size", "2", "--lr", "3e-3", "--epochs", "6", "--max-length", "1024",
                 "--save-every", "0"]) == 0
    capsys.readouterr()
    # the folder is a plain causal LM, and `rewardlab judge` uses it with the same template
    tok, plain = AutoTokenizer.from_pretrained(out), AutoModelForCausalLM.from_pretrained(out).eval()
    assert plain.config.rewardlab["kind"] == "judge"
    judged = tmp_path / "judged.jsonl"
    assert main(["judge", "--model", out, "--data", data, "--output", str(judged), "--soft", "--eval",
                 "--cache", "none"]) == 0
    rows = [json.loads(x) for x in judged.read_text().splitlines()]
    for row in rows:
        first = next(j for j in row["judgments"] if j["order"] == "12")
        question, a, b = (ROWS[row["source_row"] - 1][k] for k in ("prompt", "chosen", "rejected"))
        assert list(first["probs"].values()) == pytest.approx(_letters_plain(tok, plain, question, a, b), abs=1e-5)
    generated = tmp_path / "generated.jsonl"
    assert main(["judge", "--model", out, "--data", data, "--output", str(generated), "--eval", "--cache", "none",
                 "--max-new-tokens", "8"]) == 0
    capsys.readouterr()
    undecided = [json.loads(x) for x in (tmp_path / "generated.undecided.jsonl").read_text().splitlines()]
    assert not [r for r in undecided if r["result"] == "error"]  # it answers in the format the judge parses
    # rewards for K completions of one prompt: win rates over every ordered pair (both orders)
    rm = RewardModel.from_pretrained(out, device="cpu")
    answers = ["5.", "6.", "five", "4."]
    texts = [Text("What is 2 + 3?", x) for x in answers]
    details = rm.score_details(texts)[0]
    for i, d in enumerate(details):
        wins = []
        for j in range(len(answers)):
            if j != i:
                pa, _, pc = _letters_plain(tok, plain, "What is 2 + 3?", answers[i], answers[j])
                _, pb, pc2 = _letters_plain(tok, plain, "What is 2 + 3?", answers[j], answers[i])
                wins.append(((pa + pc / 2) + (pb + pc2 / 2)) / 2)
        assert d["reward"] == pytest.approx(sum(wins) / len(wins), abs=1e-5) and d["compared"] == 3
    assert sum(d["reward"] for d in details) == pytest.approx(2.0, abs=1e-5)  # win rates of 4: sum = 6 pairs / 3
    # eval: agreement, position consistency and position bias on the pairs
    assert main(["eval", "--model", out, "--data", data, "--json"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["kind"] == "judge" and m["pairs"] == 4
    assert {"agreement", "agreement_both_orders", "position_consistency", "prefers_first"} <= set(m)
    # JudgeBench: the net vote over both orders, the benchmark's own rule
    bench = [{"question": r["prompt"], "response_A": a, "response_B": b, "label": label, "source": "mmlu-pro-x"}
             for r in ROWS for a, b, label in ((r["chosen"], r["rejected"], "A>B"), (r["rejected"], r["chosen"], "B>A"))]
    assert main(["eval", "--model", out, "--data", write_jsonl(tmp_path / "jb.jsonl", bench), "--format",
                 "judgebench", "--json"]) == 0
    jb = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    votes = [[d["votes"] for d in g] for g in rm.group_details(
        [[Text(b["question"] + "\n", b["response_A"]), Text(b["question"] + "\n", b["response_B"])] for b in bench])[0]]
    assert all(v[0] == -v[1] and -2 <= v[0] <= 2 for v in votes)  # each row alone: its two answers, two orders
    pair = lambda b: [Text(b["question"] + "\n", b["response_A"]), Text(b["question"] + "\n", b["response_B"])]  # noqa
    together = rm.group_details([pair(b) for b in bench[:2]])[0]  # one question in two rows: never pooled
    alone_rows = [rm.group_details([pair(b)])[0][0] for b in bench[:2]]
    assert [[d["votes"] for d in g] for g in together] == [[d["votes"] for d in g] for g in alone_rows]
    assert [d["reward"] for g in together for d in g] == pytest.approx([d["reward"] for g in alone_rows for d in g],
                                                                       abs=1e-5)
    lone = write_jsonl(tmp_path / "lone.jsonl", [{"prompt": "What is 2 + 3?", "completion": "5."}])
    assert main(["score", "--model", out, "--data", lone, "--output", str(tmp_path / "lone_out.jsonl")]) == 2
    assert "have one completion" in capsys.readouterr().err
    want = sum((v[0] > 0) if b["label"] == "A>B" else (v[0] < 0) for v, b in zip(votes, bench)) / len(bench)
    assert jb["overall"] == pytest.approx(want) and jb["n"] == 8
    # served: a request's completions are compared with one another, as RewardModel does
    score_rows = [{"prompt": "What is 2 + 3?", "completions": answers}]
    with serving(create_app(rm, ServeConfig(model=out))) as url:
        got = httpx.post(f"{url}/score", json={"rows": score_rows}, timeout=60).json()["rows"][0]
        body = {"query": ["What is 2 + 3?" + x for x in answers], "prompts": ["What is 2 + 3?"] * 4}
        answer = httpx.post(f"{url}/get_reward", json=body, timeout=60).json()
        alone = httpx.post(f"{url}/get_reward", json={"query": ["Q? A."], "prompts": ["Q?"]}, timeout=60)
    assert got["rewards"] == pytest.approx([d["reward"] for d in details], abs=1e-5)
    assert answer["rewards"] == pytest.approx([d["reward"] for d in details], abs=1e-5)
    assert set(answer["extra_logs"]) >= {"win_rate", "first_shown_wins", "votes"}
    assert alone.status_code == 400 and "have one completion" in alone.json()["error"]


def test_the_shared_prompt_forward_trains_as_the_padded_one(tiny_chat):
    """Both orders of a pair share the judge's instructions and the question: the shared-prompt
    batch (that prefix once) gives the padded batch's loss."""
    from rewardlab.models.heads import HeadOutputs

    tok = AutoTokenizer.from_pretrained(tiny_chat)
    model = AutoModelForCausalLM.from_pretrained(tiny_chat).eval()
    _, (items, _) = _encoded(tok, ROWS[:3])
    forward = HeadOutputs(model)
    batch = kinds.get("judge").batch
    values = [judge.loss(forward(batch(items, tok.pad_token_id, path, "cpu")), items, judge.Options())[0].item()
              for path in ("shared", "padded")]
    assert values[0] == pytest.approx(values[1], rel=1e-5)


def test_a_rationale_is_trained_before_the_verdict_in_both_orders(smol_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    why = "Assistant A gives the sum, 5; Assistant B is off by one."
    (example,), (items, _) = _encoded(tok, [{**ROWS[0], "rationale": why}])
    (target, enc), = items
    for k, (first, second, text, letter) in enumerate(((0, 1, why, "A"), (1, 0, judge.swap_assistants(why), "B"))):
        prompt = render(tok, BUILTIN["pair-v2"].messages(question="What is 2 + 3?", answer_a=example.answers[first],
                                                         answer_b=example.answers[second]))
        assert tok.decode(enc.sequences[k]) == prompt + text + f"\n\n[[{letter}]]<|im_end|>"
        assert tok.decode(target.tokens[k][:target.rationale_n[k]]).strip() == text  # the blank line may join "[["
    assert judge.swap_assistants(why) == "Assistant B gives the sum, 5; Assistant A is off by one."
    n = sum(len(t) for t in target.tokens)
    torch.manual_seed(0)
    outputs = torch.randn(n, len(tok))
    value, _ = judge.loss(outputs, items, judge.Options())
    each = -torch.log_softmax(outputs, -1)[torch.arange(n), torch.tensor([x for t in target.tokens for x in t])]
    a, r0, r1 = len(target.tokens[0]), target.rationale_n[0], target.rationale_n[1]
    want = each[:r0].mean() + each[r0:a].sum() + each[a:a + r1].mean() + each[a + r1:].sum()
    assert value.item() == pytest.approx(want.item(), rel=1e-5)
    with pytest.raises(DataError, match="f: row 1: 'rationale' must be a non-empty string"):
        judge.parser(judge.Options())({"prompt": "q", "completions": ["a", "b"], "scores": [1, 0], "rationale": "x"},
                                      tok, "f: row 1", 1)
