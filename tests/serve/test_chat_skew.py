"""No train/serve skew on chat-rendered text: RL frameworks (OpenRLHF, verl) send
``tokenizer.apply_chat_template(messages, tokenize=False)``, which ends ``<|im_end|>\\n`` for
SmolLM2; the reward must be read where training read it (at the end-of-turn token), through
``/get_reward``, ``/score``, ``RewardClient`` and ``RewardModel.score``."""

import json

import httpx
import pytest
from transformers import AutoTokenizer

from rewardlab import RewardClient, RewardModel
from rewardlab.cli import main
from rewardlab.data.text import plain_text, to_text
from tests.conftest import PAIRS, shared_data
from tests.serve.test_server import AUTH, KEY, _start


def _conversation(prompt: str, reply: str) -> list[dict]:
    """An HH-style ``Human: ... Assistant:`` prompt and reply as chat messages."""
    turns, messages = prompt.split("\n\nHuman: ")[1:], []
    for turn in turns:
        human, _, assistant = turn.partition("\n\nAssistant:")
        messages.append({"role": "user", "content": human.strip()})
        if assistant.strip():
            messages.append({"role": "assistant", "content": assistant.strip()})
    return messages + [{"role": "assistant", "content": reply.strip()}]


def _held_out() -> list[list[dict]]:
    """Held-out conversations: real HH-RLHF ones when ../shared/data is here, else the test pairs."""
    try:
        import gzip

        path = shared_data("hh-rlhf-harmless", "pairs.jsonl.gz")
        with gzip.open(path, "rt") as f:
            rows = [json.loads(line) for _, line in zip(range(12), f)]
        from rewardlab.data.text import split_shared_prefix

        out = []
        for r in rows:
            prompt, chosen, _ = split_shared_prefix(r["chosen"], r["rejected"])
            if chosen.strip() and "\n\nHuman: " in prompt:
                out.append(_conversation(prompt, chosen))
        return out[:8]
    except pytest.skip.Exception:
        return [_conversation(p["prompt"], p["rejected"]) for p in PAIRS]


@pytest.fixture(scope="module")
def chat_model(tiny_llama, tmp_path_factory):
    folder = tmp_path_factory.mktemp("chat")
    rows = [{"chosen": _conversation(p["prompt"], p["chosen"]), "rejected": _conversation(p["prompt"], p["rejected"])}
            for p in PAIRS]
    data = folder / "chats.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows * 4))
    assert main(["train", "--model", tiny_llama, "--data", str(data), "--output", str(folder / "rm"),
                 "--max-steps", "2", "--lr", "1e-2", "--no-shared-prompt"]) == 0
    return str(folder / "rm")


def test_a_chat_rendered_query_is_read_where_training_read_it(chat_model):
    rm = RewardModel.from_pretrained(chat_model, device="cpu")
    tok = AutoTokenizer.from_pretrained(chat_model)
    conversations = _held_out()
    rendered = [tok.apply_chat_template(c, tokenize=False) for c in conversations]
    assert all(r.endswith("<|im_end|>\n") for r in rendered)
    # The training rendering: the conversation as a message row, as `train` reads it.
    trained = [to_text(c[:-1], c[-1:], tok, "row", chat=True) for c in conversations]
    expected = rm.score_texts(trained)[0]
    assert rm.score([""] * len(rendered), rendered) == pytest.approx(expected, abs=1e-5)
    assert plain_text("", rendered[0], tok).templated
    proc, url = _start(chat_model)
    try:
        got = httpx.post(f"{url}/get_reward", json={"query": rendered}, headers=AUTH, timeout=60).json()["rewards"]
        assert got == pytest.approx(expected, abs=1e-5)
        prompts = [tok.apply_chat_template(c[:-1], tokenize=False, add_generation_prompt=True) for c in conversations]
        with_prompts = httpx.post(f"{url}/get_reward", json={"query": rendered, "prompts": prompts}, headers=AUTH,
                                  timeout=60).json()["rewards"]
        assert with_prompts == pytest.approx(expected, abs=1e-5)
        rows = [{"prompt": c[:-1], "completion": c[-1:]} for c in conversations]
        scored = httpx.post(f"{url}/score", json={"rows": rows}, headers=AUTH, timeout=60).json()["rows"]
        assert [r["reward"] for r in scored] == pytest.approx(expected, abs=1e-5)
        plain_rows = [{"prompt": p, "completion": r[len(p):]} for p, r in zip(prompts, rendered)]
        scored = httpx.post(f"{url}/score", json={"rows": plain_rows}, headers=AUTH, timeout=60).json()["rows"]
        assert [r["reward"] for r in scored] == pytest.approx(expected, abs=1e-5)
        client = RewardClient(url, api_key=KEY)
        assert client.get_reward(rendered) == pytest.approx(expected, abs=1e-5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_backbone_without_a_chat_template_serves_conversations_with_the_plain_one(tiny_bert, tmp_path):
    """The default encoder has no chat template: message rows are rendered with the one plain
    template (HH's layout) by the server as by `score` and `eval`, and the start-up line says so."""
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    model = str(tmp_path / "rm")
    assert main(["train", "--model", tiny_bert, "--data", str(data), "--output", model, "--max-steps", "1",
                 "--save-every", "0"]) == 0
    conversations = [_conversation(p["prompt"], p["chosen"]) for p in PAIRS]
    rm = RewardModel.from_pretrained(model, device="cpu")
    expected = rm.score([to_text(c[:-1], c[-1:], rm.tokenizer, "row", chat=True).prompt for c in conversations],
                        [" " + c[-1]["content"] for c in conversations])
    assert to_text(conversations[0][:-1], conversations[0][-1:], rm.tokenizer, "row", chat=True).prompt.endswith(
        "\n\nAssistant:")
    proc, url = _start(model)
    try:
        rows = [{"prompt": c[:-1], "completion": c[-1:]} for c in conversations]
        scored = httpx.post(f"{url}/score", json={"rows": rows}, headers=AUTH, timeout=60).json()["rows"]
        assert [r["reward"] for r in scored] == pytest.approx(expected, abs=1e-5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "plain template" in proc.stdout.read()
