"""The last layer computed only at the read positions (models/last_layer.py)."""

import threading

import pytest
import torch

from rewardlab.data import Text
from rewardlab.data.encode import collate, encode_groups
from rewardlab.models.backbone import compute_rewards, load_backbone
from rewardlab.models.last_layer import last_layer, reads_only
from rewardlab.models.layout import build_batch
from rewardlab.models.shared_prompt import shared_prompt_outputs, shared_prompt_rewards

GROUPS = [
    [Text("\n\nHuman: What is the capital of France?\n\nAssistant:", c) for c in (" Paris.", " I won't say.")],
    [Text("Q:", c) for c in (" yes", " yes indeed", " no")],  # one completion is a prefix of another
    [Text("\n\nHuman: Hi\n\nAssistant:", " Hello there, how can I help?")],  # a group of one
]


@pytest.fixture(scope="module")
def llama(tiny_llama):
    model, tok = load_backbone(tiny_llama, num_labels=1)
    torch.nn.init.normal_(model.score.weight, std=1.0)
    encoded, _ = encode_groups(tok, GROUPS, 256)
    return model.eval(), tok, [g.sequences for g in encoded]


def _seen_rows(module):
    seen = []
    handle = module.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[:-1]))
    return seen, handle


def test_last_layer_runs_at_the_read_positions_only(llama):
    model, tok, groups = llama
    batch = build_batch(groups, tok.pad_token_id)
    with torch.no_grad():
        shared_prompt_rewards(model, batch, "blocks")  # installs the hooks; ours now run before the counters
        (first, last), (index, parts) = [model.model.layers[0].mlp, model.model.layers[-1].mlp], last_layer(model)
        seen_first, h1 = _seen_rows(first)
        seen_last, h2 = _seen_rows(last)
        try:
            rewards = shared_prompt_rewards(model, batch, "blocks")
        finally:
            h1.remove()
            h2.remove()
    assert index == len(model.model.layers) - 1 and parts[-1] is last
    assert seen_first == [torch.Size([1, batch.input_ids.shape[1]])]  # every token below the last layer
    assert seen_last == [torch.Size([1, 6])]  # one token per completion
    plain = compute_rewards(model, **collate([s for g in groups for s in g], tok.pad_token_id))
    assert torch.allclose(rewards, plain, atol=1e-5)


def test_several_reads_per_sequence_and_inside_the_prompt(llama):
    """Reads at a few positions (not all): in the shared prompt, mid-completion and at the end,
    equal the padded forward of each sequence alone."""
    model, tok, groups = llama
    reads = [[[1, len(s) - 3, len(s) - 1] for s in g] for g in groups]
    batch = build_batch(groups, tok.pad_token_id, reads=reads)
    seqs = [s for g in groups for s in g]
    padded = collate(seqs, tok.pad_token_id)
    flat = [r for g in reads for r in g]
    rows = torch.tensor([k for k, r in enumerate(flat) for _ in r])
    cols = torch.tensor([i for r in flat for i in r])
    with torch.no_grad():
        shared = shared_prompt_outputs(model, batch, "blocks")
        plain = model.score(model.model(**padded).last_hidden_state[rows, cols])
    assert torch.allclose(shared, plain, atol=1e-5)


def test_hooks_do_nothing_outside_the_block_or_in_another_thread(llama):
    model, tok, groups = llama
    padded = collate([s for g in groups for s in g], tok.pad_token_id)
    with torch.no_grad():
        shared_prompt_rewards(model, build_batch(groups, tok.pad_token_id), "blocks")  # hooks installed
        before = model.model(**padded).last_hidden_state
        elsewhere = {}
        with reads_only(model, torch.tensor([0]), torch.tensor([0]), tuple(padded["input_ids"].shape)) as index:
            assert index is not None
            thread = threading.Thread(target=lambda: elsewhere.update(h=model.model(**padded).last_hidden_state))
            thread.start()
            thread.join()
        after = model.model(**padded).last_hidden_state
    assert torch.equal(before, after) and torch.equal(before, elsewhere["h"])


def test_gradient_checkpointing_runs_the_whole_layer(llama):
    """Its recomputation in the backward pass would see full-size inputs: no pruning then."""
    model, tok, _ = llama
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    try:
        with reads_only(model, torch.tensor([0]), torch.tensor([0]), (1, 4)) as index:
            assert index is None
        with torch.no_grad(), reads_only(model, torch.tensor([0]), torch.tensor([0]), (1, 4)) as index:
            assert index is not None
    finally:
        model.gradient_checkpointing_disable()


def test_a_nested_block_gives_the_outer_one_back(llama):
    from rewardlab.models import last_layer as module

    model, _, _ = llama
    with reads_only(model, torch.tensor([0]), torch.tensor([1]), (1, 4)):
        outer = module._ACTIVE.rows.clone(), module._ACTIVE.cols.clone()
        with reads_only(model, torch.tensor([0, 0]), torch.tensor([2, 3]), (1, 4)):
            assert module._ACTIVE.cols.tolist() == [2, 3]
        assert torch.equal(module._ACTIVE.rows, outer[0]) and torch.equal(module._ACTIVE.cols, outer[1])
    assert not module._ACTIVE.parts


def test_a_last_layer_shared_with_an_earlier_one_is_left_whole(tiny_llama):
    model, _ = load_backbone(tiny_llama, num_labels=1)
    assert last_layer(model) is not None
    model.model.layers[-1].mlp = model.model.layers[0].mlp  # looped / shared layers
    assert last_layer(model) is None


def test_anything_but_a_plain_dense_mlp_is_left_whole(tiny_llama):
    """Fail closed: a mixture-of-experts block (a router and experts) or any MLP made of other
    parts than linear layers and activations runs at every token."""
    from torch import nn

    class Experts(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate = nn.Linear(32, 2)
            self.experts = nn.ModuleList([nn.Linear(32, 32), nn.Linear(32, 32)])

        def forward(self, x):
            weights = torch.softmax(self.gate(x), -1)
            return sum(weights[..., i:i + 1] * e(x) for i, e in enumerate(self.experts))

    model, _ = load_backbone(tiny_llama, num_labels=1)
    model.model.layers[-1].mlp = Experts()
    assert last_layer(model) is None
    model, _ = load_backbone(tiny_llama, num_labels=1)
    model.model.layers[-1].mlp = nn.Sequential(nn.Linear(32, 64), nn.LayerNorm(64), nn.Linear(64, 32))
    assert last_layer(model) is None  # a norm with parameters inside: not a plain dense MLP


def test_lora_wrapped_projections_are_still_pruned(tiny_llama):
    """peft wraps q/o and the MLP's linear layers (``base_layer`` inside); the adapter acts on
    each token alone, so the last layer of a LoRA model is pruned like a plain one."""
    from rewardlab.models.backbone import hf_model
    from rewardlab.models.lora import apply_lora

    model, _ = load_backbone(tiny_llama, num_labels=1)
    inner = hf_model(apply_lora(model, 4, 8, 0.0))  # what the shared-prompt forward prunes
    assert not isinstance(inner.model.layers[-1].self_attn.q_proj, torch.nn.Linear)  # peft's wrapper
    assert last_layer(inner) is not None
