"""Kind genrm (a generative verifier, Zhang et al. 2024): the loss in closed form, and end to end
on a tiny causal model: train -> score -> eval -> serve, the saved folder a plain causal language
model whose p(Yes) / (p(Yes) + p(No)) after the question is the reward rewardlab gives."""

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rewardlab.cli import main
from rewardlab.data.pointwise import Encoded, Point
from rewardlab import kinds
from rewardlab.kinds import genrm
from tests.test_cli_kinds import _rows, _write


def test_loss_is_the_next_token_cross_entropy_of_the_verdict():
    vocab, yes, no = 6, 2, 4
    outputs = torch.tensor([[0.0, 1.0, 2.0, 0.5, -1.0, 0.0], [1.0, 0.0, -2.0, 0.0, 3.0, 0.0]])
    one_read = Encoded([[0]], [[0]])
    items = [(Point("q", "a", genrm.Verdict(1.0, yes, no)), one_read),
             (Point("q", "b", genrm.Verdict(0.25, yes, no)), one_read)]
    logp = torch.log_softmax(outputs, -1)
    want = -(logp[0, yes]) - (0.25 * logp[1, yes] + 0.75 * logp[1, no])
    value, stats = genrm.loss(outputs, items, genrm.Options())
    assert value.item() == pytest.approx(want.item(), rel=1e-6)
    # row 0: Yes more likely, label 1 -> right; row 1: No more likely, label 0.25 -> right
    assert stats == {"correct": 2.0, "examples": 2.0}
    # logits 2.0 (Yes) and -1.0 (No): p(Yes) / (p(Yes) + p(No)) = sigmoid(2.0 - (-1.0))
    assert genrm.p_yes(outputs[:1], [yes, no]) == pytest.approx(1 / (1 + math.exp(-3.0)))


def test_a_template_file_is_read_and_an_empty_one_refused(tmp_path):
    from rewardlab.config import ConfigError

    path = tmp_path / "q.txt"
    path.write_text("\nVerify: is it right (Yes/No)?\n")  # an editor's final newline is dropped
    assert genrm.Options(genrm_template=str(path)).question() == "\nVerify: is it right (Yes/No)?"
    # training fixes the question as text, so a model evaluates elsewhere without the file
    spec = genrm.head(genrm.Options(genrm_template=str(path)))
    assert spec.fixed == {"genrm_template": "", "genrm_question": "\nVerify: is it right (Yes/No)?"}
    path.unlink()
    assert genrm.Options(**spec.fixed).question() == "\nVerify: is it right (Yes/No)?"
    path.write_text("  ")
    with pytest.raises(ConfigError, match="empty"):
        genrm.Options(genrm_template=str(path)).question()
    with pytest.raises(ConfigError, match="not both"):
        genrm.Options(genrm_template=str(path), genrm_question="Right?")


def _p_yes_plain(tok, model, prompt: str, completion: str, question: str) -> float:
    ids = tok(prompt + completion + question, return_tensors="pt").input_ids
    yes, no = (tok.encode(v, add_special_tokens=False)[0] for v in (" Yes", " No"))
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1]
    return torch.softmax(logits[[yes, no]], -1)[0].item()


def test_genrm_end_to_end(tiny_llama, tmp_path, capsys):
    data = _write(tmp_path / "orm.jsonl", _rows("orm"))
    out = str(tmp_path / "genrm")
    assert main(["train", "--model", tiny_llama, "--kind", "genrm", "--data", data, "--eval-data", data,
                 "--output", out, "--batch-size", "4", "--lr", "1e-3", "--save-every", "0", "--epochs", "3"]) == 0
    first = json.loads((tmp_path / "genrm" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["loss"] > 5  # the verdict starts as one token of the whole vocabulary: ~log(49152) = 10.8
    scored = tmp_path / "scored.jsonl"
    assert main(["score", "--model", out, "--data", data, "--output", str(scored)]) == 0
    rows = [json.loads(x) for x in scored.read_text().splitlines()]
    tok, model = AutoTokenizer.from_pretrained(out), AutoModelForCausalLM.from_pretrained(out).eval()
    assert model.config.rewardlab["kind"] == "genrm" and model.config.rewardlab["head"] == "lm"
    for row in rows:  # README: p(Yes) / (p(Yes) + p(No)) at the last token of the question, plain transformers
        assert row["reward"] == pytest.approx(_p_yes_plain(tok, model, row["prompt"], row["completion"],
                                                           genrm.QUESTION), abs=1e-5)
    capsys.readouterr()
    assert main(["eval", "--model", out, "--data", data, "--json"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["kind"] == "genrm" and m["n"] == 8 and {"auroc", "brier", "ece", "best_of_n"} <= set(m)
    assert m["accuracy"] >= 0.5


def test_genrm_is_served(tiny_llama, tmp_path):
    import httpx

    from rewardlab.config import ServeConfig
    from rewardlab.inference import RewardModel
    from rewardlab.serve import create_app
    from tests.conftest import serving

    data = _write(tmp_path / "orm.jsonl", _rows("orm"))
    out = str(tmp_path / "genrm")
    template = tmp_path / "question.txt"
    template.write_text("\nVerdict, is the sum right (Yes/No)?\n")
    assert main(["train", "--model", tiny_llama, "--kind", "genrm", "--data", data, "--output", out,
                 "--batch-size", "4", "--max-steps", "2", "--save-every", "0", "--genrm-template", str(template)]) == 0
    template.unlink()  # the question travels with the model, not the file
    tok, plain = AutoTokenizer.from_pretrained(out), AutoModelForCausalLM.from_pretrained(out).eval()
    assert plain.config.rewardlab["extras"]["genrm_question"] == "\nVerdict, is the sum right (Yes/No)?"
    rm = RewardModel.from_pretrained(out, device="cpu")
    rows = [{"prompt": r["prompt"], "completion": r["completion"]} for r in _rows("orm")[:4]]
    local = [d["reward"] for d in rm.score_details([rm_text(rm, r) for r in rows])[0]]
    with serving(create_app(rm, ServeConfig(model=out))) as url:
        got = httpx.post(f"{url}/score", json={"rows": rows}, timeout=60).json()["rows"]
        body = {"query": [r["prompt"] + r["completion"] for r in rows], "prompts": [r["prompt"] for r in rows]}
        answer = httpx.post(f"{url}/get_reward", json=body, timeout=60).json()
    rewards, logs = answer["rewards"], answer["extra_logs"]
    assert set(logs) == {"p_yes", "p_no"} and len(logs["p_yes"]) == 4  # the verdicts' probabilities, per item
    assert all(abs(r - y / (y + n)) < 1e-5 for r, y, n in zip(rewards, logs["p_yes"], logs["p_no"]))
    assert [g["reward"] for g in got] == pytest.approx(local, abs=1e-6)
    assert rewards == pytest.approx(local, abs=1e-5)
    assert all(0.0 < r < 1.0 for r in local)
    assert local == pytest.approx([_p_yes_plain(tok, plain, r["prompt"], r["completion"],
                                                "\nVerdict, is the sum right (Yes/No)?") for r in rows], abs=1e-5)


def rm_text(rm, row):
    from rewardlab.data.text import Text

    return Text(row["prompt"], row["completion"])


def test_lora_genrm_reloads_as_trained(tiny_llama_wide, tmp_path):
    from rewardlab.inference import RewardModel

    data = _write(tmp_path / "orm.jsonl", _rows("orm"))
    out = tmp_path / "lora"
    assert main(["train", "--model", tiny_llama_wide, "--kind", "genrm", "--data", data, "--output", str(out),
                 "--lora-r", "4", "--max-steps", "2", "--save-every", "0"]) == 0
    texts = [rm_text(None, r) for r in _rows("orm")[:4]]
    merged = [d["reward"] for d in RewardModel.from_pretrained(str(out)).score_details(texts)[0]]
    adapter = [d["reward"] for d in RewardModel.from_pretrained(str(out / "adapter")).score_details(texts)[0]]
    assert merged == pytest.approx(adapter, abs=1e-5)


def test_only_the_verdict_is_supervised_and_sft_adds_the_correct_completions_tokens(smol_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    rows = [{"prompt": "What is 2 + 3?", "completion": " The sum is 5.", "label": 1},
            {"prompt": "What is 2 + 3?", "completion": " The sum is 6.", "label": 0}]
    parse = genrm.parser(genrm.Options())
    points = [parse(r, tok, "f: row 1", 1) for r in rows]
    items, _ = genrm.encode(tok, points, 256, genrm.Options())
    yes, no = genrm.verdict_ids(tok)
    for (p, enc), row in zip(items, rows):
        ids = enc.sequences[0]
        (read,) = enc.reads[0]  # one supervised position: the question's last token, the verdict comes next
        assert tok.decode(ids[:read + 1], skip_special_tokens=True) == row["prompt"] + row["completion"] + genrm.QUESTION
        assert (p.target.yes, p.target.no, p.target.sft) == (yes, no, [])
    items, _ = genrm.encode(tok, points, 256, genrm.Options(sft_coef=0.5))
    (right, enc), (wrong, enc_wrong) = items
    assert len(enc_wrong.reads[0]) == 1 and wrong.target.sft == []  # a wrong completion is not imitated
    ids, reads = enc.sequences[0], enc.reads[0]
    assert tok.decode(right.target.sft) == rows[0]["completion"]  # exactly the completion's tokens
    assert [ids[r + 1] for r in reads[:-1]] == right.target.sft  # each read predicts the next token
    # the loss: the verdict term plus 0.5 x the mean next-token cross-entropy of the completion
    outputs = torch.randn(len(reads) + 1, len(tok))
    value, _ = genrm.loss(outputs, items, genrm.Options(sft_coef=0.5))
    logp = torch.log_softmax(outputs, -1)
    n = len(reads) - 1
    sft = -logp[torch.arange(n), torch.tensor(right.target.sft)].mean()
    want = 0.5 * sft - logp[n, yes] - logp[n + 1, no]
    assert value.item() == pytest.approx(want.item(), rel=1e-5)


def test_an_encoder_is_refused_with_one_line(tiny_bert, tmp_path, capsys):
    data = _write(tmp_path / "orm.jsonl", _rows("orm"))
    assert main(["train", "--model", tiny_bert, "--kind", "genrm", "--data", data, "--output",
                 str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("rewardlab: error: model") and "not a causal language model" in err


def test_candidates_of_one_prompt_share_its_forward(tiny_llama, tmp_path):
    """N solutions of one question sent as whole texts: the question is encoded once (the
    shared-prompt forward), and each reward equals the text scored alone."""
    from rewardlab.data.text import Text
    from rewardlab.inference import RewardModel

    data = _write(tmp_path / "orm.jsonl", _rows("orm"))
    out = str(tmp_path / "genrm")
    assert main(["train", "--model", tiny_llama, "--kind", "genrm", "--data", data, "--output", out,
                 "--max-steps", "1", "--save-every", "0"]) == 0
    rm = RewardModel.from_pretrained(out, device="cpu")
    question = "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May. " * 3
    texts = [Text(question, f" She sold {n} clips altogether.") for n in (72, 71, 96, 48)]
    seen = []
    hook = rm.model.get_input_embeddings().register_forward_hook(lambda m, args, out: seen.append(args[0].numel()))
    together = [d["reward"] for d in rm.score_details(texts)[0]]
    hook.remove()
    alone = [rm.score_details([t])[0][0]["reward"] for t in texts]
    assert together == pytest.approx(alone, abs=1e-5)
    each = [len(rm.tokenizer(t.prompt + t.completion + genrm.QUESTION).input_ids) for t in texts]
    assert sum(seen) < 0.5 * sum(each)  # the question's tokens went through the model once, not four times


def test_a_rationale_is_trained_before_the_verdict(smol_tokenizer_dir):
    """GenRM-CoT rows: completion, the cue, the rationale, then the question; the rationale's
    tokens and the verdict are the supervised positions, the loss adds the rationale's mean
    next-token cross-entropy."""
    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    rows = [{"prompt": "What is 2 + 3?", "completion": " The sum is 6.", "label": 0,
             "rationale": "2 + 3 = 5, not 6."}]
    parse = genrm.parser(genrm.Options())
    items, _ = genrm.encode(tok, [parse(r, tok, "f: row 1", 1) for r in rows], 256, genrm.Options())
    (p, enc), = items
    ids, reads = enc.sequences[0], enc.reads[0]
    assert tok.decode(ids, skip_special_tokens=True) == ("What is 2 + 3? The sum is 6." + genrm.CUE
                                                         + "2 + 3 = 5, not 6." + genrm.QUESTION)
    assert tok.decode(p.target.rationale).strip() == "2 + 3 = 5, not 6." and p.target.sft == []
    assert [ids[r + 1] for r in reads[:-1]] == p.target.rationale  # each read predicts the next rationale token
    outputs = torch.randn(len(reads), len(tok))
    value, _ = genrm.loss(outputs, items, genrm.Options())
    logp = torch.log_softmax(outputs, -1)
    n = len(reads) - 1
    want = -logp[torch.arange(n), torch.tensor(p.target.rationale)].mean() - logp[n, p.target.no]
    assert value.item() == pytest.approx(want.item(), rel=1e-5)
    with pytest.raises(Exception, match="f: row 1: 'rationale' must be a non-empty string"):
        parse({**rows[0], "rationale": 3}, tok, "f: row 1", 1)


def test_sampled_rationales_average_p_yes_and_are_reproducible(tiny_llama, tmp_path):
    from rewardlab.data.text import Text
    from rewardlab.inference import RewardModel

    rows = [{**r, "rationale": f"Checking: the sum is {r['answer']}."} for r in _rows("orm")]
    data = _write(tmp_path / "cot.jsonl", rows)
    out = str(tmp_path / "cot")
    assert main(["train", "--model", tiny_llama, "--kind", "genrm", "--data", data, "--output", out,
                 "--max-steps", "2", "--save-every", "0", "--genrm-samples", "3", "--genrm-rationale-tokens", "12",
                 "--genrm-temperature", "1.0"]) == 0
    rm = RewardModel.from_pretrained(out, device="cpu")
    texts = [Text(r["prompt"], r["completion"]) for r in _rows("orm")[:3]]
    first = rm.score_details(texts)[0]
    again = rm.score_details(texts[::-1])[0][::-1]  # another batch, another order: the same samples
    assert first == again
    tok, plain = AutoTokenizer.from_pretrained(out), AutoModelForCausalLM.from_pretrained(out).eval()
    for t, d in zip(texts, first):
        assert len(d["rationales"]) == 3 and len(d["sample_rewards"]) == 3
        each = [_p_yes_plain(tok, plain, t.prompt, t.completion, genrm.CUE + r + genrm.QUESTION)
                for r in d["rationales"]]
        assert d["sample_rewards"] == pytest.approx(each, abs=1e-5)
        assert d["reward"] == pytest.approx(sum(each) / 3, abs=1e-5)
    scored = tmp_path / "scored.jsonl"
    assert main(["score", "--model", out, "--data", data, "--output", str(scored), "--samples", "0"]) == 0
    direct = [json.loads(x)["reward"] for x in scored.read_text().splitlines()][:3]
    assert direct == pytest.approx([_p_yes_plain(tok, plain, t.prompt, t.completion, genrm.QUESTION) for t in texts],
                                   abs=1e-5)  # --samples 0: the verdict right after the question


def test_the_shared_prompt_forward_trains_as_the_padded_one(tiny_llama):
    """Solutions of one question, with SFT tokens and a rationale: the shared-prompt batch (the
    question once) gives the padded batch's loss."""
    from rewardlab.models.heads import HeadOutputs

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    rows = [{"prompt": "What is 2 + 3? Think.", "completion": f" The sum is {n}.", "label": int(n == 5)}
            for n in (5, 6, 7)] + [{"prompt": "What is 2 + 3? Think.", "completion": " 5.", "label": 1,
                                    "rationale": "2 + 3 = 5."}]
    obj = genrm.Options(sft_coef=0.5)
    parse = genrm.parser(obj)
    items, _ = genrm.encode(tok, [parse(r, tok, "f", 1) for r in rows], 256, obj)
    forward = HeadOutputs(model)
    batch = kinds.get("genrm").batch
    values = [genrm.loss(forward(batch(items, tok.pad_token_id, path, "cpu")), items, obj)[0].item()
              for path in ("shared", "padded")]
    assert values[0] == pytest.approx(values[1], rel=1e-5)
