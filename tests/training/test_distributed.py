"""Two processes (gloo on CPU) train the same model as one process with the same global batch."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rewardlab.config import TrainConfig
from rewardlab.training import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process(tiny_llama, pairs_file, tmp_path):
    common = dict(model=tiny_llama, data=pairs_file, lr=1e-3, warmup_ratio=0.25, save_every=0, log_every=1)
    train(TrainConfig.flat(output=str(tmp_path / "one"), batch_size=4, eval_data=pairs_file, eval_every=2, **common))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "rewardlab", "train", "--model", tiny_llama,
           "--data", pairs_file, "--output", str(tmp_path / "two"), "--batch-size", "2", "--lr", "1e-3",
           "--warmup-ratio", "0.25", "--save-every", "2", "--log-every", "1", "--eval-data", pairs_file,
           "--eval-every", "2"]  # a checkpoint mid-run under DDP changes nothing
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true",
                         **__import__("os").environ})
    assert run.returncode == 0, run.stderr[-3000:]

    def losses(name):
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        return [json.loads(x)["loss"] for x in lines if "loss" in json.loads(x)]

    one, two = losses("one"), losses("two")
    assert len(one) == len(two) == 4
    assert max(abs(a - b) for a, b in zip(one, two)) < 1e-5

    def evals(name):  # eval is sharded over the processes and gathered
        lines = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        return [(r["eval/n"], r["eval/accuracy"]) for r in lines if "eval/n" in r]

    assert evals("one") == evals("two") and evals("one")[0][0] == 16
    assert json.loads((tmp_path / "two" / "train_results.json").read_text())["eval"]["n"] == 16
    a = load_file(str(Path(tmp_path / "one" / "model.safetensors")))
    b = load_file(str(Path(tmp_path / "two" / "model.safetensors")))
    # Adam divides by sqrt(v): for near-zero gradients the all-reduce's different summation order
    # can move a weight by a fraction of lr (1e-3) in 4 steps; the loss trajectory above is the check.
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 5e-4
    assert (tmp_path / "two" / "checkpoints" / "step-2" / "model.safetensors").exists()


def test_score_under_two_processes_keeps_input_order(tiny_llama, pairs_file, tmp_path):
    import os

    from rewardlab.cli import main

    model = str(tmp_path / "m")
    assert main(["train", "--model", tiny_llama, "--data", pairs_file, "--output", model, "--max-steps", "1"]) == 0
    rows = [json.loads(x) for x in Path(pairs_file).read_text().splitlines()][:7]
    rows = [dict(r, id=i) for i, r in enumerate(rows)] + [{"id": 7, "prompt": "Q:", "completions": [" a", " b", " c"]}]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["score", "--model", model, "--data", str(data), "--output", str(tmp_path / "one.jsonl")]) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "rewardlab", "score", "--model", model, "--data", str(data),
           "--output", str(tmp_path / "two.jsonl")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"})
    assert run.returncode == 0, run.stderr[-3000:]
    one = [json.loads(x) for x in (tmp_path / "one.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert [r["id"] for r in two] == list(range(8))
    for a, b in zip(one, two):
        for key in ("chosen_reward", "rejected_reward"):
            if key in a:
                assert abs(a[key] - b[key]) < 1e-5
        if "rewards" in a:
            assert max(abs(x - y) for x, y in zip(a["rewards"], b["rewards"])) < 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="accelerate turns FSDP on for GPUs only; test_sharded_checkpoint_round_trip covers the "
                           "sharded checkpoint code on CPU")
def test_fsdp_trains_like_one_process_saves_whole_model_and_resumes(tiny_llama, pairs_file, tmp_path):
    """FSDP2 through accelerate on every GPU of the machine: same losses as 1 plain process, a
    plain full checkpoint and final folder (gathered from the shards), and an exact resume."""
    import os
    import shutil

    from rewardlab.inference import RewardModel

    n = torch.cuda.device_count() if torch.cuda.device_count() in (1, 2, 4) else 1
    common = dict(model=tiny_llama, data=pairs_file, lr=1e-3, warmup_ratio=0.25, log_every=1)
    train(TrainConfig.flat(output=str(tmp_path / "one"), batch_size=4, save_every=0, **common))
    env = {**os.environ, "ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2",
           "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP"}

    def launch(out, *extra):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--master_addr",
               "127.0.0.1", "--master_port", str(_free_port()), "-m", "rewardlab", "train", "--model", tiny_llama,
               "--data", pairs_file, "--output", str(out), "--batch-size", str(4 // n), "--lr", "1e-3",
               "--warmup-ratio", "0.25", "--log-every", "1", "--eval-data", pairs_file, *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)

    run = launch(tmp_path / "fsdp", "--save-every", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"x {n} process{'es' if n > 1 else ''}, FSDP)" in run.stderr

    def losses(name):
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        return [json.loads(x)["loss"] for x in lines if "loss" in json.loads(x)]

    assert len(losses("fsdp")) == 4 and max(abs(a - b) for a, b in zip(losses("one"), losses("fsdp"))) < 1e-4
    a = load_file(str(tmp_path / "one" / "model.safetensors"))
    b = load_file(str(tmp_path / "fsdp" / "model.safetensors"))
    assert set(a) == set(b) and all(a[k].shape == b[k].shape for k in a)  # whole tensors, not shards
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 5e-4
    assert json.loads((tmp_path / "fsdp" / "train_results.json").read_text())["eval"]["n"] == 16
    RewardModel.from_pretrained(str(tmp_path / "fsdp"))  # a plain folder

    resumed = tmp_path / "resumed"  # continue the step-2 checkpoint: same weights as uninterrupted
    shutil.copytree(tmp_path / "fsdp" / "checkpoints" / "step-2", resumed / "checkpoints" / "step-2")
    run = launch(resumed, "--save-every", "2", "--resume")
    assert run.returncode == 0, run.stderr[-3000:]
    c = load_file(str(resumed / "model.safetensors"))
    assert max((b[k] - c[k]).abs().max().item() for k in b) < 1e-6


def test_sharded_checkpoint_round_trip(tiny_llama, tmp_path):
    """The checkpoint code under real FSDP2 shards (2 gloo processes, torch's fully_shard): it
    gathers whole tensors, and a fresh sharded model loaded from them continues identically."""
    import os

    worker = Path(__file__).with_name("fsdp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(worker), tiny_llama, str(tmp_path)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])})
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["whole_shapes"] and result["loss_diff"] < 1e-6 and result["weight_diff"] < 1e-6


def test_ctrl_c_in_one_process_stops_all_at_the_same_step(tiny_llama, pairs_file, tmp_path):
    """SIGINT to one of 2 DDP processes: both stop after the same step with one checkpoint, and
    the resumed run ends with the weights of an uninterrupted one."""
    import os
    import time

    import psutil

    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}

    def cmd(out, *extra):
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                "127.0.0.1", "--master_port", str(_free_port()), "-m", "rewardlab", "train", "--model", tiny_llama,
                "--data", pairs_file, "--output", str(out), "--batch-size", "2", "--lr", "1e-3", "--epochs", "25",
                "--save-every", "0", "--log-every", "1", *extra]

    assert subprocess.run(cmd(tmp_path / "full"), capture_output=True, env=env, timeout=600).returncode == 0
    proc = subprocess.Popen(cmd(tmp_path / "cut"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    metrics = tmp_path / "cut" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.02)
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True) if "rewardlab" in " ".join(p.cmdline())]
    assert len(workers) == 2
    workers[1].send_signal(2)  # SIGINT to one process only
    proc.communicate(timeout=300)
    saved = [p.name for p in (tmp_path / "cut" / "checkpoints").iterdir()]
    assert len(saved) == 1 and not (tmp_path / "cut" / "train_results.json").exists()
    assert int(saved[0].split("-")[1]) < 100
    run = subprocess.run(cmd(tmp_path / "cut", "--resume"), capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


def test_two_processes_equal_one_process_on_groups(tiny_llama, groups_file, tmp_path):
    """K completions per prompt under DDP: a prompt is never split across processes, every
    completion is forwarded once per step (the logged row count), and the losses match."""
    common = dict(model=tiny_llama, data=groups_file, lr=1e-3, warmup_ratio=0.25, save_every=0, log_every=1,
                  loss="plackett_luce")
    train(TrainConfig.flat(output=str(tmp_path / "one"), batch_size=4, **common))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "rewardlab", "train", "--model", tiny_llama,
           "--data", groups_file, "--output", str(tmp_path / "two"), "--batch-size", "2", "--lr", "1e-3",
           "--warmup-ratio", "0.25", "--save-every", "0", "--log-every", "1", "--loss", "plackett_luce"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                         env={"OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true", **__import__("os").environ})
    assert run.returncode == 0, run.stderr[-3000:]

    def records(name):
        return [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]

    one, two = records("one"), records("two")
    assert [r["completions"] for r in one] == [r["completions"] for r in two]
    assert sum(r["completions"] for r in two) == 3 * (4 + 3 + 4 + 2 + 3)  # the epoch's completions, once each
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(one, two)) < 1e-5


def test_a_per_token_kind_trains_the_same_on_two_processes(tiny_llama, tmp_path):
    """Kind prm through the same loop under DDP: the loss per step (a mean over every labelled
    step of the global batch) equals one process's."""
    rows = [{"prompt": f"Q{i}: 2+{i}?", "steps": ["We add.", f"It is {2 + i + i % 2}."], "labels": [True, i % 2 == 0]}
            for i in range(8)]
    data = tmp_path / "prm.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["--model", tiny_llama, "--kind", "prm", "--data", str(data), "--lr", "1e-3", "--save-every", "0",
              "--log-every", "1"]
    from rewardlab.cli import main

    assert main(["train", *common, "--output", str(tmp_path / "one"), "--batch-size", "4"]) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "rewardlab", "train", *common, "--output", str(tmp_path / "two"),
           "--batch-size", "2"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true",
                         **__import__("os").environ})
    assert run.returncode == 0, run.stderr[-3000:]

    def losses(name):
        return [json.loads(x)["loss"] for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()
                if "loss" in json.loads(x)]

    one, two = losses("one"), losses("two")
    assert len(one) == len(two) == 2 and max(abs(a - b) for a, b in zip(one, two)) < 1e-5
