"""Drift of served rewards (serve/drift.py): the PSI of samples from the training distribution is
near 0 and of shifted ones far above 0.25; over loopback HTTP the gauges and /health stay at 0
for the training texts and move (with one warning in the log) when the served rewards leave the
training distribution; the optional log is bounded."""

import json
import random
import shutil

import httpx
import pytest

import rewardlab
from rewardlab.cli import main
from rewardlab.serve.drift import Watch, psi
from tests.conftest import PAIRS, serving, write_jsonl

ROWS = [dict(p, prompt=p["prompt"] + f" ({i})") for i, p in enumerate(PAIRS * 4)]


def test_psi_is_near_zero_in_distribution_and_large_when_shifted():
    rng = random.Random(0)
    same = [rng.gauss(2.0, 0.5) for _ in range(5000)]
    assert psi(same, 2.0, 0.5) < 0.01
    assert psi([x + 0.5 for x in same], 2.0, 0.5) > 0.25  # one standard deviation up
    watch = Watch("m", 2.0, 0.5, window=100)
    watch.add(same)
    r = watch.report()
    assert r["n"] == 100 and abs(r["mean_shift"]) < 0.5 and 0.6 < r["std_ratio"] < 1.4


@pytest.fixture(scope="module")
def trained(tiny_llama, tmp_path_factory):
    folder = tmp_path_factory.mktemp("drift")
    data = write_jsonl(folder / "pairs.jsonl", ROWS)
    out = folder / "rm"
    assert main(["train", "--model", tiny_llama, "--data", data, "--output", str(out), "--max-steps", "2",
                 "--lr", "1e-2", "--save-every", "0", "--reward-stats"]) == 0
    return out


def _served(url: str) -> None:
    for r in ROWS:  # every training completion once: the distribution the statistics were measured on
        for side in ("chosen", "rejected"):
            httpx.post(f"{url}/get_reward", json={"query": [r["prompt"] + r[side]], "prompts": [r["prompt"]]},
                       timeout=60).raise_for_status()


def test_served_rewards_from_training_do_not_drift_and_shifted_ones_do(trained, tmp_path, capsys):
    log = tmp_path / "served.jsonl"
    with serving(rewardlab.create_app(str(trained), drift_window=32, drift_log=str(log))) as url:
        _served(url)
        health = httpx.get(f"{url}/health").json()["drift"]["models"][str(trained)]
        metrics = httpx.get(f"{url}/metrics").text
    assert health["n"] == 32 and abs(health["mean_shift"]) < 1e-4 and abs(health["std_ratio"] - 1) < 1e-3
    assert "rewardlab_reward_drift_psi{" in metrics and "rewardlab_reward_drift_mean_shift{" in metrics
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == 32 and all(isinstance(x["tokens"], int) and isinstance(x["reward"], float) for x in lines)

    shifted = tmp_path / "shifted"  # the same weights whose training rewards sat 3 standard deviations higher
    shutil.copytree(trained, shifted)
    config = json.loads((shifted / "config.json").read_text())
    stats = config["rewardlab"]["reward_stats"]
    stats["mean"] += 3 * stats["std"]
    (shifted / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    with serving(rewardlab.create_app(str(shifted), drift_window=32, drift_threshold=0.25)) as url:
        _served(url)
        health = httpx.get(f"{url}/health").json()["drift"]["models"][str(shifted)]
    assert health["mean_shift"] == pytest.approx(-3.0, abs=1e-3) and health["psi"] > 0.25
    warnings = [x for x in capsys.readouterr().err.splitlines() if "drifted from its training distribution" in x]
    assert len(warnings) == 1  # once, not per request


def test_the_drift_log_is_bounded(trained, tmp_path):
    log = tmp_path / "small.jsonl"
    with serving(rewardlab.create_app(str(trained), drift_log=str(log), drift_log_mb=0.0002)) as url:  # ~200 bytes
        _served(url)
    text = log.read_text()
    assert 0 < len(text.encode()) <= 210 and text.endswith("\n") and all(json.loads(x) for x in text.splitlines())
