"""The real bundled SmolLM2-135M-Instruct (from its GGUF) trains a few steps and scores."""

import pytest

from rewardlab import RewardModel
from rewardlab.config import TrainConfig
from rewardlab.training import train

pytestmark = pytest.mark.slow


def test_smollm2_trains_and_scores(pairs_file, tmp_path):
    out = tmp_path / "smol"
    result = train(TrainConfig.flat(model="smollm2", data=pairs_file, output=str(out), max_steps=2, batch_size=2,
                               save_every=0))
    assert result["steps"] == 2
    rm = RewardModel.from_pretrained(str(out))
    assert rm.tokenizer.pad_token_id != rm.tokenizer.eos_token_id
    rewards = rm.score(["\n\nHuman: hi\n\nAssistant:"] * 2, [" Hello! How can I help?", " Go away."])
    assert len(rewards) == 2 and all(isinstance(r, float) for r in rewards)


def test_shared_prompt_is_exact_on_real_smollm2():
    import torch

    from rewardlab.data.encode import collate, encode_groups
    from rewardlab.models.backbone import compute_rewards, load_backbone
    from rewardlab.models.layout import build_batch
    from rewardlab.models.shared_prompt import shared_prompt_rewards
    from tests.models.test_shared_prompt import GROUPS

    model, tok = load_backbone("smollm2")
    encoded, _ = encode_groups(tok, GROUPS, 256)
    seqs = [s for g in encoded for s in g.sequences]
    weights = torch.linspace(-1, 1, len(seqs))
    grads, rewards = [], []
    for shared in (False, True):
        model.zero_grad()
        r = (shared_prompt_rewards(model, build_batch([g.sequences for g in encoded], tok.pad_token_id)) if shared
             else compute_rewards(model, **collate(seqs, tok.pad_token_id)))
        (r * weights).sum().backward()
        rewards.append(r.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert torch.allclose(rewards[0], rewards[1], atol=1e-4)
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-4), name
