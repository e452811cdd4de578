import json
import math
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from rewardlab.config import ConfigError, TrainConfig
from rewardlab.training import train
from rewardlab.training.schedule import lr_at
from tests.conftest import OnStep


def _cfg(model, data, out, **kw) -> TrainConfig:
    base = dict(model=model, data=data, output=str(out), lr=1e-3, warmup_ratio=0.25, save_every=0, log_every=1)
    base.update(kw)
    return TrainConfig.flat(**base)


def _weights(folder) -> dict:
    return load_file(str(Path(folder) / "model.safetensors"))


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def _losses(folder) -> list[float]:
    records = [json.loads(x) for x in (Path(folder) / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


def _same_run(a, b) -> None:
    """Same loss at every step, and the same weights. Adam divides by sqrt(v), so a gradient
    that is ~0 can flip sign under a different summation order and move its weight by up to
    lr (1e-3 here): weights get 1e-4, the loss trajectory the tight bound."""
    la, lb = _losses(a), _losses(b)
    assert len(la) == len(lb) and max(abs(x - y) for x, y in zip(la, lb)) < 1e-5
    assert _max_diff(_weights(a), _weights(b)) < 1e-4


def test_training_learns_and_writes_a_standard_folder(tiny_llama, pairs_file, tmp_path):
    result = train(_cfg(tiny_llama, pairs_file, tmp_path / "out", eval_data=pairs_file, epochs=4, batch_size=4))
    out = tmp_path / "out"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl", "train_results.json"):
        assert (out / name).exists(), name
    assert not list(out.glob("*.bin")) and not list(out.glob("*.pt"))
    assert result["steps"] == 16 and result["eval"]["accuracy"] == 1.0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0]
    assert json.loads((out / "config.json").read_text())["rewardlab"]["max_length"] == 256


def test_seeded_runs_are_identical(tiny_llama, pairs_file, tmp_path):
    train(_cfg(tiny_llama, pairs_file, tmp_path / "a", max_steps=2))
    train(_cfg(tiny_llama, pairs_file, tmp_path / "b", max_steps=2))
    assert _max_diff(_weights(tmp_path / "a"), _weights(tmp_path / "b")) == 0.0


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_bert"])
def test_grad_accumulation_8x1_equals_1x8(request, pairs_file, tmp_path, fixture):
    model = request.getfixturevalue(fixture)
    train(_cfg(model, pairs_file, tmp_path / "big", batch_size=8, grad_accum=1, epochs=2))
    train(_cfg(model, pairs_file, tmp_path / "acc", batch_size=1, grad_accum=8, epochs=2))
    _same_run(tmp_path / "big", tmp_path / "acc")


def test_short_last_step_is_an_exact_mean(tiny_llama, pairs_file, tmp_path):
    """12 pairs, batch 8: the last step has 4 pairs; 4x2 accumulation must match 8x1."""
    src = Path(pairs_file).read_text().splitlines()[:12]
    data = tmp_path / "twelve.jsonl"
    data.write_text("\n".join(src) + "\n")
    train(_cfg(tiny_llama, str(data), tmp_path / "big", batch_size=8, epochs=2))
    train(_cfg(tiny_llama, str(data), tmp_path / "acc", batch_size=4, grad_accum=2, epochs=2))
    _same_run(tmp_path / "big", tmp_path / "acc")


def interrupted_run(monkeypatch, cfg: TrainConfig, at_step: int) -> None:
    """Run ``cfg`` and press Ctrl-C (a KeyboardInterrupt) right after optimizer step ``at_step``."""

    def interrupt(run):
        if run.step == at_step:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[OnStep(interrupt)])


def test_resume_after_ctrl_c_equals_uninterrupted(tiny_llama, pairs_file, tmp_path, monkeypatch):
    full = _cfg(tiny_llama, pairs_file, tmp_path / "full", batch_size=2)  # 8 steps
    train(full)
    cut = _cfg(tiny_llama, pairs_file, tmp_path / "cut", batch_size=2)
    interrupted_run(monkeypatch, cut, 5)
    assert (tmp_path / "cut" / "checkpoints" / "step-5" / "optimizer.safetensors").exists()
    with pytest.raises(ConfigError, match="--resume"):
        train(cut)  # refuses to silently start over
    train(_cfg(tiny_llama, pairs_file, tmp_path / "cut", batch_size=2, resume=True))
    assert _max_diff(_weights(tmp_path / "full"), _weights(tmp_path / "cut")) < 1e-6


def test_resume_from_periodic_checkpoint_and_refuses_changed_settings(tiny_bert, pairs_file, tmp_path):
    train(_cfg(tiny_bert, pairs_file, tmp_path / "full", batch_size=2, save_every=3))
    ckpt = tmp_path / "full" / "checkpoints" / "step-6"
    assert ckpt.exists() and not (tmp_path / "full" / "checkpoints" / "step-3").exists()  # only the newest kept
    shutil.copytree(ckpt, tmp_path / "again" / "checkpoints" / "step-6")
    with pytest.raises(ConfigError, match="batch_size, number of steps"):
        train(_cfg(tiny_bert, pairs_file, tmp_path / "again", batch_size=4, resume=True))
    train(_cfg(tiny_bert, pairs_file, tmp_path / "again", batch_size=2, resume=True))
    assert _max_diff(_weights(tmp_path / "full"), _weights(tmp_path / "again")) < 1e-6


def test_lr_schedule():
    optim = TrainConfig.flat(lr=1.0, warmup_ratio=0.1).optim
    assert [round(lr_at(s, 10, optim), 3) for s in (0, 1, 5, 9)] == [1.0, 1.0, 0.556, 0.111]
    optim = TrainConfig.flat(lr=1.0, warmup_ratio=0.5).optim
    assert lr_at(0, 10, optim) == 0.2 and lr_at(4, 10, optim) == 1.0


def test_shared_prompt_training_equals_padded_training(tiny_llama, pairs_file, tmp_path):
    train(_cfg(tiny_llama, pairs_file, tmp_path / "shared", batch_size=4, shared_prompt=True))
    train(_cfg(tiny_llama, pairs_file, tmp_path / "padded", batch_size=4, shared_prompt=False))
    _same_run(tmp_path / "shared", tmp_path / "padded")


def test_gradient_checkpointing_changes_nothing(tiny_llama, pairs_file, tmp_path):
    train(_cfg(tiny_llama, pairs_file, tmp_path / "plain", batch_size=4))
    train(_cfg(tiny_llama, pairs_file, tmp_path / "ckpt", batch_size=4, gradient_checkpointing=True))
    _same_run(tmp_path / "plain", tmp_path / "ckpt")


def test_bf16_autocast_trains(tiny_llama, pairs_file, tmp_path):
    result = train(_cfg(tiny_llama, pairs_file, tmp_path / "bf16", batch_size=4, bf16=True, epochs=3,
                        eval_data=pairs_file))
    losses = _losses(tmp_path / "bf16")
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert result["eval"]["accuracy"] >= 0.75
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["dtype"] == "float32"  # weights stay fp32


def test_missing_tracker_package_is_a_clear_error(tiny_llama, pairs_file, tmp_path):
    import importlib.util

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    with pytest.raises(ConfigError, match="report_to wandb needs its package: pip install wandb"):
        train(_cfg(tiny_llama, pairs_file, tmp_path / "o", report_to="wandb"))
    with pytest.raises(ConfigError, match="unknown tracker 'mlflowx'"):
        train(_cfg(tiny_llama, pairs_file, tmp_path / "o", report_to="mlflowx"))


def test_group_by_length_is_a_permutation_of_similar_lengths():
    from rewardlab.training.schedule import epoch_order

    lengths = [((i * 37) % 101) + 1 for i in range(1000)]
    order = epoch_order(1000, 0, 42, 4, lengths)
    assert sorted(order) == list(range(1000))
    spread = sum(max(lengths[i] for i in order[s:s + 4]) - min(lengths[i] for i in order[s:s + 4])
                 for s in range(0, 1000, 4)) / 250
    assert spread < 5  # random batches of 4 would spread ~60
    assert epoch_order(1000, 0, 42, 4, lengths) == order and epoch_order(1000, 1, 42, 4, lengths) != order


def test_tensorboard_tracker_writes_events(tiny_llama, pairs_file, tmp_path):
    pytest.importorskip("tensorboard")
    train(_cfg(tiny_llama, pairs_file, tmp_path / "tb", max_steps=2, report_to="tensorboard"))
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_real_ctrl_c_stops_after_the_step_and_resumes_exactly(tiny_llama, pairs_file, tmp_path, monkeypatch, signum):
    """A real SIGINT (Ctrl-C) or SIGTERM (a scheduler's preemption): training finishes the current
    step, checkpoints, and resumes exactly."""
    import os
    import signal

    signum = getattr(signal, signum)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    full = _cfg(tiny_llama, pairs_file, tmp_path / "full", batch_size=2)  # 8 steps
    train(full)

    def press_ctrl_c(run):
        if run.step == 4:
            os.kill(os.getpid(), signum)  # handled: the next step still completes
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tiny_llama, pairs_file, tmp_path / "cut", batch_size=2), callbacks=[OnStep(press_ctrl_c)])
    assert [p.name for p in (tmp_path / "cut" / "checkpoints").iterdir()] == ["step-5"]
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored
    train(_cfg(tiny_llama, pairs_file, tmp_path / "cut", batch_size=2, resume=True))
    assert _max_diff(_weights(tmp_path / "full"), _weights(tmp_path / "cut")) < 1e-6
