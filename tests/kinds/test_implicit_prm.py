"""Kind implicit_prm (implicit process rewards, Yuan et al. 2024): the rewards, the loss and the
cached reference log-probabilities against plain transformers, the shared-prompt forward against
the padded one, and end to end on a tiny causal model: train -> score -> RewardModel -> HTTP."""

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rewardlab.cli import main
from rewardlab.config import ConfigError
from rewardlab.data.text import Text
from rewardlab.errors import ModelError
from rewardlab import kinds
from rewardlab.kinds import implicit_prm
from rewardlab.models.heads import HeadOutputs, forward_path
from tests.test_cli_kinds import _rows, _write

BETA = 0.5


def _data_rows() -> list[dict]:
    """The ORM's rows, and the same solutions as two steps with a ``correct`` outcome."""
    orm = _rows("orm")
    return orm + [{"prompt": r["prompt"], "steps": ["We add the numbers.", r["completion"].strip()],
                   "correct": bool(r["label"])} for r in orm]


@pytest.fixture(scope="module")
def trained(tiny_llama, tmp_path_factory):
    folder = tmp_path_factory.mktemp("implicit")
    data = _write(folder / "rows.jsonl", _data_rows())
    out = str(folder / "model")
    assert main(["train", "--model", tiny_llama, "--kind", "implicit_prm", "--data", data, "--eval-data", data,
                 "--output", out, "--batch-size", "4", "--lr", "1e-2", "--save-every", "0", "--epochs", "2",
                 "--implicit-beta", str(BETA)]) == 0
    return data, out


def _log_probs(model, ids: list[int], start: int) -> torch.Tensor:
    """log pi(ids[t] | ids[:t]) for t >= start, plain transformers, the whole vocabulary."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    return torch.stack([logp[t - 1, ids[t]] for t in range(start, len(ids))])


def _by_hand(tok, policy, ref, prompt: str, completion: str, ends: list[int]):
    """Token rewards beta * (log pi - log pi_ref) over the completion (and EOS), and their sums per
    step: a step ends at the token holding its separator's last character; EOS is in the last."""
    enc = tok(prompt + completion + tok.eos_token, return_offsets_mapping=True)
    ids, spans = enc.input_ids, enc.offset_mapping
    start = sum(1 for a, b in spans if a < b <= len(prompt))
    rewards = BETA * (_log_probs(policy, ids, start) - _log_probs(ref, ids, start))
    last = [next(i for i, (a, b) in enumerate(spans) if a <= len(prompt) + e - 1 < b) for e in ends]
    owner = [next((k for k, i in enumerate(last) if t <= i), len(last) - 1) for t in range(start, len(ids))]
    steps = [float(sum(r for r, o in zip(rewards.tolist(), owner) if o == k)) for k in range(len(ends))]
    return rewards.tolist(), steps


def test_rewards_are_beta_times_the_log_ratio_of_two_plain_models(trained, tiny_llama, tmp_path):
    data, out = trained
    scored = tmp_path / "scored.jsonl"
    assert main(["score", "--model", out, "--data", data, "--output", str(scored), "--per-token"]) == 0
    rows = [json.loads(x) for x in scored.read_text().splitlines()]
    tok = AutoTokenizer.from_pretrained(out)
    policy = AutoModelForCausalLM.from_pretrained(out).eval()
    ref = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()  # the starting backbone
    assert policy.config.rewardlab["backbone"] == tiny_llama and policy.config.rewardlab["head"] == "lm"
    for row in rows[:2] + rows[8:10]:  # a right and a wrong completion, as text and as steps
        if "steps" in row:  # each step followed by the separator, as training wrote them
            completion = "".join(s + "\n" for s in row["steps"])
            ends = [len("".join(s + "\n" for s in row["steps"][:k + 1])) for k in range(len(row["steps"]))]
        else:
            completion, ends = row["completion"], [len(row["completion"])]
        tokens, steps = _by_hand(tok, policy, ref, row["prompt"], completion, ends)
        assert row["token_rewards"] == pytest.approx(tokens, abs=1e-5)
        assert row["step_rewards"] == pytest.approx(steps, abs=1e-5)
        assert row["outcome"] == pytest.approx(1 / (1 + math.exp(-sum(tokens))), abs=1e-5)
        assert row["reward"] == pytest.approx(min(1 / (1 + math.exp(-s)) for s in steps), abs=1e-5)  # min
    assert len({round(r["outcome"], 6) for r in rows}) > 4 and any(abs(t) > 1e-3 for t in rows[0]["token_rewards"])


def _items(tiny_llama, rows, obj):
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    parse = implicit_prm.parser(obj)
    points = [parse(r, tok, f"rows.jsonl: row {i + 1}", i + 1) for i, r in enumerate(rows)]
    items, _ = implicit_prm.encode(tok, points, 256, obj)
    return tok, items


def _perturbed(tiny_llama) -> torch.nn.Module:
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


ROWS = [{"prompt": "What is 2 + 3?", "completion": " The sum is 5.", "label": 1},
        {"prompt": "What is 2 + 3?", "completion": " The sum is 6.", "label": 0},
        {"prompt": "What is 2 + 3?", "completion": " Five.", "label": 0.25},
        {"prompt": "What is 4 + 4?", "steps": ["We add.", "The sum is 8."], "correct": True}]


def test_prepared_reference_log_probs_equal_a_fresh_computation(tiny_llama):
    obj = implicit_prm.Options(implicit_beta=BETA)
    tok, items = _items(tiny_llama, ROWS, obj)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).train()
    prepared = implicit_prm.prepare(model, items, obj, torch.device("cpu"))
    assert model.training and next(model.parameters()).device.type == "cpu"  # mode and device as they were
    fresh = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    for (p, enc), (_, before) in zip(prepared, items):
        ids, reads = enc.sequences[0], enc.reads[0]
        assert reads == list(range(reads[0], len(ids) - 1))  # every completion token and EOS, from the one before
        assert tok.decode(ids[reads[0] + 1:], skip_special_tokens=True) == p.completion
        assert p.target.ref.tolist() == pytest.approx(_log_probs(fresh, ids, reads[0] + 1).tolist(), abs=1e-5)
        assert before.reads == enc.reads
    assert [p.target.label for p, _ in prepared] == [1.0, 0.0, 0.25, 1.0]
    # a later change of the model does not touch what was cached
    cached = [p.target.ref.clone() for p, _ in prepared]
    with torch.no_grad():
        model.lm_head.weight.mul_(2)
    assert all(torch.equal(a, p.target.ref) for a, (p, _) in zip(cached, prepared))


def test_loss_is_the_bce_of_sigma_of_the_summed_log_ratio(tiny_llama):
    obj = implicit_prm.Options(implicit_beta=BETA)
    tok, items = _items(tiny_llama, ROWS, obj)
    items = implicit_prm.prepare(AutoModelForCausalLM.from_pretrained(tiny_llama), items, obj, torch.device("cpu"))
    policy, ref = _perturbed(tiny_llama).eval(), AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    want = 0.0
    for p, enc in items:
        ids, start = enc.sequences[0], enc.reads[0][0] + 1
        s = BETA * float((_log_probs(policy, ids, start) - _log_probs(ref, ids, start)).sum())
        y = p.target.label
        want += -(y * math.log(1 / (1 + math.exp(-s))) + (1 - y) * math.log(1 - 1 / (1 + math.exp(-s))))
    forward = HeadOutputs(policy)
    for path in ("shared", "padded"):  # the shared-prompt forward (the prompt once) and one padded row per text
        batch = kinds.get("implicit_prm").batch(items, tok.pad_token_id, path, "cpu")
        value, stats = implicit_prm.loss(forward(batch), items, obj)
        assert value.item() == pytest.approx(want, rel=1e-5), path
        assert stats["examples"] == 4.0
    with pytest.raises(ConfigError, match="^kind implicit_prm: .*--streaming is not supported$"):
        implicit_prm.loss(torch.zeros(1, 3), [(p, enc) for p, enc in _items(tiny_llama, ROWS[:1], obj)[1]], obj)


def test_shared_prompt_scoring_equals_padded_scoring(tiny_llama):
    """Several completions of one prompt: scored together through the shared-prompt forward (the
    prompt encoded once, reads inside it shared) and one by one in padded rows, the same log-probs."""
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model = _perturbed(tiny_llama).eval()
    assert forward_path(model) == "shared"
    prompt = "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May. "
    seqs = [tok(prompt + f" She sold {n} clips altogether.").input_ids + [tok.eos_token_id] for n in (72, 71, 96)]
    start = len(tok(prompt).input_ids) - 1
    reads = [list(range(start, len(s) - 1)) for s in seqs]
    together = implicit_prm.token_logps(model, seqs, reads, None, tok.pad_token_id, share_prefixes=True)
    alone = [implicit_prm.token_logps(model, [s], [r], None, tok.pad_token_id, share_prefixes=False)[0]
             for s, r in zip(seqs, reads)]
    for t, a, s, r in zip(together, alone, seqs, reads):
        assert t.tolist() == pytest.approx(a.tolist(), abs=1e-5)
        assert t.tolist() == pytest.approx(_log_probs(model, s, r[0] + 1).tolist(), abs=1e-5)


def test_scores_agree_across_cli_reward_model_and_server(trained, tmp_path):
    import httpx

    from rewardlab.config import ServeConfig
    from rewardlab.inference import RewardModel
    from rewardlab.serve import create_app
    from tests.conftest import serving

    data, out = trained
    scored = tmp_path / "scored.jsonl"
    assert main(["score", "--model", out, "--data", data, "--output", str(scored)]) == 0
    cli = [json.loads(x) for x in scored.read_text().splitlines()]
    rm = RewardModel.from_pretrained(out, device="cpu")
    rows = _data_rows()
    texts = [Text(r["prompt"], r["completion"]) for r in rows[:8]]
    local = rm.score_details(texts)[0]
    assert [d["reward"] for d in local] == pytest.approx([r["reward"] for r in cli[:8]], abs=1e-6)
    assert [d["step_rewards"] for d in local] == [pytest.approx(r["step_rewards"], abs=1e-6) for r in cli[:8]]
    with serving(create_app(rm, ServeConfig(model=out))) as url:
        got = httpx.post(f"{url}/score", json={"rows": rows}, timeout=60).json()["rows"]
        body = {"query": [r["prompt"] + r["completion"] for r in rows[:8]], "prompts": [r["prompt"] for r in rows[:8]]}
        answer = httpx.post(f"{url}/get_reward", json=body, timeout=60).json()
    for g, c in zip(got, cli):
        assert g["reward"] == pytest.approx(c["reward"], abs=1e-6)
        assert g["outcome"] == pytest.approx(c["outcome"], abs=1e-6)
        assert g["step_rewards"] == pytest.approx(c["step_rewards"], abs=1e-6)
    assert answer["rewards"] == pytest.approx([r["reward"] for r in cli[:8]], abs=1e-5)
    assert answer["extra_logs"]["outcome"] == pytest.approx([r["outcome"] for r in cli[:8]], abs=1e-5)
    assert all(len(r["step_rewards"]) == 2 for r in cli[8:])  # steps rows: one reward per step
    loaded = RewardModel.from_pretrained(out, device="cpu")  # the reference must be reachable where the model scores
    moved = RewardModel(loaded.model, loaded.tokenizer, device="cpu",
                        settings=loaded.settings.replace(backbone=str(tmp_path / "gone")))
    with pytest.raises(ModelError, match="^cannot load the reference model .*gone.* started from"):
        moved.score_details(texts[:1])


def test_eval_reads_orm_rows_and_processbench_rows(trained, tmp_path, capsys):
    data, out = trained
    capsys.readouterr()
    assert main(["eval", "--model", out, "--data", data, "--json"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["kind"] == "implicit_prm" and m["n"] == 16
    assert {"auroc", "brier", "ece", "best_of_n", "aggregate"} <= set(m)
    bench = [{"problem": r["prompt"], "steps": ["We add the numbers.", r["completion"].strip()],
              "label": -1 if r["label"] else 1} for r in _rows("orm")]
    bench = bench[::2] + bench[1::2]  # both classes among the even rows, where the threshold is chosen
    path = _write(tmp_path / "processbench.jsonl", bench)
    assert main(["eval", "--model", out, "--data", path, "--format", "processbench", "--json"]) == 0
    pb = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"f1", "acc_error", "acc_correct", "threshold"} <= set(pb) and pb["n_error"] + pb["n_correct"] == 4


def test_bad_rows_and_streaming_are_one_line_errors(tiny_llama, tmp_path, capsys):
    rows = _data_rows()
    for bad, expected in ((dict(rows[2], label="yes"), "row 3: 'label'"), ({"prompt": "Q?", "completion": " A."},
                          "row 3: missing column 'label'"), ({"prompt": "Q?", "steps": ["A."]}, "row 3: a 'steps' row "
                                                                                              "needs its outcome")):
        data = _write(tmp_path / "bad.jsonl", rows[:2] + [bad] + rows[3:])
        assert main(["train", "--model", tiny_llama, "--kind", "implicit_prm", "--data", data, "--output",
                     str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"rewardlab: error: {data}: {expected}"), err[-1]
    data = _write(tmp_path / "rows.jsonl", rows)
    assert main(["train", "--model", tiny_llama, "--kind", "implicit_prm", "--data", data, "--output",
                 str(tmp_path / "y"), "--streaming", "--max-steps", "1"]) == 2
    # one line (the progress bar, left open by the failed step, is redrawn around it)
    lines = [x.split("]", 1)[-1] for x in capsys.readouterr().err.replace("\r", "\n").splitlines()]
    assert any(x.startswith("rewardlab: error: kind implicit_prm: ") and x.endswith("--streaming is not supported")
               for x in lines)


def test_steps_are_found_in_the_text_and_a_pad_rewardlab_added_is_left_out(smol_tokenizer_dir):
    assert implicit_prm.split_steps("a\nb\n", "\n") == [2, 4]
    assert implicit_prm.split_steps("a\n\nb", "\n") == [2, 4]  # the blank line joins the next step, "\nb"
    assert implicit_prm.split_steps("no separator", "\n") == [12]
    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    assert implicit_prm.own_vocab(tok) is None  # SmolLM2's pad is a token of its own vocabulary
    from rewardlab.models.backbone import PAD_TOKEN

    size = len(tok)
    tok.add_special_tokens({"pad_token": PAD_TOKEN})
    assert implicit_prm.own_vocab(tok) == size


def test_a_steps_rows_outcome(smol_tokenizer_dir):
    """``correct``, a true/false ``label``, all ``labels``, or ProcessBench's first-error index."""
    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir)
    parse = implicit_prm.parser(implicit_prm.Options())
    row = {"prompt": "Q?", "steps": ["a", "b"]}
    outcomes = ({"label": -1}, {"label": 1}, {"label": True}, {"correct": 0.3}, {"labels": [1, 0]},
                {"label": 0, "correct": 1})
    got = [parse({**row, **extra}, tok, "f: row 1", 1).target for extra in outcomes]
    assert [(t.label, t.steps) for t in got] == [(1.0, [1.0, 1.0]), (0.0, [1.0, 0.0]), (1.0, None), (0.3, None),
                                                  (0.0, [1.0, 0.0]), (1.0, [0.0, 0.0])]
