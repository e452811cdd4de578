"""The padding-free packed forward of encoders equals the padded forward: rewards and gradients."""

import pytest
import torch

from rewardlab.data.encode import collate
from rewardlab.models.backbone import compute_rewards, disable_dropout, load_backbone
from rewardlab.models.packed_encoder import build_packed, packed_encoder_rewards, score_packed, supports_packed_encoder

TEXTS = ["hi", "a much longer text that goes on and on " * 12, "medium length, with punctuation!", "x y",
         "Question: what is 2 + 2? Answer: 4, because two and two make four."]


def _model(folder):
    model, tok = load_backbone(folder)
    disable_dropout(model)
    return model, tok, [tok(t)["input_ids"] for t in TEXTS]


@pytest.mark.parametrize("which", ["tiny_bert", "minilm"])
def test_packed_equals_padded_rewards_and_gradients(request, which):
    folder = request.getfixturevalue("tiny_bert") if which == "tiny_bert" else "minilm"
    model, tok, seqs = _model(folder)
    assert supports_packed_encoder(model)
    padded = collate(seqs, tok.pad_token_id)
    ref = compute_rewards(model, padded["input_ids"], padded["attention_mask"])
    ref.sum().backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    got = packed_encoder_rewards(model, build_packed(seqs))
    got.sum().backward()
    assert torch.allclose(ref, got, atol=1e-5)
    for n, p in model.named_parameters():
        if n in ref_grads:
            assert torch.allclose(ref_grads[n], p.grad, atol=1e-5), n
    assert max(abs(a - b) for a, b in zip(score_packed(model, seqs, batch_size=2, max_tokens=64), ref.tolist())) < 1e-5


def test_relative_positions_keep_the_padded_forward(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                        num_attention_heads=2, position_embedding_type="relative_key", num_labels=1)
    assert not supports_packed_encoder(BertForSequenceClassification(config))


def test_packed_training_equals_padded_training(tiny_bert, groups_file, tmp_path, capsys):
    from rewardlab.training import train
    from tests.training.test_loop import _cfg, _losses, _max_diff, _weights

    train(_cfg(tiny_bert, groups_file, tmp_path / "packed", batch_size=4, loss="plackett_luce"))
    assert "packed padding-free (blocks) forward" in capsys.readouterr().err
    train(_cfg(tiny_bert, groups_file, tmp_path / "padded", batch_size=4, loss="plackett_luce", shared_prompt=False))
    assert ", padded forward" in capsys.readouterr().err
    a, b = _losses(tmp_path / "packed"), _losses(tmp_path / "padded")
    assert len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) < 1e-5
    # The head's bias has an exactly-zero gradient under a ranking loss (a shift of every reward
    # changes nothing), so Adam turns float noise into lr-sized moves there: compare the rest.
    wa, wb = _weights(tmp_path / "packed"), _weights(tmp_path / "padded")
    assert _max_diff({k: v for k, v in wa.items() if k != "classifier.bias"},
                     {k: v for k, v in wb.items() if k != "classifier.bias"}) < 2e-4
