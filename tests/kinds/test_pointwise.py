"""The orm, prm, value and regression kinds: the loss each builds from the head's outputs is
the pure function on the right positions and targets, and each trains what it says."""

import json
import math

import pytest
import torch
from transformers import AutoTokenizer

from rewardlab import kinds
from rewardlab.config import TrainConfig
from rewardlab.data.pointwise import parse_orm, parse_prm, parse_regression, parse_value
from rewardlab.errors import DataError
from rewardlab.losses import discounted_returns, masked_regression, step_cross_entropy, token_bce, value_regression
from rewardlab.inference import RewardModel
from rewardlab.training import train

STEPS = ["Add 2 and 3.", "That is 5.", "The answer is 5."]


@pytest.fixture(scope="module")
def tok(smol_tokenizer_dir):
    return AutoTokenizer.from_pretrained(smol_tokenizer_dir)


def _items(kind, obj, points, tok):
    items, _ = kind.encode(tok, points, 256, obj)
    return items


def test_orm_labels_every_completion_token_and_no_prompt_token(tok):
    obj = kinds.get("orm").Options()
    points = [parse_orm({"prompt": "Q: 2+3?", "completion": " 5", "label": 1}, tok, "w", 1),
              parse_orm({"prompt": "Q: 2+3? Think.", "completion": " It is 6.", "label": 0.25}, tok, "w", 2)]
    items = _items(kinds.get("orm"), obj, points, tok)
    n = [len(tok(" 5").input_ids) + 1, len(tok(" It is 6.").input_ids) + 1]  # completion tokens + EOS
    assert [kinds.get("orm").units(i, obj) for i in items] == n
    logits = torch.randn(sum(n), 1)
    loss, stats = kinds.get("orm").loss(logits, items, obj)
    targets = torch.tensor([1.0] * n[0] + [0.25] * n[1])
    torch.testing.assert_close(loss, token_bce(logits[:, 0], targets))
    assert stats["examples"] == 2
    last = kinds.get("orm").encode(tok, points, 256, kinds.get("orm").Options(orm_loss_on="last_token"))[0]
    assert [kinds.get("orm").units(i, obj) for i in last] == [1, 1]


def test_value_targets_are_discounted_returns_on_completion_tokens(tok):
    obj = kinds.get("value").Options(gamma=0.5, value_loss="huber")
    points = [parse_value({"prompt": "Q", "completion": " a b c", "reward": 2.0}, tok, "w", 1)]
    items = _items(kinds.get("value"), obj, points, tok)
    n = kinds.get("value").units(items[0], obj)
    values = torch.randn(n, 1)
    loss, _ = kinds.get("value").loss(values, items, obj)
    returns = discounted_returns(2.0, n, 0.5)
    assert returns[-1] == 2.0 and returns[-2] == 1.0
    torch.testing.assert_close(loss, value_regression(values[:, 0], returns, "huber", 1.0))


def test_prm_ternary_soft_and_last_step_only(tok):
    row = {"prompt": "Q:", "steps": STEPS}
    tern = kinds.get("prm").Options(prm_labels="ternary")
    items = _items(kinds.get("prm"), tern, [parse_prm({**row, "labels": [1, 0, -1]}, tok, "w", 1, "\n", "ternary")], tok)
    logits = torch.randn(3, 3)
    loss, _ = kinds.get("prm").loss(logits, items, tern)
    torch.testing.assert_close(loss, step_cross_entropy(logits, torch.tensor([2, 1, 0])))
    soft = kinds.get("prm").Options(prm_labels="soft", last_step_only=True)
    items = _items(kinds.get("prm"), soft, [parse_prm({**row, "labels": [1, 0.6, 0.3]}, tok, "w", 1, "\n", "soft")], tok)
    assert kinds.get("prm").units(items[0], soft) == 1
    logit = torch.randn(1, 1)
    torch.testing.assert_close(kinds.get("prm").loss(logit, items, soft)[0], token_bce(logit[:, 0], torch.tensor([0.3])))
    with pytest.raises(DataError, match="needs step labels"):
        kinds.get("prm").check(parse_prm({**row, "correct": True}, tok, "w", 1, "\n"), "w", soft)


def test_regression_masks_missing_attributes(tok):
    obj = kinds.get("regression").Options(attributes="a,b")
    points = [parse_regression({"prompt": "Q", "completion": " x", "ratings": {"a": 3}}, tok, "w", 1, ["a", "b"]),
              parse_regression({"prompt": "Q", "completion": " y", "ratings": {"a": 1, "b": 2}}, tok, "w", 2, ["a", "b"])]
    items = _items(kinds.get("regression"), obj, points, tok)
    assert [kinds.get("regression").units(i, obj) for i in items] == [1, 2]
    out = torch.tensor([[2.0, 100.0], [1.5, 4.0]])
    loss, _ = kinds.get("regression").loss(out, items, obj)
    assert loss.item() == pytest.approx((2 - 3) ** 2 + (1.5 - 1) ** 2 + (4 - 2) ** 2)  # the 100 is unrated
    mask = torch.tensor([[True, False], [True, True]])
    torch.testing.assert_close(loss, masked_regression(out, torch.tensor([[3.0, 0.0], [1.0, 2.0]]), mask))


def test_a_soft_label_of_0_3_trains_toward_0_3(tiny_llama, tmp_path):
    """TRL's PRMTrainer int()-truncates it to 0; here the step's score converges to 0.3."""
    import json

    data = tmp_path / "soft.jsonl"
    data.write_text(json.dumps({"prompt": "Q:", "steps": ["One step."], "labels": [0.3]}) + "\n")
    train(TrainConfig.flat(model=tiny_llama, kind="prm", prm_labels="soft", data=str(data), output=str(tmp_path / "m"),
                           lr=3e-2, epochs=60, batch_size=1, save_every=0, log_every=100, warmup_ratio=0.0))
    rm = RewardModel.from_pretrained(str(tmp_path / "m"), device="cpu")
    from rewardlab.data import Text

    [detail], _ = rm.score_details([Text("Q:", "One step.\n")])
    assert detail["step_rewards"][0] == pytest.approx(0.3, abs=0.03)
    assert not math.isnan(detail["reward"])


def test_a_value_function_learns_the_expected_return_of_each_prefix(tiny_llama_wide, tmp_path):
    """Simulated task with a known answer (bench/simulated_value_regression.py at test size): 8
    words, each 'yes' or 'no' with probability 1/2, return = the share of 'yes'. Regressed on the
    return at every token, V(prefix) learns E[R | prefix] = (yes so far + (8 - t) / 2) / 8."""
    import json
    import random

    rng = random.Random(0)

    def rows(n):
        out = []
        for _ in range(n):
            words = [rng.choice(["yes", "no"]) for _ in range(8)]
            out.append({"prompt": "Answer:", "completion": "".join(" " + w for w in words),
                        "reward": words.count("yes") / 8})
        return out

    data = tmp_path / "value.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows(512)))
    train(TrainConfig.flat(model=tiny_llama_wide, kind="value", data=str(data), output=str(tmp_path / "v"), lr=2e-3,
                           epochs=3, batch_size=16, save_every=0, log_every=100, warmup_ratio=0.05))
    rm = RewardModel.from_pretrained(str(tmp_path / "v"), device="cpu")
    from rewardlab.data import Text

    fresh = rows(100)
    details, _ = rm.score_details([Text(r["prompt"], r["completion"]) for r in fresh])
    errors = []
    for r, d in zip(fresh, details):
        words = r["completion"].split()
        assert len(d["values"]) == 9  # one per word, then the end marker
        errors += [abs(d["values"][t] - (words[:t + 1].count("yes") + (7 - t) / 2) / 8) for t in range(8)]
    assert sum(errors) / len(errors) < 0.05  # the bench's 4-layer model gets 0.008


@pytest.fixture(scope="module")
def tiny_gpt2(smol_tokenizer_dir, tmp_path_factory):
    """A GPT-2 architecture (its token head is ``classifier``, not ``score``) with tied embeddings."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny_gpt2")
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=256,
                               bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


@pytest.mark.parametrize("backbone,path", [("tiny_llama", "shared"), ("tiny_llama", "padded"), ("tiny_gpt2", "padded")])
def test_orm_joint_language_model_loss_is_the_causal_lms_own(request, backbone, path):
    """lm_coef adds lm_coef x the next-token cross-entropy of every completion token: the same
    number transformers' causal LM computes for those tokens from the same weights."""
    from transformers import AutoModelForCausalLM

    from rewardlab.models.backbone import load_backbone
    from rewardlab.models.heads import HeadOutputs

    obj = kinds.get("orm").Options(lm_coef=0.5)
    rows = [{"prompt": "Q: 2+3?", "completion": " It is 5.", "label": 1},
            {"prompt": "Q: name a colour", "completion": " Blue, I think.", "label": 0}]
    folder = request.getfixturevalue(backbone)
    model, tok2 = load_backbone(folder, head="token")
    model.eval()
    items = _items(kinds.get("orm"), obj, [parse_orm(r, tok2, "w", i) for i, r in enumerate(rows)], tok2)
    outputs = HeadOutputs(model)(kinds.get("orm").batch(items, tok2.pad_token_id, path, "cpu"))
    both, _ = kinds.get("orm").loss(outputs, items, obj)
    bce, _ = kinds.get("orm").loss(outputs[0], items, kinds.get("orm").Options())
    causal = AutoModelForCausalLM.from_pretrained(folder).eval()
    expected = 0.0
    for _, enc in items:
        ids = torch.tensor([enc.sequences[0]])
        labels = torch.full_like(ids, -100)
        first = enc.reads[0][0]
        labels[0, first:] = ids[0, first:]  # the completion tokens (and the end marker)
        with torch.no_grad():
            n = int((labels != -100).sum())
            expected += causal(input_ids=ids, labels=labels).loss.item() * n
    assert (both - bce).item() == pytest.approx(0.5 * expected, rel=1e-4)


def test_prm_metrics_keep_splits_aligned_with_their_rows(tok):
    """Rows without step labels (outcome only) and rows cut by truncation are left out of the
    step metrics without shifting which split the others belong to."""
    obj = kinds.get("prm").Options(prm_threshold=0.5)
    rows = [{"prompt": "Q", "steps": ["a", "b"], "correct": True, "split": "x"},
            {"prompt": "Q", "steps": ["a", "b"], "labels": [1, 0], "split": "math"},
            {"prompt": "Q", "steps": ["a", "b"], "labels": [1, 1], "split": "gsm8k"}]
    examples = [parse_prm(r, tok, "w", i, "\n") for i, r in enumerate(rows)]
    details = [[{"step_rewards": s}] for s in ([None, 0.2], [0.9, 0.1], [0.9, 0.8])]  # None: a step cut off
    m = kinds.get("prm").metrics(examples, details, obj)
    assert m["processbench"]["splits"]["math"]["acc_error"] == 1.0
    assert m["processbench"]["splits"]["gsm8k"]["acc_correct"] == 1.0 and "x" not in m["processbench"]["splits"]


def test_orm_auto_labels_every_token_of_a_causal_model_and_the_last_of_an_encoder(tiny_llama, tiny_bert, tmp_path):
    """On a bidirectional encoder every token sees the whole completion: a per-token loss would
    only weigh long completions more, so ``auto`` reads the label at the last token there."""
    from rewardlab.cli import main
    from tests.test_cli_kinds import _rows, _write

    data = _write(tmp_path / "orm.jsonl", _rows("orm"))
    for model, want in ((tiny_llama, "all_tokens"), (tiny_bert, "last_token")):
        out = tmp_path / want
        assert main(["train", "--model", model, "--kind", "orm", "--data", data, "--output", str(out),
                     "--max-steps", "1", "--save-every", "0"]) == 0
        saved = json.loads((out / "config.json").read_text())["rewardlab"]["objective"]
        assert saved["orm_loss_on"] == want
