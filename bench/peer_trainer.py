"""What the training benchmarks against TRL share: the peer's trainer fed rewardlab's visiting
order, a clock of its steps and losses, and each side run in a fresh process that prints one
RESULT line (its step times, losses and peak memory)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import torch


def in_order(trainer_cls):
    """``trainer_cls`` visiting its dataset in the file's order (rewardlab's, written there)."""
    from torch.utils.data import SequentialSampler

    class InOrder(trainer_cls):
        def _get_train_sampler(self, *a, **k):
            return SequentialSampler(self.train_dataset)
    return InOrder


def clock():
    """A TrainerCallback recording the time at the end of each step and each logged loss."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self):
            self.times, self.losses, self.t0 = [], [], time.perf_counter()

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter() - self.t0)

        def on_log(self, _args, _state, _control, logs=None, **k):
            if logs and "loss" in logs:
                self.losses.append(logs["loss"])
    return Clock()


def rewardlab_result(out) -> dict:
    """A rewardlab run's step times and losses, from its metrics.jsonl (``out``: its --output)."""
    from pathlib import Path

    logs = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return {"times": [r["elapsed_s"] for r in logs], "losses": [r["loss"] for r in logs]}


def trl_inputs(folder: str, ordered: str, model_cls):
    """The peer's tokenizer, fp32 model (``model_cls``, from ``folder``) and dataset (in file order)."""
    import datasets
    from transformers import AutoTokenizer

    return (AutoTokenizer.from_pretrained(folder), model_cls.from_pretrained(folder, dtype=torch.float32),
            datasets.load_dataset("json", data_files=ordered, split="train"))


def report(result: dict) -> None:
    """Print a worker's RESULT line, with its peak memory (the GPU's when there is one)."""
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if torch.cuda.is_available():
        result["peak_rss_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(result))


def run(script: str, who: str, args: list[str]) -> dict:
    """Run ``script --worker who ARGS`` in a fresh process; its RESULT, or exit with its error."""
    out = subprocess.run([sys.executable, script, "--worker", who, *args], capture_output=True, text=True)
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if out.returncode or not line:
        raise SystemExit(f"{who} failed:\n{out.stderr[-3000:]}")
    return json.loads(line[0][7:])
