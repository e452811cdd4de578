"""One scorer, one set of score-time options: for every kind and every score-time option, ``rewardlab
score``, ``rewardlab eval`` (its scores cache holds what it read of every row), the server over
loopback HTTP and the Python API give the same rewards for the same model folder and option, and
an option a model does not take is refused, alike, everywhere."""

import json

import httpx
import pytest

import rewardlab
from rewardlab.cli import main
from rewardlab.config import ConfigError
from tests.conftest import serving

CASES = [
    ("preference", {}), ("heads", {"ensemble_aggregate": "min", "members": True}),
    ("ensemble", {}), ("ensemble", {"ensemble_aggregate": "mean_minus_std", "uncertainty_coef": 0.5}),
    ("orm", {}), ("orm", {"per_token": True}),
    ("prm", {}), ("prm", {"aggregate": "prod"}),
    ("value", {}),
    ("regression", {}), ("regression", {"weights": "0.25,0.75"}),
    ("genrm", {}), ("genrm", {"samples": 2, "sample_temperature": 0.5}),
    ("judge", {}), ("judge", {"judge_reward": "bradley_terry"}),
    ("implicit_prm", {}), ("implicit_prm", {"aggregate": "sum"}), ("implicit_prm", {"per_token": True}),
]
FIELDS = ("reward", "token_rewards", "members", "step_rewards", "attributes", "sample_rewards")


def flags(options: dict) -> list[str]:
    out = []
    for key, value in options.items():
        out += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return out


def per_text(row: dict, details: list[dict]) -> list[dict]:
    """The fields compared, per text of a row: from a scored row (score, /score) or from details."""
    return [{k: d[k] for k in FIELDS if k in d} for d in details]


def from_scored_row(row: dict) -> list[dict]:
    """A row written back by score or /score, as one dict per text."""
    if "chosen_reward" in row:
        return [{k: row[f"{side}_{k}"] for k in FIELDS if f"{side}_{k}" in row} | {"reward": row[f"{side}_reward"]}
                for side in ("chosen", "rejected")]
    return [{k: row[k] for k in FIELDS if k in row}]


def close(a, b) -> bool:
    """``b`` holds what ``a`` holds, within 1e-5 (an evaluated ensemble also reads its members)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and all(k in b and close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if a is None or b is None:
        return a is b
    return abs(a - b) < 1e-5


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}-{'-'.join(o) or 'saved'}" for n, o in CASES])
def test_score_eval_serve_and_the_api_give_the_same_rewards(kind_models, name, options, tmp_path, capsys):
    model, data = kind_models[name]
    rows = [json.loads(line) for line in open(data)]
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--model", model, "--data", data, "--output", str(out), *flags(options)]) == 0
    score = [from_scored_row(json.loads(x)) for x in out.read_text().splitlines()]

    cache = tmp_path / "cache.jsonl"
    capsys.readouterr()
    assert main(["eval", "--model", model, "--data", data, "--json", "--scores-cache", str(cache), *flags(options)]) == 0
    evaluated = [per_text(r, json.loads(x)["rewards"]) for r, x in zip(rows, cache.read_text().splitlines())]

    with serving(rewardlab.create_app(model, options=options)) as url:
        answer = httpx.post(f"{url}/score", json={"rows": rows}, timeout=120).json()
    served = [from_scored_row(r) for r in answer["rows"]]

    result = rewardlab.evaluate(model, data, options=options)
    api = [per_text(r, d) for r, d in zip(rows, result.details)]
    assert result.to_json() == capsys.readouterr().out.strip()
    assert result.headline[1] == result.metrics[result.headline[0]] and result.counts["rows"] == len(rows)
    assert close(score, evaluated), "score vs eval"
    assert close(score, served), "score vs serve"
    assert close(score, api), "score vs the API"
    if options.get("per_token"):
        assert all("token_rewards" in t for r in score for t in r)


@pytest.mark.parametrize("name,option,flag", [("preference", {"aggregate": "min"}, "--aggregate"),
                                              ("orm", {"samples": 2}, "--samples"),
                                              ("value", {"per_token": True}, "--per-token"),
                                              ("prm", {"members": True}, "--members")])
def test_an_option_the_model_does_not_take_is_refused_alike_everywhere(kind_models, name, option, flag, tmp_path,
                                                                      capsys):
    model, data = kind_models[name]
    for argv in (["score", "--model", model, "--data", data, "--output", str(tmp_path / "o.jsonl")],
                 ["eval", "--model", model, "--data", data]):
        capsys.readouterr()
        assert main(argv + flags(option)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"rewardlab: error: {flag}: "), err
    with pytest.raises(ConfigError, match=f"^{flag}: "):
        rewardlab.RewardModel.from_pretrained(model, options=option)
    with pytest.raises(ConfigError, match=f"^{flag}: "):
        rewardlab.create_app(model, options=option)


def test_a_loaded_model_is_never_changed_by_options(kind_models):
    model, data = kind_models["prm"]
    rm = rewardlab.RewardModel.from_pretrained(model)
    before = rm.settings.to_dict()
    prod = rm.with_options(aggregate="prod")
    rows = [json.loads(line) for line in open(data)][:2]
    from rewardlab.inference.rows import score_rows

    saved, _ = score_rows(rm, rows, "rows")
    changed, _ = score_rows(prod, rows, "rows")
    assert all(r["aggregate"] == "min" for r in saved) and all(r["aggregate"] == "prod" for r in changed)
    assert rm.settings.to_dict() == before and rm.options.given() == {} and prod.settings is rm.settings
