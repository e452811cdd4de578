"""The HTTP server, run for real on loopback (uvicorn in a thread), against RewardModel.score."""

import socket
import threading
import time

import httpx
import pytest

from rewardlab import RewardModel
from rewardlab.cli import main
from tests.conftest import PAIRS, serving


@pytest.fixture(scope="module")
def served(tiny_llama, pairs_file_module):
    import uvicorn

    from rewardlab.config import ServeConfig
    from rewardlab.serve import create_app

    out = pairs_file_module.parent / "rm"
    assert main(["train", "--model", tiny_llama, "--data", str(pairs_file_module), "--output", str(out),
                 "--max-steps", "2", "--lr", "1e-2"]) == 0
    rm = RewardModel.from_pretrained(str(out), device="cpu")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(rm, ServeConfig(model=str(out), batch_size=3)), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", rm
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def pairs_file_module(tmp_path_factory):
    import json

    path = tmp_path_factory.mktemp("serve") / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PAIRS * 4))
    return path


def test_health_and_score_rows_equal_the_python_api(served):
    url, rm = served
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    rows = [{"id": 1, "prompt": PAIRS[0]["prompt"], "completion": PAIRS[0]["chosen"]},
            {"id": 2, "prompt": PAIRS[1]["prompt"], "completions": [PAIRS[1]["chosen"], PAIRS[1]["rejected"]]},
            {"id": 3, **PAIRS[2]}]
    answer = httpx.post(f"{url}/score", json={"rows": rows}).json()
    assert [r["id"] for r in answer["rows"]] == [1, 2, 3] and answer["truncated"] == 0
    expected = rm.score([PAIRS[0]["prompt"], PAIRS[1]["prompt"], PAIRS[1]["prompt"], PAIRS[2]["prompt"],
                         PAIRS[2]["prompt"]],
                        [PAIRS[0]["chosen"], PAIRS[1]["chosen"], PAIRS[1]["rejected"], PAIRS[2]["chosen"],
                         PAIRS[2]["rejected"]])
    got = [answer["rows"][0]["reward"], *answer["rows"][1]["rewards"], answer["rows"][2]["chosen_reward"],
           answer["rows"][2]["rejected_reward"]]
    assert max(abs(a - b) for a, b in zip(got, expected)) < 1e-5


def test_openrlhf_get_reward(served):
    url, rm = served
    prompts = [p["prompt"] for p in PAIRS]
    queries = [p["prompt"] + p["chosen"] for p in PAIRS]
    rewards = httpx.post(f"{url}/get_reward", json={"query": queries, "prompts": prompts}).json()["rewards"]
    expected = rm.score(prompts, [p["chosen"] for p in PAIRS])
    assert max(abs(a - b) for a, b in zip(rewards, expected)) < 1e-5
    alone = httpx.post(f"{url}/get_reward", json={"query": queries}).json()["rewards"]
    assert max(abs(a - b) for a, b in zip(alone, expected)) < 1e-4  # same text, no prompt split


def test_bad_requests_are_400_with_one_line(served):
    url, _ = served
    r = httpx.post(f"{url}/score", json={"rows": [{"prompt": "p", "completion": "ok"}, {"prompt": "p", "completion": 5}]})
    assert r.status_code == 400 and r.json()["error"].startswith("request: row 2: 'completion' must be a string")
    r = httpx.post(f"{url}/score", json={"rows": [{"prompt": "p", "completion": ""}]})  # empty replies are real data
    assert r.status_code == 200 and isinstance(r.json()["rows"][0]["reward"], float)
    r = httpx.post(f"{url}/get_reward", json={"query": ["abc"], "prompts": ["xyz"]})
    assert r.status_code == 400 and r.json()["error"] == "request: query 1: query does not start with its prompt"
    r = httpx.post(f"{url}/score", json={"rows": []})
    assert r.status_code == 400 and "non-empty list" in r.json()["error"]
    assert httpx.post(f"{url}/get_reward", json={"query": "one string"}).status_code == 400


def test_serve_command_end_to_end(served, tmp_path):
    import subprocess
    import sys

    url, rm = served
    folder = tmp_path  # a fresh process serves the same model, saved
    rm.save_pretrained(str(folder / "rm"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "rewardlab", "serve", "--model", str(folder / "rm"),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health").json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.1)
        assert health["status"] == "ok" and health["max_length"] == rm.max_length
        rewards = httpx.post(f"http://127.0.0.1:{port}/get_reward",
                             json={"query": [PAIRS[0]["prompt"] + PAIRS[0]["chosen"]],
                                   "prompts": [PAIRS[0]["prompt"]]}).json()["rewards"]
        assert abs(rewards[0] - rm.score([PAIRS[0]["prompt"]], [PAIRS[0]["chosen"]])[0]) < 1e-5
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_process_reward_model_serves_step_rewards(tiny_llama, tmp_path):
    """Kind prm behind the same endpoints: /score rows with steps get step_rewards and the
    aggregate; /get_reward on a plain query splits it at the saved separator, as training did."""
    import json

    from rewardlab.config import ServeConfig
    from rewardlab.serve import create_app

    rows = [{"prompt": "Q: 2+3?", "steps": ["Add them.", f"It is {a}."], "labels": [True, a == 5]} for a in (5, 6)] * 2
    data = tmp_path / "prm.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "prm"
    assert main(["train", "--model", tiny_llama, "--kind", "prm", "--data", str(data), "--output", str(out),
                 "--max-steps", "2", "--lr", "1e-2"]) == 0
    rm = RewardModel.from_pretrained(str(out), device="cpu")
    with serving(create_app(rm, ServeConfig(model=str(out)))) as url:
        scored = httpx.post(f"{url}/score", json={"rows": rows[:2]}).json()["rows"]
        assert [len(r["step_rewards"]) for r in scored] == [2, 2]
        assert all(r["reward"] == min(r["step_rewards"]) and r["aggregate"] == "min" for r in scored)
        query = [r["prompt"] + "\n".join(r["steps"]) for r in rows[:2]]
        rewards = httpx.post(f"{url}/get_reward", json={"query": query, "prompts": ["Q: 2+3?"] * 2}).json()["rewards"]
        assert rewards == pytest.approx([r["reward"] for r in scored], abs=1e-6)


def test_reward_statistics_saved_at_training_normalise_served_rewards(tiny_llama, tmp_path):
    """`train --reward-stats` saves the mean and std of the final model's rewards over every
    training completion; `serve --normalize` answers (r - mean) / std with them."""
    import json
    import statistics

    from fastapi.testclient import TestClient

    from rewardlab.config import ServeConfig
    from rewardlab.serve import create_app

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PAIRS * 2))
    out = tmp_path / "rm"
    assert main(["train", "--model", tiny_llama, "--data", str(data), "--output", str(out), "--max-steps", "2",
                 "--lr", "1e-2", "--reward-stats"]) == 0
    rm = RewardModel.from_pretrained(str(out), device="cpu")
    rewards = [r for p in PAIRS * 2 for r in rm.score([p["prompt"]] * 2, [p["chosen"], p["rejected"]])]
    stats = rm.settings.reward_stats
    assert stats.n == 16
    assert stats.mean == pytest.approx(statistics.mean(rewards), abs=1e-5)
    assert stats.std == pytest.approx(statistics.stdev(rewards), abs=1e-5)
    with TestClient(create_app(rm, ServeConfig(model=str(out), normalize=True))) as client:
        query = PAIRS[0]["prompt"] + PAIRS[0]["chosen"]
        got = client.post("/get_reward", json={"query": [query]}).json()["rewards"][0]
    raw = rm.score([""], [query])[0]
    assert got == pytest.approx((raw - stats.mean) / stats.std, abs=1e-5)
    with pytest.raises(Exception, match="--reward-stats"):
        create_app(_without_stats(rm), ServeConfig(normalize=True))


def _without_stats(rm):
    return RewardModel(rm.model, rm.tokenizer, device="cpu", settings=rm.settings.replace(reward_stats=None))


def test_health_answers_while_a_batch_runs(served):
    """The model runs off the event loop: /health is answered while a (slowed) batch is still
    being scored, and that batch's answer is still exact."""
    import threading

    url, rm = served
    release, entered = threading.Event(), threading.Event()
    real = rm.score_details

    def slow(*args, **kwargs):
        entered.set()
        release.wait(30)  # the batch holds the model until the health check has been answered
        return real(*args, **kwargs)

    rm.score_details = slow
    answer = {}
    try:
        worker = threading.Thread(target=lambda: answer.update(httpx.post(
            f"{url}/get_reward", json={"query": [PAIRS[0]["prompt"] + PAIRS[0]["chosen"]]}, timeout=60).json()))
        worker.start()
        assert entered.wait(30)  # the request's batch is running in the model thread
        assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"
        assert worker.is_alive()  # health came back while the batch was still running
        release.set()
        worker.join(60)
    finally:
        rm.score_details = real
        release.set()
    assert answer["rewards"] == pytest.approx(rm.score([PAIRS[0]["prompt"]], [PAIRS[0]["chosen"]]), abs=1e-5)
