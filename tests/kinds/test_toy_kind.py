"""The acceptance of the kind seam: a kind defined in this file (its reward is the mean of a
token head over the completion's tokens, regressed on a ``reward`` column) trains, saves,
reloads, scores, evaluates (with its report) and is served over HTTP on loopback, with no edit
outside this file but the one ``kinds.register`` line below.

This module is the kind: the five members every kind writes (NAME, parser, loss, readout,
metrics) and three it changes from the defaults (read_mode, format_eval, report); the rest of
rewardlab/kinds/protocol.py comes from the defaults."""

import json
import socket
import sys
import threading
import time

import httpx
import pytest
import torch

from rewardlab import kinds
from rewardlab.data.pointwise import parse_value
from rewardlab.kinds import points

NAME = "toy_mean"


def parser(obj):
    return parse_value


def loss(outputs, items, obj):
    means = torch.stack([o[:, 0].mean() for o in points.split(outputs, items)])
    err = (means - torch.tensor([p.target for p, _ in items], dtype=outputs.dtype)) ** 2
    return err.sum(), {}


def read_mode(per_token):
    return "tokens"


def readout(outputs, settings, call):
    values = outputs[:, 0].float()
    return {"reward": float(values.nanmean()), "token_values": values.tolist()}


def metrics(examples, details, obj):
    errors = [(d[0]["reward"] - e.target) ** 2 for d, e in zip(details, examples)]
    return {"n": len(examples), "mse": sum(errors) / len(errors)}


def format_eval(m):
    return f"toy_mean: mse {m['mse']:.4f} over {m['n']} rows"


def report(path, metrics, examples, details, model, data, obj):
    return points.report_page(path, NAME, metrics, ["<h2>Toy section</h2>"], model, data)


kinds.register(sys.modules[__name__])  # the one line a new kind needs

ROWS = [{"prompt": "\n\nHuman: Rate this.\n\nAssistant:", "completion": c, "reward": r}
        for c, r in ((" Great answer, thank you.", 1.0), (" Bad.", -1.0), (" It is fine I guess.", 0.0),
                     (" Wonderful and kind.", 1.0))]


@pytest.fixture(scope="module")
def trained(tiny_llama, tmp_path_factory):
    from rewardlab.cli import main

    folder = tmp_path_factory.mktemp("toy")
    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS * 4))
    assert main(["train", "--model", tiny_llama, "--kind", NAME, "--data", str(data), "--output",
                 str(folder / "rm"), "--max-steps", "3", "--lr", "1e-2", "--batch-size", "4"]) == 0
    return folder


def test_a_kind_defined_in_a_test_file_lives_its_whole_life(trained, capsys):
    from rewardlab.cli import main
    from rewardlab.inference import RewardModel

    model, data = str(trained / "rm"), str(trained / "rows.jsonl")
    rm = RewardModel.from_pretrained(model, device="cpu")
    assert rm.kind == NAME and rm.rules.module is sys.modules[__name__]
    details, _ = rm.score_details([points.texts(parse_value(r, rm.tokenizer, "row", 0))[0] for r in ROWS])
    assert all(d["reward"] == pytest.approx(sum(d["token_values"]) / len(d["token_values"]), abs=1e-6)
               for d in details)

    assert main(["score", "--model", model, "--data", data, "--output", str(trained / "scored.jsonl")]) == 0
    scored = [json.loads(line) for line in open(trained / "scored.jsonl")]
    assert [s["reward"] for s in scored[:4]] == pytest.approx([d["reward"] for d in details], abs=1e-5)
    assert "token_values" in scored[0] and scored[0]["completion"] == ROWS[0]["completion"]

    capsys.readouterr()
    assert main(["eval", "--model", model, "--data", data, "--json", "--report", str(trained / "r.html")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == NAME and out["n"] == 16
    assert out["mse"] == pytest.approx(sum((d["reward"] - r["reward"]) ** 2 for d, r in zip(details, ROWS)) / 4,
                                       abs=1e-5)
    assert "Toy section" in (trained / "r.html").read_text()

    from rewardlab.config import ServeConfig
    from rewardlab.serve import create_app
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(rm, ServeConfig(model=model)), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/health").json()["kind"] == NAME:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        body = {"query": [r["prompt"] + r["completion"] for r in ROWS], "prompts": [r["prompt"] for r in ROWS]}
        rewards = httpx.post(f"{url}/get_reward", json=body, timeout=60).json()["rewards"]
        assert rewards == pytest.approx([d["reward"] for d in details], abs=1e-5)
        rows = httpx.post(f"{url}/score", json={"rows": ROWS}, timeout=60).json()["rows"]
        assert [r["reward"] for r in rows] == pytest.approx(rewards, abs=1e-5) and "token_values" in rows[0]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
