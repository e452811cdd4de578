"""Every model kind end to end through the CLI on tiny models: train -> score -> eval, and the
saved folder read by plain transformers gives the scores rewardlab gives (the README snippets)."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from rewardlab.cli import main
from tests.conftest import QUESTIONS, OnStep, kind_rows

def _rows(kind: str) -> list[dict]:
    return kind_rows(kind)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _train(model, kind, tmp_path, *extra):
    data = _write(tmp_path / f"{kind}.jsonl", _rows(kind))
    out = str(tmp_path / f"model-{kind}")
    assert main(["train", "--model", model, "--kind", kind, "--data", data, "--eval-data", data, "--output", out,
                 "--batch-size", "4", "--lr", "1e-3", "--save-every", "0", *extra]) == 0
    scored = tmp_path / f"scored-{kind}.jsonl"
    assert main(["score", "--model", out, "--data", data, "--output", str(scored)]) == 0
    return data, out, [json.loads(x) for x in scored.read_text().splitlines()]


def _plain(out, kind):
    tok = AutoTokenizer.from_pretrained(out)
    auto = AutoModelForSequenceClassification if kind == "regression" else AutoModelForTokenClassification
    return tok, auto.from_pretrained(out).eval()


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_bert"])
def test_orm(request, fixture, tmp_path, capsys):
    data, out, scored = _train(request.getfixturevalue(fixture), "orm", tmp_path)
    tok, model = _plain(out, "orm")
    for row in scored:  # README: P(correct) at the last token of prompt + completion (+ EOS)
        ids = tok(row["prompt"] + row["completion"] + (tok.eos_token or ""), return_tensors="pt").input_ids
        with torch.no_grad():
            p = model(input_ids=ids).logits[0, -1, 0].sigmoid().item()
        assert row["reward"] == pytest.approx(p, abs=1e-5)
    capsys.readouterr()
    assert main(["eval", "--model", out, "--data", data, "--json"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["kind"] == "orm" and m["n"] == 8 and m["n_groups"] == 4 and {"auroc", "ece", "brier", "majority"} <= set(m)


def test_prm(tiny_llama, tmp_path, capsys):
    data, out, scored = _train(tiny_llama, "prm", tmp_path)
    tok, model = _plain(out, "prm")
    for row in scored:  # README: the logit at the last token of each step's separator
        prompt, steps = row["prompt"], row["steps"]
        text = prompt + "".join(s + "\n" for s in steps) + tok.eos_token
        enc = tok(text, return_offsets_mapping=True, return_tensors="pt")
        ends = [len(prompt + "".join(s + "\n" for s in steps[:i + 1])) - 1 for i in range(len(steps))]
        spans = enc.offset_mapping[0].tolist()
        cols = [next(t for t, (a, b) in enumerate(spans) if a <= e < b) for e in ends]
        with torch.no_grad():
            expect = model(input_ids=enc.input_ids).logits[0, cols, 0].sigmoid().tolist()
        assert row["step_rewards"] == pytest.approx(expect, abs=1e-5)
        assert row["reward"] == pytest.approx(min(expect), abs=1e-5) and row["aggregate"] == "min"
    # the aggregate can be changed at scoring time, and plain texts split at the separator score the same
    prod = tmp_path / "prod.jsonl"
    assert main(["score", "--model", out, "--data", data, "--output", str(prod), "--aggregate", "prod"]) == 0
    first = json.loads(prod.read_text().splitlines()[0])
    assert first["reward"] == pytest.approx(first["step_rewards"][0] * first["step_rewards"][1], rel=1e-6)
    multi = _write(tmp_path / "multi.jsonl", [{"prompt": "Q", "steps": ["A list:\n- a\n- b", "So 3."]}])
    assert main(["score", "--model", out, "--data", multi, "--output", str(tmp_path / "m.jsonl")]) == 0
    assert len(json.loads((tmp_path / "m.jsonl").read_text())["step_rewards"]) == 2  # a row's steps are its own
    plain = _write(tmp_path / "plain.jsonl", [{"prompt": r["prompt"], "completion": "\n".join(r["steps"])}
                                              for r in _rows("prm")])
    assert main(["score", "--model", out, "--data", plain, "--output", str(tmp_path / "p.jsonl")]) == 0
    as_text = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    for a, b in zip(as_text, scored):
        assert a["step_rewards"] == pytest.approx(b["step_rewards"], abs=1e-6)
    capsys.readouterr()
    assert main(["eval", "--model", out, "--data", data, "--json"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["kind"] == "prm" and m["steps"]["n_steps"] == 16 and "processbench" in m and "best_of_n" in m


def test_value(tiny_llama, tmp_path, capsys):
    data, out, scored = _train(tiny_llama, "value", tmp_path)
    tok, model = _plain(out, "value")
    for row in scored:  # README: the value of every completion token; the reward is the last one
        full = tok(row["prompt"] + row["completion"] + tok.eos_token, return_tensors="pt").input_ids
        n = len(row["values"])
        with torch.no_grad():
            values = model(input_ids=full).logits[0, -n:, 0].tolist()
        assert row["values"] == pytest.approx(values, abs=1e-5) and row["reward"] == pytest.approx(values[-1], abs=1e-5)
        assert n == len(tok(row["completion"]).input_ids) + 1  # completion tokens and the EOS, no prompt token
    capsys.readouterr()
    assert main(["eval", "--model", out, "--data", data, "--json"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["kind"] == "value" and {"mse", "explained_variance", "token_mse"} <= set(m)
    cut = tmp_path / "cut.jsonl"  # a completion longer than max_length: the values cut off are null, not NaN
    assert main(["score", "--model", out, "--data", data, "--output", str(cut), "--max-length", "4"]) == 0
    row = json.loads(cut.read_text().splitlines()[0])
    assert row["values"][0] is None and isinstance(row["values"][-1], float)


def test_regression(tiny_llama, tmp_path, capsys):
    data, out, scored = _train(tiny_llama, "regression", tmp_path, "--weights", "0.75,0.25")
    tok, model = _plain(out, "regression")
    assert model.config.id2label == {0: "helpfulness", 1: "correctness"}
    for row in scored:  # README: one output per attribute at the last token; the reward weighs them
        ids = tok(row["prompt"] + row["completion"] + tok.eos_token, return_tensors="pt").input_ids
        with torch.no_grad():
            h, c = model(input_ids=ids).logits[0].tolist()
        assert row["attributes"] == pytest.approx({"helpfulness": h, "correctness": c}, abs=1e-5)
        assert row["reward"] == pytest.approx(0.75 * h + 0.25 * c, abs=1e-5)
    capsys.readouterr()
    assert main(["eval", "--model", out, "--data", data, "--json"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["attributes"]["correctness"]["n"] == 4 and m["attributes"]["helpfulness"]["n"] == 8


def test_lora_on_a_per_token_kind_reloads_and_scores_as_the_merged_folder(tiny_llama, tmp_path):
    data, out, scored = _train(tiny_llama, "orm", tmp_path, "--lora-r", "4")
    again = tmp_path / "adapter-scored.jsonl"
    assert main(["score", "--model", out + "/adapter", "--data", data, "--output", str(again)]) == 0
    rewards = [json.loads(x)["reward"] for x in again.read_text().splitlines()]
    assert rewards == pytest.approx([r["reward"] for r in scored], abs=1e-5)


def test_bad_rows_name_file_and_row(tiny_llama, tmp_path, capsys):
    rows = _rows("prm")
    rows[2] = {**rows[2], "labels": [True]}
    data = _write(tmp_path / "bad.jsonl", rows)
    assert main(["train", "--model", tiny_llama, "--kind", "prm", "--data", data, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"rewardlab: error: {data}: row 3: 'labels' must hold one label per step (2), got 1")


def test_processbench_format_and_per_token_orm_scores(tiny_llama, tmp_path, capsys):
    data, out, _ = _train(tiny_llama, "prm", tmp_path)
    bench = _write(tmp_path / "pb.jsonl", [{"problem": q, "steps": ["We add.", f"It is {a}."], "label": -1 if a == s else 1,
                                            "split": "gsm8k" if i % 2 else "math"}
                                           for i, (q, s) in enumerate(QUESTIONS * 2) for a in (s, s + 1)])
    capsys.readouterr()
    assert main(["eval", "--model", out, "--data", bench, "--format", "processbench", "--threshold", "0.5",
                 "--json"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["threshold"] == 0.5 and m["n_error"] == 8 and m["n_correct"] == 8 and set(m["splits"]) == {"gsm8k", "math"}
    assert {"acc_error", "acc_correct", "f1"} <= set(m)
    orm_data, orm, _ = _train(tiny_llama, "orm", tmp_path)
    scored = tmp_path / "pt.jsonl"
    assert main(["score", "--model", orm, "--data", orm_data, "--output", str(scored), "--per-token"]) == 0
    row = json.loads(scored.read_text().splitlines()[0])
    assert row["token_rewards"][-1] == pytest.approx(row["reward"]) and len(row["token_rewards"]) > 1
    with pytest.raises(SystemExit):
        main(["eval", "--model", orm, "--data", bench, "--format", "nope"])


def test_streaming_and_resume_work_for_a_per_token_kind(tiny_llama, tmp_path):
    """The same loop: --streaming reads value rows lazily; an interrupted and resumed run ends
    with the weights of an uninterrupted one."""
    from safetensors.torch import load_file

    from rewardlab.config import TrainConfig
    from rewardlab.training import train

    data = _write(tmp_path / "value.jsonl", _rows("value") * 2)
    assert main(["train", "--model", tiny_llama, "--kind", "value", "--data", data, "--output",
                 str(tmp_path / "stream"), "--streaming", "--max-steps", "3", "--batch-size", "2"]) == 0
    common = dict(model=tiny_llama, kind="value", data=data, lr=1e-3, batch_size=2, log_every=1)
    train(TrainConfig.flat(output=str(tmp_path / "full"), save_every=0, **common))

    def ctrl_c_at_3(run):  # Ctrl-C right after step 3: the loop checkpoints and stops
        if run.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig.flat(output=str(tmp_path / "cut"), save_every=0, **common), callbacks=[OnStep(ctrl_c_at_3)])
    train(TrainConfig.flat(output=str(tmp_path / "cut"), save_every=0, resume="latest", **common))
    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


def test_orm_with_a_joint_language_model_loss(tiny_llama, tiny_bert, tmp_path, capsys):
    data = _write(tmp_path / "orm.jsonl", _rows("orm"))
    for coef in ("0", "1"):
        assert main(["train", "--model", tiny_llama, "--kind", "orm", "--data", data, "--output",
                     str(tmp_path / f"lm{coef}"), "--lm-coef", coef, "--max-steps", "1", "--log-every", "1"]) == 0
    loss = {c: json.loads((tmp_path / f"lm{c}" / "metrics.jsonl").read_text().splitlines()[0])["loss"] for c in "01"}
    assert loss["1"] > loss["0"] + 1  # plus a next-token cross-entropy near log(vocabulary)
    capsys.readouterr()
    assert main(["train", "--model", tiny_bert, "--kind", "orm", "--data", data, "--output", str(tmp_path / "bert"),
                 "--lm-coef", "1"]) == 2
    assert "causal backbone" in capsys.readouterr().err
    assert main(["train", "--model", tiny_llama, "--kind", "prm", "--data", data, "--output", str(tmp_path / "x"),
                 "--lm-coef", "1"]) == 2


def test_qlora_on_a_process_reward_model_reloads_as_trained(tiny_llama_wide, tmp_path, capsys):
    """QLoRA (4-bit base, CPU bitsandbytes) with a per-token head: the adapter rebuilds the same
    4-bit base and scores as at the end of training; the merged folder is a plain token classifier."""
    pytest.importorskip("bitsandbytes")
    data, out, _ = _train(tiny_llama_wide, "prm", tmp_path, "--lora-r", "4", "--load-in-4bit", "--max-steps", "2")
    trained = json.loads((tmp_path / "model-prm" / "train_results.json").read_text())["eval"]
    capsys.readouterr()
    assert main(["eval", "--model", out + "/adapter", "--data", data, "--json", "--threshold", "0.5"]) == 0
    reloaded = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert reloaded["best_of_n"]["brier"] == pytest.approx(trained["best_of_n"]["brier"], abs=1e-6)
    assert AutoModelForTokenClassification.from_pretrained(out).config.rewardlab["kind"] == "prm"
