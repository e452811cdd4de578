"""Training on prompts with K completions: every completion forwarded once per step, a prompt
never split, exact accumulation and resume for every objective, the CLI end to end."""

import json
from pathlib import Path

import pytest

from rewardlab.cli import main
from rewardlab.training import train
from tests.conftest import GROUP_ROWS, OnStep, shared_data, write_jsonl
from tests.training.test_loop import _cfg, _same_run, _weights, _max_diff, interrupted_run

LOSSES = [dict(loss="bt"), dict(loss="bt", balance=True), dict(loss="plackett_luce"), dict(loss="davidson"),
          dict(loss="scaled_bt", label_smoothing=0.1, center_rewards_coefficient=0.01),
          dict(loss="bt", margin="score_diff", skip_bad_rows=True)]  # ranking rows have no scores: skipped


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_bert"])
def test_each_completion_is_forwarded_once_per_step(request, groups_file, tmp_path, fixture):
    """Count the rows that reach the reward head in each step: exactly the completions of the
    step's prompts (shared-prompt forward on the decoder, padded forward on the encoder)."""
    model = request.getfixturevalue(fixture)
    seen, expected = [], []

    def count_rows(module, args, output):
        seen[-1] += output.shape[0]

    def check(run):
        step_items = [run.train_set[i] for i in run.order[(run.step - 1) * 4:run.step * 4]]
        expected.append(sum(len(e.completions) for e, _ in step_items))
        seen.append(0)

    from rewardlab.models import backbone

    real = backbone.load_backbone

    def hooked(*a, **k):  # the head of the model the loop builds: score (decoder) or classifier (encoder)
        m, tok = real(*a, **k)
        head = getattr(m, "score", None) or m.classifier
        head.register_forward_hook(count_rows)
        return m, tok

    import rewardlab.training.loop as loop

    loop.load_backbone, seen[:] = hooked, [0]
    try:
        train(_cfg(model, groups_file, tmp_path / "o", batch_size=2, grad_accum=2), callbacks=[OnStep(check)])
    finally:
        loop.load_backbone = real
    # seen[i] counted step i (no eval here); one epoch = 4 steps of 4, 4, 4, 3 prompts.
    assert seen[:4] == expected and len(expected) == 4
    assert sum(expected) == 3 * (4 + 3 + 4 + 2 + 3)  # every completion of the epoch exactly once
    logged = [json.loads(x) for x in (tmp_path / "o" / "metrics.jsonl").read_text().splitlines()]
    assert [r["completions"] for r in logged] == expected


@pytest.mark.parametrize("objective", LOSSES, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_accumulation_is_exact_for_every_objective(tiny_llama, groups_file, tmp_path, objective):
    train(_cfg(tiny_llama, groups_file, tmp_path / "big", batch_size=4, epochs=2, **objective))
    train(_cfg(tiny_llama, groups_file, tmp_path / "acc", batch_size=1, grad_accum=4, epochs=2, **objective))
    _same_run(tmp_path / "big", tmp_path / "acc")


def test_shared_prompt_equals_padded_on_groups(tiny_llama, groups_file, tmp_path):
    train(_cfg(tiny_llama, groups_file, tmp_path / "shared", batch_size=4, loss="plackett_luce"))
    train(_cfg(tiny_llama, groups_file, tmp_path / "padded", batch_size=4, loss="plackett_luce", shared_prompt=False))
    _same_run(tmp_path / "shared", tmp_path / "padded")


def test_resumed_group_run_equals_uninterrupted(tiny_llama, groups_file, tmp_path, monkeypatch):
    kw = dict(batch_size=2, loss="davidson", davidson_nu=0.7)
    train(_cfg(tiny_llama, groups_file, tmp_path / "full", **kw))
    interrupted_run(monkeypatch, _cfg(tiny_llama, groups_file, tmp_path / "cut", **kw), 3)
    train(_cfg(tiny_llama, groups_file, tmp_path / "cut", resume=True, **kw))
    assert _max_diff(_weights(tmp_path / "full"), _weights(tmp_path / "cut")) < 1e-6


def test_all_tied_rows_are_an_error_for_bt_and_data_for_davidson(tiny_llama, tmp_path, capsys):
    rows = GROUP_ROWS + [{"prompt": "q", "completions": [" a", " b"], "scores": [1, 1]}]
    data = write_jsonl(tmp_path / "g.jsonl", rows)
    out = str(tmp_path / "o")
    assert main(["train", "--model", tiny_llama, "--data", data, "--output", out, "--max-steps", "1"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "g.jsonl: row 6: all completions tie, and loss bt cannot use ties (--loss davidson or plackett_luce can) "
        "(--skip-bad-rows leaves such rows out)")
    assert main(["train", "--model", tiny_llama, "--data", data, "--output", out, "--max-steps", "1",
                 "--loss", "davidson"]) == 0


def test_cli_groups_end_to_end(tiny_llama, groups_file, tmp_path, capsys):
    out = str(tmp_path / "rm")
    assert main(["train", "--model", tiny_llama, "--data", groups_file, "--eval-data", groups_file, "--output", out,
                 "--loss", "plackett_luce", "--lr", "1e-3", "--epochs", "3", "--batch-size", "4"]) == 0
    err = capsys.readouterr().err
    assert "kind preference, loss plackett_luce; 15 examples" in err and "batch 4 x accumulation 1 x 1 process" in err
    assert main(["eval", "--model", out, "--data", groups_file, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    for key in ("pairwise_accuracy", "tie_accuracy", "kendall_tau", "spearman", "top1_accuracy", "n_pairs",
                "n_tied_pairs", "accuracy", "best_of_k"):
        assert key in metrics
    assert metrics["n_prompts"] == 15 and metrics["n_pairs"] == 3 * (4 + 3 + 4 + 1 + 3)
    assert metrics["pairwise_accuracy"] > 0.6  # it learned something from 3 epochs
    assert main(["score", "--model", out, "--data", groups_file, "--output", str(tmp_path / "s.jsonl")]) == 0
    scored = [json.loads(x) for x in Path(tmp_path / "s.jsonl").read_text().splitlines()]
    assert [len(r["rewards"]) for r in scored[:5]] == [4, 3, 4, 2, 3]


def test_raw_hh_file_trains_with_its_empty_replies(tiny_bert, tmp_path, capsys):
    path = shared_data("hh-rlhf-harmless", "pairs.jsonl.gz")
    assert main(["train", "--model", tiny_bert, "--data", f"{path}[60:100]", "--output", str(tmp_path / "o"),
                 "--max-steps", "1", "--max-length", "128"]) == 0
    assert "note: kept 1 empty completions" in capsys.readouterr().err  # line 87 of the file
    scored = tmp_path / "s.jsonl"
    assert main(["score", "--model", str(tmp_path / "o"), "--data", f"{path}[80:90]", "--output", str(scored)]) == 0
    assert len(scored.read_text().splitlines()) == 10


def test_evaluation_keeps_rows_the_training_loss_cannot_use(tiny_llama, tmp_path):
    """An all-tied prompt teaches bt nothing (skipped in training, counted) but still counts in
    evaluation: tie accuracy, and the best-of-K baselines on the same questions."""
    rows = GROUP_ROWS + [{"prompt": "q", "completions": [" a", " b"], "scores": [1, 1]}]
    data = write_jsonl(tmp_path / "g.jsonl", rows)
    result = train(_cfg(tiny_llama, data, tmp_path / "o", skip_bad_rows=True, eval_data=data))
    assert result["train_examples"] == 5 and result["eval"]["n_prompts"] == 6
    assert result["eval"]["n_tied_pairs"] == 2 + 1 + 1  # the GSM-like row, the partial top-2, the new row
