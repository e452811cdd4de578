"""--heads N: N bootstrap reward heads on one backbone (an ensemble in one forward)."""

import math

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardlab.config import TrainConfig
from rewardlab.data.preference import Example
from rewardlab.inference import RewardModel
from rewardlab.kinds import preference
from rewardlab.models.ensemble import poisson_weights
from rewardlab.training import train

from ..training.test_loop import _cfg, _max_diff, _same_run, _weights


def test_one_head_is_an_ordinary_run_bit_for_bit(tiny_llama, pairs_file, tmp_path):
    train(_cfg(tiny_llama, pairs_file, tmp_path / "plain", max_steps=3, batch_size=4))
    train(_cfg(tiny_llama, pairs_file, tmp_path / "one", max_steps=3, batch_size=4, heads=1))
    assert _max_diff(_weights(tmp_path / "plain"), _weights(tmp_path / "one")) == 0.0


def test_heads_see_different_bootstrap_weights_and_the_loss_is_their_weighted_mean():
    prompts = [f"prompt {i}" for i in range(200)]
    counts = torch.tensor([poisson_weights(p, 3, 0) for p in prompts], dtype=torch.float)
    assert not torch.equal(counts[:, 0], counts[:, 1]) and not torch.equal(counts[:, 1], counts[:, 2])
    assert abs(counts.mean().item() - 1.0) < 0.15 and (counts == 0).float().mean().item() > 0.2  # Poisson(1)
    assert poisson_weights("prompt 0", 3, 0) == poisson_weights("prompt 0", 3, 0) != poisson_weights("prompt 0", 3, 1)
    examples = [Example(p, ["a", "b"], [0, 1]) for p in prompts[:4]]
    rewards = torch.tensor([[0.5, 0.1, -0.2], [0.0, 0.3, 0.4], [1.0, 1.0, 1.0], [2.0, -1.0, 0.0],
                            [0.2, 0.2, 0.2], [0.1, 0.1, 0.9], [-0.5, 0.0, 0.5], [0.0, 0.0, 0.0]])
    obj = preference.Options(heads=3)
    value, stats = preference.loss(rewards, [(e, None) for e in examples], obj)
    by_hand = sum(counts[g, h] * -math.log(1 / (1 + math.exp(-(rewards[2 * g, h] - rewards[2 * g + 1, h]))))
                  for g in range(4) for h in range(3)) / 3
    assert abs(value.item() - float(by_hand)) < 1e-5
    assert stats["pairs"] == 4 and stats["correct"] == 1  # by the mean reward: only pair 1 is right, pair 3 ties


def test_accumulated_heads_step_equals_one_large_step(tiny_llama, pairs_file, tmp_path):
    train(_cfg(tiny_llama, pairs_file, tmp_path / "big", batch_size=8, grad_accum=1, epochs=1, heads=3))
    train(_cfg(tiny_llama, pairs_file, tmp_path / "acc", batch_size=1, grad_accum=8, epochs=1, heads=3))
    _same_run(tmp_path / "big", tmp_path / "acc")


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_bert"])
def test_heads_folder_scores_as_an_ensemble_and_loads_in_plain_transformers(request, pairs_file, tmp_path, fixture):
    base = request.getfixturevalue(fixture)
    out = tmp_path / "heads"
    train(_cfg(base, pairs_file, out, max_steps=4, batch_size=4, heads=4, lr=1e-2))
    rm = RewardModel.from_pretrained(str(out), device="cpu")
    prompts, completions = ["\n\nHuman: What is 2 + 2?\n\nAssistant:"] * 2, [" 4.", " 5."]
    from rewardlab.data.text import plain_text

    details, _ = rm.score_details([plain_text(p, c, rm.tokenizer) for p, c in zip(prompts, completions)])
    plain = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    tok = AutoTokenizer.from_pretrained(str(out))
    assert plain.config.num_labels == 4
    for p, c, d in zip(prompts, completions, details):
        with torch.no_grad():
            logits = plain(**tok(p + c + (tok.eos_token or ""), return_tensors="pt")).logits[0]
        assert abs(d["reward"] - logits.mean().item()) < 1e-5 and abs(d["reward_mean"] - d["reward"]) < 1e-9
        assert abs(d["reward_std"] - logits.std(unbiased=False).item()) < 1e-5
    assert details[0]["reward_std"] > 0  # independently initialised heads disagree


def test_a_heads_model_is_evaluated_and_scored_as_an_ensemble(tiny_bert, pairs_file, tmp_path, capsys):
    import json

    from rewardlab.cli import main

    out = tmp_path / "heads"
    train(_cfg(tiny_bert, pairs_file, out, max_steps=2, batch_size=4, heads=3))
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--data", pairs_file, "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["members_n"] == 3 and len(m["members"]["each"]) == 3 and m["uncertainty"]["pairs"] == 16
    scored = tmp_path / "scored.jsonl"
    assert main(["score", "--model", str(out), "--data", pairs_file, "--output", str(scored), "--members",
                 "--ensemble-aggregate", "mean_minus_std", "--uncertainty-coef", "2"]) == 0
    row = json.loads(scored.read_text().splitlines()[0])
    for side in ("chosen", "rejected"):
        mean, std = row[f"{side}_reward_mean"], row[f"{side}_reward_std"]
        assert len(row[f"{side}_members"]) == 3 and abs(row[f"{side}_reward"] - (mean - 2 * std)) < 1e-9
