"""The OpenAI-compatible backend against a real HTTP server on loopback (no mocks): the
chat-completions protocol, 429 with Retry-After, 5xx, timeouts, bad keys, bounded concurrency."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rewardlab.cli import main
from rewardlab.judge.backends import OpenAIJudge
from rewardlab.judge.prompts import JudgeError
from tests.conftest import write_jsonl


class Server:
    """A chat-completions server. A reply prefers the answer containing "good"; a question
    containing RATE / BOOM / SLOW fails its first request with 429 / 500 / a stall, and
    ALWAYS500 always fails."""

    def __init__(self, key="sekrit"):
        self.requests, self.seen, self.in_flight, self.max_in_flight = [], {}, 0, 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, code, body, headers=()):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    outer.requests.append(body)
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    self.answer(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on this request (timeout)
                finally:
                    with lock:
                        outer.in_flight -= 1

            def answer(self, body):
                if self.path != "/v1/chat/completions":
                    return self.send(404, {"error": {"message": f"no route {self.path}"}})
                if self.headers.get("Authorization") != f"Bearer {key}":
                    return self.send(401, {"error": {"message": "Incorrect API key provided"}})
                user = body["messages"][-1]["content"]
                with lock:
                    first = user not in outer.seen
                    outer.seen[user] = outer.seen.get(user, 0) + 1
                time.sleep(0.05)  # long enough for requests to overlap
                if "TOOLONG" in user:
                    return self.send(400, {"error": {"message": "This model's maximum context length is 4096 tokens"}})
                if "ALWAYS500" in user:
                    return self.send(500, {"error": {"message": "model crashed"}})
                if first and "RATE" in user:
                    return self.send(429, {"error": {"message": "slow down"}}, [("Retry-After", "0")])
                if first and "BOOM" in user:
                    return self.send(503, {"error": {"message": "overloaded"}})
                if first and "SLOW" in user:
                    with lock:  # the client gives up on this one after its timeout
                        outer.in_flight -= 1
                    time.sleep(1.5)
                    with lock:
                        outer.in_flight += 1
                a = user.split("[The Start of Assistant A's Answer]\n")[-1].split("\n[The End")[0]
                verdict = "[[A]]" if "good" in a else "[[B]]"
                if "[[rating]]" in user:
                    verdict = "Rating: [[8]]" if "good" in user else "Rating: [[3]]"
                self.send(200, {"id": "x", "object": "chat.completion", "model": body["model"],
                                "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": f"Fine. {verdict}"}}]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def rows(*questions):
    return [{"prompt": q, "chosen": f"a good answer to {q}", "rejected": f"a bad answer to {q}"} for q in questions]


def test_judge_over_http_with_retries(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "sekrit")
    data = write_jsonl(tmp_path / "d.jsonl", rows("q1", "q2 RATE", "q3 BOOM", "q4 SLOW", "q5 ALWAYS500", "q6", "q7"))
    out = tmp_path / "o.jsonl"
    args = ["judge", "--data", data, "--output", str(out), "--backend", "openai", "--base-url", server.url,
            "--model", "judge-1", "--api-key-env", "JUDGE_KEY", "--concurrency", "3", "--timeout", "0.5",
            "--max-retries", "2", "--backoff", "0.01", "--eval", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 7 and report["errors"] == 1 and report["written"] == 6
    assert report["agreement"] == pytest.approx(6 / 7) and report["agreement_without_ties"] == 1.0
    assert report["position_consistency"] == 1.0
    # 429, 503 and a timeout once each in both orders, plus 2 retries for each order of ALWAYS500
    assert report["transport_retries"] == 3 * 2 + 2 * 2
    assert server.max_in_flight <= 3
    sent = server.requests[0]
    assert sent["model"] == "judge-1" and sent["temperature"] == 0.0
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    written = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["chosen"].startswith("a good") and r["human_agrees"] for r in written)
    (failed,) = [json.loads(x) for x in (tmp_path / "o.undecided.jsonl").read_text().splitlines()]
    assert failed["result"] == "error" and "HTTP 500" in failed["judgments"][0]["error"]

    # Rerun: only the failed judgments are asked again (errors are not cached).
    before = len(server.requests)
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cached"] == 12 and report["fresh_calls"] == 2 and len(server.requests) - before == 2 * 3


def test_bad_key_or_url_stops_at_once_with_the_servers_message(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "wrong")
    data = write_jsonl(tmp_path / "d.jsonl", rows("q1", "q2"))
    args = ["judge", "--data", data, "--output", str(tmp_path / "o.jsonl"), "--backend", "openai",
            "--base-url", server.url, "--model", "m", "--api-key-env", "JUDGE_KEY", "--cache", "none"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("rewardlab: error: ") and "HTTP 401" in err and "Incorrect API key" in err
    monkeypatch.setenv("JUDGE_KEY", "sekrit")
    assert main(args[:8] + [server.url + "/nope"] + args[9:]) == 2
    assert "HTTP 404" in capsys.readouterr().err


def test_unreachable_server_is_an_error_per_judgment_not_a_hang():
    judge = OpenAIJudge("http://127.0.0.1:9/v1", "m", api_key_env="", max_retries=1, backoff=0.01, timeout=1)
    (reply,) = judge.generate([[{"role": "user", "content": "hi"}]])
    assert reply.text is None and "connection failed" in reply.error and judge.retries == 1
    with pytest.raises(JudgeError, match="needs --base-url"):
        OpenAIJudge("", "m")


def test_python_api_over_http(server, monkeypatch):
    from rewardlab.judge import Judge

    monkeypatch.setenv("OPENAI_API_KEY", "sekrit")
    judge = Judge("judge-1", base_url=server.url, backoff=0.01)
    result = judge.compare("Which?", "a bad answer", "a good answer")
    assert result["winner"] == "b" and result["consistent"] and len(result["judgments"]) == 2
    assert [r["winner"] for r in judge.compare_many(["q1", "q2"], ["good", "bad"], ["bad", "good"])] == ["a", "b"]
    assert judge.grade("Which?", "a good answer") == 8.0 and judge.grade("Which?", "a poor one") == 3.0


def test_single_grading_cli_over_http(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sekrit")
    data = write_jsonl(tmp_path / "d.jsonl", rows("q1", "q2"))
    out = tmp_path / "o.jsonl"
    assert main(["judge", "--data", data, "--output", str(out), "--mode", "single", "--backend", "openai",
                 "--base-url", server.url, "--model", "m", "--backoff", "0.01", "--eval", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agreement"] == 1.0 and report["position_consistency"] is None and report["judgments"] == 4
    written = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["ratings"] for r in written] == [[8.0, 3.0], [8.0, 3.0]]
    assert all(r["confidence"] == pytest.approx(5 / 9) for r in written)


def test_prompt_too_long_for_the_server_fails_only_its_row(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sekrit")
    data = write_jsonl(tmp_path / "d.jsonl", rows("q1", "q2 TOOLONG", "q3"))
    assert main(["judge", "--data", data, "--output", str(tmp_path / "o.jsonl"), "--backend", "openai",
                 "--base-url", server.url, "--model", "m", "--eval", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["written"] == 2 and report["errors"] == 1 and report["transport_retries"] == 0
    (failed,) = [json.loads(x) for x in (tmp_path / "o.undecided.jsonl").read_text().splitlines()]
    assert "maximum context length" in failed["judgments"][0]["error"]
