import pytest
import torch

from rewardlab.data import Text
from rewardlab.data.encode import collate, encode_groups
from rewardlab.models.backbone import compute_rewards, load_backbone
from rewardlab.models.layout import build_batch, common_prefix_length
from rewardlab.models.shared_prompt import shared_prompt_rewards, supports_shared_prompt

# On a GPU machine these tests run on CUDA.
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

GROUPS = [
    [Text("\n\nHuman: What is the capital of France?\n\nAssistant:", c) for c in (" Paris.", " I won't say.")],
    [Text("\n\nHuman: Tell me a joke about cats, please.\n\nAssistant:", c)
     for c in (" Why did the cat sit on the computer? To keep an eye on the mouse.", " No.", " Cats are animals.")],
    [Text("Q:", c) for c in (" yes", " yes indeed")],  # one completion is a prefix of the other
]


def test_common_prefix_leaves_a_token_to_each():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4]]) == 2
    assert common_prefix_length([[1, 2], [1, 2, 3]]) == 1


@pytest.fixture(scope="module")
def llama(tiny_llama_wide):
    model, tok = load_backbone(tiny_llama_wide)
    torch.nn.init.normal_(model.score.weight, std=1.0)
    return model, tok


def _plain_and_shared(model, tok, packed=True, attention="blocks"):
    encoded, _ = encode_groups(tok, GROUPS, 256)
    seqs = [s for g in encoded for s in g.sequences]
    model.to(DEVICE)
    plain = compute_rewards(model, **{k: v.to(DEVICE) for k, v in collate(seqs, tok.pad_token_id).items()})
    batch = build_batch([g.sequences for g in encoded], tok.pad_token_id, packed=packed)
    shared = shared_prompt_rewards(model, batch.to(DEVICE), attention)
    return plain, shared


# flex runs eagerly on CPU here: the exact reference of the GPU kernel. On CUDA, torch 2.11's
# compiled flex kernel failed to lower in fp32 for packed rows, so rewardlab uses it under
# bf16 only, where exactness to 1e-4 cannot be asserted.
ATTENTION = ["blocks", "flex"] if DEVICE == "cpu" else ["blocks"]


@pytest.mark.parametrize("attention", ATTENTION)
@pytest.mark.parametrize("packed", [True, False])
def test_rewards_equal_plain_forward(llama, packed, attention):
    model, tok = llama
    assert supports_shared_prompt(model)
    with torch.no_grad():
        plain, shared = _plain_and_shared(model, tok, packed, attention)
    assert plain.shape == shared.shape == (7,)
    assert torch.allclose(plain, shared, atol=1e-4)


@pytest.mark.parametrize("attention", ATTENTION)
def test_gradients_equal_plain_forward(llama, attention):
    if attention == "flex" and DEVICE == "cpu":
        pytest.skip("flex_attention has no backward on CPU; this runs on a GPU machine")
    model, tok = llama
    weights = torch.linspace(-1, 1, 7, device=DEVICE)
    grads = []
    for use_shared in (False, True):
        model.zero_grad()
        plain, shared = _plain_and_shared(model, tok, attention=attention)
        ((shared if use_shared else plain) * weights).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-4), name


def test_padded_forward_still_exact_after_block_attention_is_selected(llama):
    from tests.models.test_backbone import TEXTS, _left_pad

    model, tok = llama
    _plain_and_shared(model, tok)
    model.cpu()  # selects the block attention implementation
    assert model.config._attn_implementation == "rewardlab_blocks"
    seqs = [tok(p + c + tok.eos_token)["input_ids"] for p, c in TEXTS]
    with torch.no_grad():
        alone = torch.stack([compute_rewards(model, **collate([s], tok.pad_token_id)) for s in seqs]).flatten()
        right = collate(seqs, tok.pad_token_id)
        assert torch.allclose(compute_rewards(model, **right), alone, atol=1e-5)
        assert torch.allclose(compute_rewards(model, **_left_pad(right, tok.pad_token_id)), alone, atol=1e-5)
        assert torch.allclose(model(**right).logits[:, 0], alone, atol=1e-5)


def test_encoders_use_the_plain_path(tiny_bert):
    model, _ = load_backbone(tiny_bert)
    assert not supports_shared_prompt(model)


def test_scoring_groups_equals_scoring_each_text(llama):
    from rewardlab import RewardModel

    model, tok = llama
    rm = RewardModel(model, tok, max_length=256)
    grouped, _ = rm.score_groups(GROUPS, batch_size=2, max_tokens=64)
    single, _ = rm.score_texts([t for g in GROUPS for t in g])
    assert [len(g) for g in grouped] == [2, 3, 2]
    assert max(abs(a - b) for a, b in zip([r for g in grouped for r in g], single)) < 1e-5


def test_kernel_choice(llama, tiny_llama):
    from rewardlab.models.attention import pick_attention

    small, _ = load_backbone(tiny_llama)  # head dimension 8
    wide, _ = llama
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert pick_attention("auto", cpu, small) == "blocks"
    assert pick_attention("auto", cuda, wide, half=True) == "flex"
    assert pick_attention("auto", cuda, wide, half=False) is None  # fp32 on CUDA: padded forward
    assert pick_attention("auto", cuda, small, half=True) is None  # padded: blocks would be launch-bound
    assert not supports_shared_prompt(small, "auto", cuda, True) and supports_shared_prompt(small, "auto", cpu)
    with pytest.raises(RuntimeError, match="head dimension >= 16"):
        pick_attention("flex", cuda, small, half=True)
    assert pick_attention("blocks", cuda, small) == "blocks"


def test_independent_texts_with_a_common_start_are_found_and_scored_exactly(tiny_llama):
    """Whole texts (as an RL loop sends them, no prompt field): those that start with the same
    tokens share one encoding of it; rewards equal scoring each alone, including texts that are
    prefixes of each other and texts that share nothing."""
    from rewardlab.inference import RewardModel
    from rewardlab.models.layout import group_by_prefix

    model, tok = load_backbone(tiny_llama)
    torch.nn.init.normal_(model.score.weight, std=1.0)
    rm = RewardModel(model, tok, 256, "cpu")
    prompt = "\n\nHuman: Tell me a joke about cats, please, and make it short.\n\nAssistant:"
    texts = [Text("", prompt + r) for r in (" Why?", " Why? Because cats.", " No.", " Cats sleep a lot.")]
    texts += [Text("", "Something else entirely, with its own words."), Text("", prompt)]
    shared, counts = rm.score_texts(texts, share_prefixes=True)
    assert counts.processed < counts.sent  # the prompt was encoded once, not six times
    alone = [rm.score_texts([t], share_prefixes=False)[0][0] for t in texts]
    torch.testing.assert_close(torch.tensor(shared), torch.tensor(alone), rtol=1e-5, atol=1e-5)
    # [1, 2] alone: a group's prefix leaves every member at least one token of its own
    assert group_by_prefix([[1, 2, 3], [9, 9], [1, 2, 4], [1, 2]], min_shared=2) == [[3], [0, 2], [1]]
