"""`rewardlab serve` as users run it: a uvicorn subprocess on loopback, real HTTP, a bearer
token, limits, concurrent requests batched together, SIGTERM, and the client / TRL adapter."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from rewardlab import RewardClient, RewardModel
from rewardlab.inference.rows import score_rows
from tests.conftest import PAIRS, train_tiny_rm

KEY = "s3cret-token"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(model: str, *flags: str):
    port = _port()
    env = {**os.environ, "RM_KEY": KEY, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rewardlab", "serve", "--model", model, "--port", str(port),
                             "--api-key-env", "RM_KEY", *flags], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"server did not start: {proc.stdout.read()}")


@pytest.fixture(scope="module")
def model(tiny_llama, tmp_path_factory):
    return train_tiny_rm(tiny_llama, tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def server(model):
    proc, url = _start(model, "--max-items", "64", "--max-item-tokens", "300", "--max-body-bytes", "60000")
    yield url, RewardModel.from_pretrained(model, device="cpu")
    proc.terminate()
    proc.wait(timeout=30)


AUTH = {"Authorization": f"Bearer {KEY}"}
# GRPO-shaped: several replies to each prompt, one whole text per request; one text is a
# prefix of another, and one shares nothing with the rest.
PROMPTS = [p["prompt"] for p in PAIRS]
REPLIES = [" Yes.", " Yes. And more words follow here.", " No, I can't.", " Paris is the capital."]
QUERIES = [p + r for p in PROMPTS for r in REPLIES] + ["Unrelated text with no prompt at all."]


def test_every_row_form_equals_the_python_api(server):
    url, rm = server
    rows = [{"prompt": PAIRS[0]["prompt"], "completion": PAIRS[0]["chosen"]},
            {"prompt": PAIRS[1]["prompt"], "completions": [PAIRS[1]["chosen"], PAIRS[1]["rejected"], " Maybe."]},
            dict(PAIRS[2]),
            {"chosen": PAIRS[3]["prompt"] + PAIRS[3]["chosen"], "rejected": PAIRS[3]["prompt"] + PAIRS[3]["rejected"]}]
    got = httpx.post(f"{url}/score", json={"rows": rows}, headers=AUTH).json()["rows"]
    want, _ = score_rows(rm, rows, "local")
    for g, w in zip(got, want):
        for key in ("reward", "rewards", "chosen_reward", "rejected_reward"):
            if key in w:
                assert g[key] == pytest.approx(w[key], abs=1e-5)
    answer = httpx.post(f"{url}/get_reward", json={"query": QUERIES}, headers=AUTH).json()
    alone = [rm.score([""], [q])[0] for q in QUERIES]  # each text alone, no batching, no sharing
    assert answer["rewards"] == pytest.approx(alone, abs=1e-5) and answer["scores"] == answer["rewards"]


def test_concurrent_one_query_requests_are_batched_exactly_and_share_prefixes(server):
    url, rm = server
    alone = [rm.score([""], [q])[0] for q in QUERIES]
    results = [None] * len(QUERIES)

    def one(i):
        results[i] = httpx.post(f"{url}/get_reward", json={"query": [QUERIES[i]]}, headers=AUTH, timeout=60).json()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(QUERIES))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r["rewards"][0] for r in results] == pytest.approx(alone, abs=1e-5)
    metrics = httpx.get(f"{url}/metrics", headers=AUTH).text
    values = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
              if line and not line.startswith("#")}
    assert values["rewardlab_tokens_processed_total"] < values["rewardlab_tokens_sent_total"]  # prompts shared
    # Prompts scored by earlier requests came from the prefix cache, and the rewards above are still exact.
    assert values["rewardlab_prefix_cache_hits_total"] > 0 and values["rewardlab_prefix_cache_bytes"] > 0
    assert values['rewardlab_requests_total{endpoint="/get_reward"}'] >= len(QUERIES)


def test_bearer_token(server):
    url, _ = server
    body = {"query": ["hello"]}
    assert httpx.get(f"{url}/health").status_code == 200  # no token needed
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        r = httpx.post(f"{url}/get_reward", json=body, headers=headers)
        assert r.status_code == 401 and "bearer token" in r.json()["error"]
    assert httpx.get(f"{url}/metrics").status_code == 401
    assert httpx.post(f"{url}/get_reward", json=body, headers=AUTH).status_code == 200


def test_limits_and_malformed_requests_get_one_line(server):
    url, _ = server
    cases = [(httpx.post(f"{url}/get_reward", json={"query": ["x"] * 65}, headers=AUTH), 413, "--max-items 64"),
             (httpx.post(f"{url}/get_reward", json={"query": ["ok", "word " * 400]}, headers=AUTH), 422,
              "query 2: "),
             (httpx.post(f"{url}/get_reward", content=b"x" * 70000, headers=AUTH), 413, "--max-body-bytes"),
             (httpx.post(f"{url}/get_reward", content=b'{"query": [', headers=AUTH), 400, "not valid JSON"),
             (httpx.post(f"{url}/get_reward", json=["a"], headers=AUTH), 400, "JSON object"),
             (httpx.post(f"{url}/get_reward", json={"query": "a"}, headers=AUTH), 400, "list of strings"),
             (httpx.post(f"{url}/score", json={"rows": [{"prompt": "p"}]}, headers=AUTH), 400, "row 1")]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert words in error and "\n" not in error
    assert httpx.post(f"{url}/get_reward", json={"query": ["still fine"]}, headers=AUTH).status_code == 200


def test_a_client_that_disconnects_mid_request_harms_no_one(server):
    url, _ = server
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Length: 500\r\n\r\n{\"query\": [\"hal")
    assert httpx.post(f"{url}/get_reward", json={"query": ["after"]}, headers=AUTH).status_code == 200


def test_the_client_and_the_trl_reward_function(server):
    url, rm = server
    client = RewardClient([url, url], api_key=KEY, timeout=30, retries=1)
    assert client.get_reward(QUERIES[:3]) == pytest.approx([rm.score([""], [q])[0] for q in QUERIES[:3]], abs=1e-5)
    # GRPOTrainer calls reward functions with keyword arguments: prompts, completions, completion_ids
    # and the dataset's other columns; conversational data comes as message lists.
    plain = client(prompts=PROMPTS[:2], completions=REPLIES[:2], completion_ids=[[1], [2]], answer=["a", "b"])
    assert plain == pytest.approx(rm.score(PROMPTS[:2], REPLIES[:2]), abs=1e-5)
    chat_prompts = [[{"role": "user", "content": "What is 2+2?"}]] * 2
    chat_replies = [[{"role": "assistant", "content": "4"}], [{"role": "assistant", "content": "5"}]]
    rows = [{"prompt": p, "completion": c} for p, c in zip(chat_prompts, chat_replies)]
    want, _ = score_rows(rm, rows, "local")
    assert client(prompts=chat_prompts, completions=chat_replies) == pytest.approx([w["reward"] for w in want], abs=1e-5)
    assert all(isinstance(x, float) for x in plain) and client.__name__
    with pytest.raises(Exception, match="HTTP 401"):
        RewardClient(url, api_key="wrong", retries=0)(prompts=["a"], completions=["b"])


def test_sigterm_answers_or_cleanly_refuses_every_request_in_flight(model):
    proc, url = _start(model)
    outcomes = []

    def one(i):
        try:
            r = httpx.post(f"{url}/get_reward", json={"query": [QUERIES[i % len(QUERIES)]] * 8}, headers=AUTH,
                           timeout=60)
            outcomes.append(("answered", r.status_code))
        except httpx.ConnectError:
            outcomes.append(("refused", None))  # never accepted: the client knows to retry
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
            # Accepted as shutdown began and closed before its request was parsed (uvicorn closes
            # only connections without a request in progress): nothing was scored, a retry is
            # safe. A clean close reads as RemoteProtocolError; if the request's bytes had
            # already arrived unread, the kernel resets the connection instead (ReadError or
            # WriteError). A crash would show in the exit status, checked below.
            outcomes.append(("closed unread", repr(e)))
        except httpx.HTTPError as e:
            outcomes.append(("lost", repr(e)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal: the exit status says SIGTERM
    assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    assert len(outcomes) == 24  # none lost: no hang, no reset mid-answer
    assert all(code == 200 for what, code in outcomes if what == "answered")
    assert all(what != "lost" for what, _ in outcomes), [o for o in outcomes if o[0] != "answered"]
    closed = [why for what, why in outcomes if what == "closed unread"]
    assert all("without sending a response" in why or "reset" in why.lower() or "broken pipe" in why.lower()
               for why in closed), closed
