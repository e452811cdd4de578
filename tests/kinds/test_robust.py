"""The preference kind's robust options end to end on a tiny decoder: ``--disentangle`` (ODIN) saves
a quality head that plain ``transformers`` reads as the reward, with the feature heads in scored
rows and the server's extra_logs; ``--rrm`` says what it added; bad input is one line; the bias
report and the side-by-side view carry the length numbers with intervals."""

import json

import httpx
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import rewardlab
from rewardlab.cli import main
from tests.conftest import PAIRS, serving, write_jsonl

ROWS = [dict(p, prompt=p["prompt"] + f" ({i})") for i, p in enumerate(PAIRS * 4)]


@pytest.fixture(scope="module")
def odin(tiny_llama, tmp_path_factory):
    folder = tmp_path_factory.mktemp("odin")
    data = write_jsonl(folder / "pairs.jsonl", ROWS)
    out = str(folder / "rm")
    assert main(["train", "--model", tiny_llama, "--data", data, "--output", out, "--max-steps", "3",
                 "--batch-size", "4", "--lr", "1e-2", "--save-every", "0", "--disentangle", "length,markdown"]) == 0
    return out, data


def test_the_quality_head_is_the_reward_plain_transformers_reads(odin, tmp_path):
    out, data = odin
    tok, model = AutoTokenizer.from_pretrained(out), AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert model.config.id2label == {0: "quality", 1: "length", 2: "markdown"}
    scored = tmp_path / "s.jsonl"
    assert main(["score", "--model", out, "--data", data, "--output", str(scored)]) == 0
    rows = [json.loads(x) for x in scored.read_text().splitlines()]
    for row in rows[:4]:  # README: logits[:, 0] of prompt + completion + EOS is the reward
        for side in ("chosen", "rejected"):
            with torch.no_grad():
                logits = model(**tok(row["prompt"] + row[side] + tok.eos_token, return_tensors="pt")).logits[0]
            assert row[f"{side}_reward"] == pytest.approx(float(logits[0]), abs=1e-5)
            assert row[f"{side}_reward_length"] == pytest.approx(float(logits[1]), abs=1e-5)
            assert row[f"{side}_reward_total"] == pytest.approx(float(logits.sum()), abs=1e-5)
    with serving(rewardlab.create_app(out)) as url:
        answer = httpx.post(f"{url}/get_reward", json={"query": [ROWS[0]["prompt"] + ROWS[0]["chosen"]],
                                                        "prompts": [ROWS[0]["prompt"]]}, timeout=60).json()
    assert answer["rewards"][0] == pytest.approx(rows[0]["chosen_reward"], abs=1e-5)
    assert set(answer["extra_logs"]) == {"reward_length", "reward_markdown", "reward_total"}


def test_rrm_says_what_it_added_and_trains(tiny_llama, tmp_path, capsys):
    data = write_jsonl(tmp_path / "p.jsonl", ROWS)
    assert main(["train", "--model", tiny_llama, "--data", data, "--output", str(tmp_path / "rrm"), "--max-steps", "2",
                 "--save-every", "0", "--rrm", "--loss", "davidson"]) == 0
    err = capsys.readouterr().err
    assert "kind preference, loss davidson (RRM augmentation)" in err
    assert "note: RRM: 16 examples each given 2 completions of another prompt, below their own: 64 more strict " \
           "pairs, 16 more ties (seed 0)" in err


def test_bad_robust_options_are_one_line(tiny_llama, tmp_path, capsys):
    one_prompt = write_jsonl(tmp_path / "one.jsonl", [dict(PAIRS[0], chosen=f" answer {i}") for i in range(4)])
    base = ["train", "--model", tiny_llama, "--output", str(tmp_path / "o")]
    for argv, message in ((["--disentangle", "tone"], "--disentangle: unknown feature 'tone' (known: length, "
                                                      "markdown, lists)"),
                          (["--disentangle", "length", "--disentangle-coef", "-1"], "disentangle_coef must be >= 0"),
                          (["--disentangle", "length", "--heads", "2"], "--disentangle and --heads"),
                          (["--rrm", "--data", one_prompt], "--rrm: RRM augmentation needs rows of at least two "
                                                            "different prompts")):
        assert main(base + ["--data", one_prompt] + argv if "--data" not in argv else base + argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and err[-1].startswith("rewardlab: error:"), err


def test_the_bias_report_and_the_side_by_side_view(odin, kind_models, tmp_path, capsys):
    out, data = odin
    capsys.readouterr()
    assert main(["eval", "--model", out, "--data", data]) == 0
    text = capsys.readouterr().out
    assert "accuracy when chosen is longer" in text and "reward-length Pearson / Spearman" in text
    m = rewardlab.evaluate(out, data).metrics["length"]
    assert {"reward_length_correlation", "reward_length_spearman", "accuracy_chosen_more", "accuracy_chosen_less"} <= set(m)
    both = rewardlab.evaluate([out, kind_models["preference"][0]], data, bootstrap_samples=50)
    for name in (out, kind_models["preference"][0]):
        bias = both.metrics["models"][name]["bias"]
        assert set(bias) == {"accuracy", "reward_length_pearson", "reward_length_spearman", "accuracy_chosen_longer",
                             "accuracy_chosen_shorter"}
        assert bias["accuracy"]["low"] <= bias["accuracy"]["value"] <= bias["accuracy"]["high"]
    assert "reward length spearman" in both.text
