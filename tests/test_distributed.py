"""Two processes (gloo on CPU) train the same model as one process with the same global batch."""

import json
import socket
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

from rewardlab.config import TrainConfig
from rewardlab.train import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process(tiny_llama, pairs_file, tmp_path):
    common = dict(model=tiny_llama, data=pairs_file, lr=1e-3, warmup_ratio=0.25, save_every=0, log_every=1)
    train(TrainConfig(output=str(tmp_path / "one"), batch_size=4, eval_data=pairs_file, eval_every=2, **common))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "rewardlab", "train", "--model", tiny_llama,
           "--data", pairs_file, "--output", str(tmp_path / "two"), "--batch-size", "2", "--lr", "1e-3",
           "--warmup-ratio", "0.25", "--save-every", "0", "--log-every", "1", "--eval-data", pairs_file,
           "--eval-every", "2"]
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
