"""Per-token heads (orm, prm, value) and the language-model head (genrm): every forward path reads
the same outputs as plain transformers' forward of each sequence alone."""

import pytest
import torch

from rewardlab.data import Text
from rewardlab.data.encode import encode_groups
from rewardlab.models.backbone import load_backbone
from rewardlab.models.heads import forward_path, head_outputs, make_batch, score_outputs

GROUPS = [
    [Text("\n\nHuman: What is 2 + 3?\n\nAssistant:", c) for c in (" 2 + 3 = 5.\nThe answer is 5.\n", " It is 6.")],
    [Text("Q: name a colour", c) for c in (" Blue", " Blue and red and green and many more")],  # shared first token
    [Text("Long prompt " * 12, " x")],  # K = 1, very different lengths
]


def _reads(groups):
    """Every token of every sequence but the first: prompt and shared-prefix positions included."""
    return [[list(range(1, len(s))) for s in g] for g in groups]


@pytest.mark.parametrize("fixture,labels,head", [("tiny_llama", 1, "token"), ("tiny_llama", 3, "token"),
                                                 ("tiny_bert", 1, "token"), ("tiny_llama", 1, "lm")])
def test_every_path_reads_what_plain_transformers_gives(request, fixture, labels, head):
    """A language-model head (kind genrm) too: its vocabulary logits at the read positions."""
    model, tok = load_backbone(request.getfixturevalue(fixture), head=head, num_labels=labels)
    model.eval()
    encoded, _ = encode_groups(tok, GROUPS, 256)
    groups = [g.sequences for g in encoded]
    reads = _reads(groups)
    with torch.no_grad():
        alone = torch.cat([model(input_ids=torch.tensor([s])).logits[0, r]
                           for g, rg in zip(groups, reads) for s, r in zip(g, rg)])
        paths = ["padded", forward_path(model)]
        assert paths[1] == ("shared" if fixture == "tiny_llama" else "packed")
        for path in paths:
            out = head_outputs(model, make_batch(groups, tok.pad_token_id, path, "cpu", reads))
            assert out.shape == alone.shape
            torch.testing.assert_close(out, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_bert"])
def test_gradients_of_shared_or_packed_equal_padded(request, fixture):
    model, tok = load_backbone(request.getfixturevalue(fixture), head="token")
    model.eval()  # no dropout: both paths see the same function
    encoded, _ = encode_groups(tok, GROUPS, 256)
    groups = [g.sequences for g in encoded]
    reads = [[[len(s) - 3, len(s) - 1] for s in g] for g in groups]
    grads = []
    for path in ("padded", forward_path(model)):
        model.zero_grad()
        head_outputs(model, make_batch(groups, tok.pad_token_id, path, "cpu", reads)).pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_scoring_does_not_depend_on_batch_size(tiny_llama):
    model, tok = load_backbone(tiny_llama, head="token")
    encoded, _ = encode_groups(tok, GROUPS, 256)
    groups = [g.sequences for g in encoded]
    a = score_outputs(model, groups, tok.pad_token_id, _reads(groups), batch_size=1)
    b = score_outputs(model, groups, tok.pad_token_id, _reads(groups), batch_size=16)
    for ga, gb in zip(a, b):
        for x, y in zip(ga, gb):
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


def test_sequence_head_with_several_outputs_reads_the_last_token(tiny_llama):
    model, tok = load_backbone(tiny_llama, num_labels=3)  # a regression head: 3 attributes
    model.eval()
    encoded, _ = encode_groups(tok, GROUPS, 256)
    groups = [g.sequences for g in encoded]
    with torch.no_grad():
        alone = torch.cat([model(input_ids=torch.tensor([s])).logits for g in groups for s in g])
        for path in ("padded", "shared"):
            out = head_outputs(model, make_batch(groups, tok.pad_token_id, path, "cpu"))
            torch.testing.assert_close(out, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind_head,labels", [("token", 1), ("sequence", 3)])
def test_points_that_share_a_prompt_score_as_they_do_alone(tiny_llama, kind_head, labels):
    """A PRM or ORM served to GRPO gets the n samples of a prompt as separate texts: they are
    grouped from their token ids and share the prompt's encoding, with every output unchanged."""
    from rewardlab.data.pointwise import Point
    from rewardlab.models.readout import score_points

    model, tok = load_backbone(tiny_llama, head=kind_head, num_labels=labels)
    prompt = "Question: Natalia sold clips to 48 of her friends in April, and half as many in May. How many?"
    points = [Point(prompt, c, None, [len(c)]) for c in ("\nHalf is 24.\nSo 72.\n", "\nShe sold 72.\n", "\n72\n")]
    points.append(Point("Something else.", "\nNo steps here.\n", None, [16]))
    read = "tokens" if kind_head == "token" else "sequence"
    shared, _ = score_points(model, tok, points, 256, read, share_prefixes=True)
    alone = [score_points(model, tok, [p], 256, read, share_prefixes=False)[0][0] for p in points]
    for a, b in zip(shared, alone):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
