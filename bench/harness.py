"""What every benchmark shares: where results go and what they record besides their numbers.

A result file is one JSON object in ``bench/results/NAME.json`` (or ``$REWARDLAB_BENCH_RESULTS``,
which the smoke tests point at a temporary folder so a toy run never overwrites a real one):

    {"name": ..., "title": ..., "command": "python bench/x.py --flag ...",
     "environment": {commit, dirty, date, python, torch, transformers, ..., trl, device, threads},
     "arguments": {...}, "results": {...everything the script measured...},
     "table": {"columns": [...], "rows": [[...], ...]}, "notes": [...]}

``bench/report.py`` renders ``docs/benchmarks.md`` from these files and nothing else, so every
number on that page names the commit and the command that produced it.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("REWARDLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))
LIBRARIES = ("torch", "transformers", "accelerate", "peft", "datasets", "trl", "vllm")


def results_dir() -> Path:
    return Path(os.environ.get("REWARDLAB_BENCH_RESULTS") or ROOT / "bench" / "results")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _device() -> dict:
    import torch

    if torch.cuda.is_available():
        return {"device": torch.cuda.get_device_name(0), "gpus": torch.cuda.device_count()}
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"device": f"cpu ({cpu})", "cpus": os.cpu_count()}


def environment() -> dict:
    """What a number depends on besides the arguments: the commit, the versions, the machine."""
    import torch

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": _git("rev-parse", "HEAD"), "dirty": bool(status),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), **versions, **_device(), "threads": torch.get_num_threads()}


def command() -> str:
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return shlex.join(["python", str(shown), *sys.argv[1:]])


def record(name: str, title: str, args, results: dict, table: dict | None = None,
           notes: list[str] | None = None, headline: str = "") -> Path:
    """Write NAME.json (see the module docstring) and return its path. ``args``: the argparse
    namespace (or a dict); ``table``: the numbers as {"columns": [...], "rows": [[...]]};
    ``headline``: one sentence with the number that matters, for the README (bench/report.py)."""
    arguments = dict(vars(args) if not isinstance(args, dict) else args)
    body = {"name": name, "title": title, "command": command(), "environment": environment(),
            "arguments": arguments, "results": results}
    if table:
        assert all(len(r) == len(table["columns"]) for r in table["rows"]), "a table row has the wrong width"
        body["table"] = table
    if notes:
        body["notes"] = list(notes)
    if headline:
        body["headline"] = headline
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(body, indent=1, default=str) + "\n")
    print(f"-> {path}", flush=True)
    return path


def fmt(x: float, digits: int = 3) -> str:
    """A number as the tables show it."""
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def interval(d: dict, digits: int = 3) -> str:
    """'0.652 [0.605, 0.700]' from {"value", "low", "high"} (a bootstrap interval); the value alone
    when the bounds are missing."""
    text = fmt(d["value"], digits)
    return f"{text} [{fmt(d['low'], digits)}, {fmt(d['high'], digits)}]" if d.get("low") is not None else text


def cut_layers(model, layers: int) -> int:
    """Keep the first ``layers`` decoder layers of ``model`` (``model.model.layers``: a causal LM
    or its sequence-classification form); 0, or at least the model's own count, keeps them all,
    so a cut asked of the real model also runs on a tiny one. Encoders are left whole. Returns
    the layers the model has now: what result names say (``--layers 0`` on SmolLM2 is L30)."""
    stack = getattr(getattr(model, "model", None), "layers", None)
    if stack is not None and 0 < layers < len(stack):
        model.model.layers = stack[:layers]
        model.config.num_hidden_layers = layers
        if getattr(model.config, "layer_types", None):
            model.config.layer_types = model.config.layer_types[:layers]
    return model.config.num_hidden_layers
