import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardlab import RewardModel
from rewardlab.data.encode import collate
from rewardlab.models.backbone import compute_rewards, last_token_index, load_backbone

TEXTS = [("\n\nHuman: hi\n\nAssistant:", " Hello there, how can I help?"),
         ("\n\nHuman: capital of France?\n\nAssistant:", " Paris."),
         ("Q:", " a much longer answer that goes on for quite a few more tokens than the others do")]


def _left_pad(batch, pad_id):
    ids, mask = batch["input_ids"].clone(), batch["attention_mask"].clone()
    for i in range(ids.shape[0]):
        n = int(mask[i].sum())
        ids[i] = torch.cat([torch.full((ids.shape[1] - n,), pad_id), batch["input_ids"][i, :n]])
        mask[i] = torch.cat([torch.zeros(ids.shape[1] - n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    return {"input_ids": ids, "attention_mask": mask}


def test_last_token_index_left_and_right():
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]])
    assert last_token_index(mask).tolist() == [1, 3, 3]


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_bert"])
def test_pooling_same_under_left_right_padding_and_alone(request, fixture):
    model, tok = load_backbone(request.getfixturevalue(fixture))
    model.eval()
    seqs = [tok(p + c + (tok.eos_token or ""))["input_ids"] for p, c in TEXTS]
    alone = torch.stack([compute_rewards(model, **collate([s], tok.pad_token_id)) for s in seqs]).flatten()
    right = collate(seqs, tok.pad_token_id)
    with torch.no_grad():
        r_right = compute_rewards(model, **right)
        if fixture == "tiny_llama":  # encoders only support right padding via their absolute positions
            r_left = compute_rewards(model, **_left_pad(right, tok.pad_token_id))
            assert torch.allclose(r_left, alone, atol=1e-5)
    assert torch.allclose(r_right, alone, atol=1e-5)


def test_pad_equal_to_eos_is_fixed(tiny_llama):
    """SmolLM2 ships pad == eos; the appended EOS must not be mistaken for padding."""
    raw = AutoTokenizer.from_pretrained(tiny_llama)
    assert raw.pad_token_id == raw.eos_token_id  # the trap is really there
    model, tok = load_backbone(tiny_llama)
    assert tok.pad_token_id != tok.eos_token_id == model.config.eos_token_id
    assert model.config.pad_token_id == tok.pad_token_id
    model.eval()
    batch = collate([tok(p + c + tok.eos_token)["input_ids"] for p, c in TEXTS], tok.pad_token_id)
    with torch.no_grad():
        ours = compute_rewards(model, **batch)
        plain = model(**batch).logits[:, 0]  # transformers' own pooling, thanks to the distinct pad id
        model.config.pad_token_id = tok.eos_token_id  # what a naive setup does
        naive = model(**batch).logits[:, 0]
    assert torch.allclose(ours, plain, atol=1e-5)
    assert not torch.allclose(ours, naive, atol=1e-3)  # the bug we avoid reads the token before EOS


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_bert"])
def test_saved_model_scores_identically_in_plain_transformers(request, tmp_path, fixture):
    model, tok = load_backbone(request.getfixturevalue(fixture))
    torch.nn.init.normal_((model.score if hasattr(model, "score") else model.classifier).weight, std=1.0)
    RewardModel(model, tok, max_length=128).save_pretrained(str(tmp_path))
    rm = RewardModel.from_pretrained(str(tmp_path))
    ours = rm.score([p for p, _ in TEXTS], [c for _, c in TEXTS])

    plain_tok = AutoTokenizer.from_pretrained(str(tmp_path))
    plain = AutoModelForSequenceClassification.from_pretrained(str(tmp_path)).eval()
    texts = [p + c + (plain_tok.eos_token or "") for p, c in TEXTS]
    with torch.no_grad():
        theirs = plain(**plain_tok(texts, return_tensors="pt", padding=True)).logits[:, 0].tolist()
    assert max(abs(a - b) for a, b in zip(ours, theirs)) < 1e-4
    assert rm.max_length == 128


def test_score_independent_of_batch_size_and_order(tiny_llama, tmp_path):
    model, tok = load_backbone(tiny_llama)
    rm = RewardModel(model, tok, max_length=64)
    prompts, completions = [p for p, _ in TEXTS] * 3, [c + f" {i}" for i, (_, c) in enumerate(TEXTS * 3)]
    base = rm.score(prompts, completions, batch_size=1)
    assert max(abs(a - b) for a, b in zip(base, rm.score(prompts, completions, batch_size=16))) < 1e-5
    rev = rm.score(prompts[::-1], completions[::-1], batch_size=4)[::-1]
    assert max(abs(a - b) for a, b in zip(base, rev)) < 1e-5
    budget = rm.score(prompts, completions, batch_size=64, max_tokens=40)  # token budget splits batches
    assert max(abs(a - b) for a, b in zip(base, budget)) < 1e-5


def test_length_batches_respect_items_and_token_budget():
    from rewardlab.models.backbone import length_batches

    lengths = [5, 3, 8, 1, 1]
    assert length_batches(lengths, 2, 100) == [[2, 0], [1, 3], [4]]  # longest first, 2 per batch
    assert length_batches(lengths, 10, 12) == [[2], [0, 1], [3, 4]]  # padded: width x items <= 12
    assert length_batches(lengths, 10, 12, padded=False) == [[2], [0, 1, 3, 4]]  # packed: sum <= 12
    assert length_batches([20], 4, 12) == [[0]]  # one too-long item still gets a batch
