"""Load and faults on loopback: while clients send slowly, disconnect mid-body and flood the
server with oversized requests, well-behaved clients keep getting exact rewards, and none of
their requests is lost. Bounded: 4 good clients x 12 requests, 3 slow senders, 12 broken
connections, 24 oversized requests, all within about 20 seconds."""

import json
import socket
import threading
import time

import httpx
import pytest

from rewardlab import RewardModel
from tests.conftest import PAIRS, train_tiny_rm
from tests.serve.test_server import AUTH, _start

QUERIES = [p["prompt"] + c for p in PAIRS for c in (p["chosen"], p["rejected"])]


@pytest.fixture(scope="module")
def served(tiny_llama, tmp_path_factory):
    model = train_tiny_rm(tiny_llama, tmp_path_factory.mktemp("faults"))
    proc, url = _start(model, "--max-items", "32", "--max-body-bytes", "20000")
    yield url, RewardModel.from_pretrained(model, device="cpu"), proc
    proc.terminate()
    proc.wait(timeout=30)


def _raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_good_clients_get_exact_answers_while_others_misbehave(served):
    url, rm, proc = served
    expected = rm.score([""] * len(QUERIES), QUERIES)
    good, wrong, failed, faults = [], [], [], {"slow": 0, "cut": 0, "oversized": 0}
    lock = threading.Lock()

    def well_behaved(k: int) -> None:
        with httpx.Client(timeout=60) as client:
            for i in range(12):
                q = (k + i) % len(QUERIES)
                try:
                    r = client.post(f"{url}/get_reward", json={"query": [QUERIES[q]]}, headers=AUTH)
                    value = r.json()["rewards"][0]
                except Exception as e:  # noqa: BLE001 - any failure of a good request is what we count
                    with lock:
                        failed.append(repr(e))
                    continue
                with lock:
                    (good if abs(value - expected[q]) <= 1e-5 else wrong).append(q)

    def slow_sender() -> None:  # a body dribbled out a few bytes at a time over about 3 s
        body = json.dumps({"query": [QUERIES[0]]}).encode()
        s = _raw(url)
        s.sendall(b"POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: "
                  + AUTH["Authorization"].encode() + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        for start in range(0, len(body), 8):
            s.sendall(body[start:start + 8])
            time.sleep(3 / (len(body) / 8))
        answer = s.recv(65536)
        s.close()
        with lock:
            faults["slow"] += b" 200 " in answer.split(b"\r\n")[0]

    def cut_mid_body() -> None:
        for _ in range(4):
            s = _raw(url)
            s.sendall(b"POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                      b"5000\r\n\r\n{\"query\": [\"half")
            s.close()
            with lock:
                faults["cut"] += 1

    def flood() -> None:
        with httpx.Client(timeout=60) as client:
            for i in range(12):
                body = {"query": ["x" * 30000]} if i % 2 else {"query": ["short"] * 33}
                r = client.post(f"{url}/get_reward", json=body, headers=AUTH)
                with lock:
                    faults["oversized"] += r.status_code == 413

    threads = [threading.Thread(target=well_behaved, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=slow_sender) for _ in range(3)]
    threads += [threading.Thread(target=cut_mid_body) for _ in range(3)]
    threads += [threading.Thread(target=flood) for _ in range(2)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    took = time.perf_counter() - started
    assert not any(t.is_alive() for t in threads)
    assert not failed and not wrong, (failed[:3], wrong[:3])
    assert len(good) == 4 * 12  # every well-behaved request answered, exactly
    assert faults == {"slow": 3, "cut": 12, "oversized": 24}, faults
    assert proc.poll() is None and httpx.get(f"{url}/health").json()["status"] == "ok"
    print(f"{len(good)} good requests answered exactly in {took:.1f} s beside {faults}")
