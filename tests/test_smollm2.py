"""The real bundled SmolLM2-135M-Instruct (from its GGUF) trains a few steps and scores."""

import pytest

from rewardlab import RewardModel
from rewardlab.train import TrainConfig, train

pytestmark = pytest.mark.slow


def test_smollm2_trains_and_scores(pairs_file, tmp_path):
    out = tmp_path / "smol"
    result = train(TrainConfig(model="smollm2", data=pairs_file, output=str(out), max_steps=2, batch_size=2,
                               save_every=0))
    assert result["steps"] == 2
    rm = RewardModel.from_pretrained(str(out))
    assert rm.tokenizer.pad_token_id != rm.tokenizer.eos_token_id
    rewards = rm.score(["\n\nHuman: hi\n\nAssistant:"] * 2, [" Hello! How can I help?", " Go away."])
    assert len(rewards) == 2 and all(isinstance(r, float) for r in rewards)
