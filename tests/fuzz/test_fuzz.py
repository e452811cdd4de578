"""The fuzz suite: readers and row forms under a memory and time limit (fuzz_readers.py, in a
subprocess), and the server's request parsing over real HTTP requests in-process.

Bounds stated here: the reader fuzz runs in at most 240 s with at most 6 GiB of address space
(torch alone maps about 2 GiB); the server fuzz sends at most 150 bodies."""

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzz.fuzz_readers import anything, rows, text

ROOT = Path(__file__).resolve().parents[2]
MEMORY = 6 * 2**30
SECONDS = 240


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def test_readers_and_row_forms_under_a_memory_and_time_limit():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                           str(Path(__file__).with_name("fuzz_readers.py"))], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=SECONDS, preexec_fn=_limit)
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout, tail


@pytest.fixture(scope="module")
def client(tiny_llama, tmp_path_factory):
    from fastapi.testclient import TestClient

    from rewardlab.config import ServeConfig
    from rewardlab.inference import RewardModel
    from rewardlab.serve import create_app
    from tests.conftest import train_tiny_rm

    model = train_tiny_rm(tiny_llama, tmp_path_factory.mktemp("fuzzserve"), steps=1)
    rm = RewardModel.from_pretrained(model, device="cpu")
    cfg = ServeConfig(model=model, max_items=16, max_item_tokens=200, max_body_bytes=20000)
    with TestClient(create_app(rm, cfg)) as c:
        yield c


bodies = st.one_of(anything, st.fixed_dictionaries({"query": st.one_of(st.lists(text, max_size=5), anything)},
                                                   optional={"prompts": st.one_of(st.lists(text, max_size=5), anything)}),
                   st.fixed_dictionaries({"rows": st.one_of(rows, anything)}))


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(body=bodies, endpoint=st.sampled_from(["/get_reward", "/score"]))
@example(body={"query": ["\ud800 lone surrogate"]}, endpoint="/get_reward")  # found: a 500 from the tokenizer
@example(body={"rows": [{"prompt": "q", "completion": "\udfff"}]}, endpoint="/score")
def test_any_request_gets_an_answer_for_every_item_or_one_line(client, body, endpoint):
    """Whatever JSON arrives, the answer is 200 with a result per query or row, or a 4xx with
    one line naming what is wrong; never a 500, and the next good request still works."""
    raw = json.dumps(body, allow_nan=True)
    answer = client.post(endpoint, content=raw, headers={"content-type": "application/json"})
    assert answer.status_code in (200, 400, 413, 422), (answer.status_code, answer.text[:300])
    out = answer.json()
    if answer.status_code != 200:
        assert set(out) == {"error"} and "\n" not in out["error"] and out["error"].startswith("request"), out
        return
    if endpoint == "/get_reward":
        assert len(out["rewards"]) == len(body["query"])
        assert all(r is None or isinstance(r, float) for r in out["rewards"])
    else:
        assert len(out["rows"]) == len(body["rows"])
        assert all(("error" in r) or any(k.endswith(("reward", "rewards")) for k in r) for r in out["rows"])
