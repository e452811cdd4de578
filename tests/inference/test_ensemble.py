"""Ensemble folders (`rewardlab ensemble`), weight averaging (`rewardlab merge`), and an
ensemble served over loopback HTTP."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from rewardlab import RewardClient, RewardModel
from rewardlab.cli import main
from rewardlab.data.text import plain_text
from rewardlab.inference.ensemble import Ensemble
from rewardlab.models.ensemble import aggregate, combine
from tests.conftest import PAIRS, write_jsonl

PROMPTS = [p["prompt"] for p in PAIRS]
REPLIES = [" Yes.", " No, I can't.", " Paris is the capital.", " 4."]


def _train(base, data, out, seed, *flags):
    assert main(["train", "--model", base, "--data", data, "--output", str(out), "--max-steps", "3", "--lr", "1e-2",
                 "--seed", str(seed), "--batch-size", "4", *flags]) == 0
    return str(out)


@pytest.fixture(scope="module")
def members(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    data = write_jsonl(root / "pairs.jsonl", PAIRS * 4)
    return [_train(tiny_bert, data, root / f"m{s}", s, "--reward-stats") for s in (1, 2, 3)]


@pytest.fixture(scope="module")
def ensemble(members, tmp_path_factory):
    out = tmp_path_factory.mktemp("ens") / "ens"
    assert main(["ensemble", *[a for m in members for a in ("--model", m)], "--output", str(out),
                 "--aggregate", "mean_minus_std", "--uncertainty-coef", "0.5"]) == 0
    return str(out)


def test_mean_minus_std_on_hand_worked_numbers():
    values = [1.0, 2.0, 3.0, 6.0]  # mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5
    assert aggregate(values, "mean") == 3.0 and aggregate(values, "min") == 1.0
    assert abs(aggregate(values, "mean_minus_std", 0.5) - (3.0 - 0.5 * math.sqrt(3.5))) < 1e-12
    d = combine(values, "mean_minus_std", 2.0, members=True)
    assert d["reward_mean"] == 3.0 and abs(d["reward_std"] - math.sqrt(3.5)) < 1e-12 and d["members"] == values
    assert combine([1.0, None], "mean", 1.0)["reward"] is None  # a member that read nothing


def test_the_folder_round_trips_and_standardises_each_member_with_its_own_statistics(members, ensemble):
    spec = json.loads(open(f"{ensemble}/ensemble.json").read())
    assert spec["aggregate"] == "mean_minus_std" and spec["uncertainty_coef"] == 0.5 and len(spec["members"]) == 3
    assert all(not m["path"].startswith("/") for m in spec["members"])  # relative: the tree can move
    ens = RewardModel.from_pretrained(ensemble, device="cpu")
    assert isinstance(ens, Ensemble) and ens.ensemble_size == 3
    singles = [RewardModel.from_pretrained(m, device="cpu") for m in members]
    prompts, replies = PROMPTS * 4, [r for r in REPLIES for _ in PROMPTS]
    texts = [plain_text(p, c, ens.tokenizer) for p, c in zip(prompts, replies)]
    ens = ens.with_options(members=True)
    details, _ = ens.score_details(texts)
    raw = [s.score(prompts, replies) for s in singles]
    for k, d in enumerate(details):
        z = [(raw[m][k] - s.settings.reward_stats.mean) / s.settings.reward_stats.std for m, s in enumerate(singles)]
        assert max(abs(a - b) for a, b in zip(z, d["members"])) < 1e-5
        mean, std = sum(z) / 3, math.sqrt(sum((x - sum(z) / 3) ** 2 for x in z) / 3)
        assert abs(d["reward_mean"] - mean) < 1e-5 and abs(d["reward_std"] - std) < 1e-5
        assert abs(d["reward"] - (mean - 0.5 * std)) < 1e-5
    # another member's statistics change only that member's standardised reward
    spec["members"][1]["reward_mean"] += 1.0
    open(f"{ensemble}/ensemble.json", "w").write(json.dumps(spec))
    try:
        moved = RewardModel.from_pretrained(ensemble, device="cpu", options={"members": True})
        again, _ = moved.score_details(texts[:2])
        for d, e in zip(details, again):
            assert abs(e["members"][1] - (d["members"][1] - 1.0 / singles[1].settings.reward_stats.std)) < 1e-5
            assert abs(e["members"][0] - d["members"][0]) < 1e-6
    finally:
        spec["members"][1]["reward_mean"] -= 1.0
        open(f"{ensemble}/ensemble.json", "w").write(json.dumps(spec))


def test_members_without_statistics_need_calibration_data(tiny_bert, members, tmp_path, capsys):
    data = write_jsonl(tmp_path / "pairs.jsonl", PAIRS * 4)
    bare = _train(tiny_bert, data, tmp_path / "bare", 7)
    capsys.readouterr()
    assert main(["ensemble", "--model", members[0], "--model", bare, "--output", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bare: no saved reward statistics" in err[0] and "--calibration-data" in err[0]
    assert main(["ensemble", "--model", members[0], "--model", bare, "--output", str(tmp_path / "e"),
                 "--calibration-data", data]) == 0
    spec = json.loads((tmp_path / "e" / "ensemble.json").read_text())
    assert [m["from"] for m in spec["members"]] == ["calibration", "calibration"] and spec["members"][0]["n"] == 32


def test_score_writes_the_spread_and_members_and_refuses_options_on_a_single_model(ensemble, members, tmp_path,
                                                                                   capsys):
    rows = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": p, "completion": c} for p, c in zip(PROMPTS, REPLIES)])
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--model", ensemble, "--data", rows, "--output", str(out), "--members",
                 "--ensemble-aggregate", "min"]) == 0
    scored = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["reward"] == pytest.approx(min(r["members"])) and len(r["members"]) == 3 and r["reward_std"] > 0
               for r in scored)
    capsys.readouterr()
    assert main(["score", "--model", members[0], "--data", rows, "--output", str(out), "--members"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--members: " in err[0] and "single reward model" in err[0]


def test_eval_reports_members_aggregates_and_the_spread(ensemble, tmp_path, capsys):
    data = write_jsonl(tmp_path / "pairs.jsonl", PAIRS * 4)
    assert main(["eval", "--model", ensemble, "--data", data, "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["kind"] == "ensemble" and m["members_n"] == 3 and len(m["members"]["each"]) == 3
    assert set(m["aggregates"]) == {"mean", "min", "mean_minus_std"} and m["uncertainty"]["pairs"] == 16
    assert 0 <= m["accuracy"] <= 1 and m["members"]["best_accuracy"] >= m["members"]["mean_accuracy"]
    report = tmp_path / "report.html"
    assert main(["eval", "--model", ensemble, "--data", data, "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "uncertainty  AUROC of the spread for a wrong order" in out and "aggregate mean_minus_std" in out
    page = report.read_text()
    assert "Ensemble and members" in page and "Does the spread predict mistakes?" in page and "base64" in page


def test_merge_of_a_model_with_itself_is_that_model_and_two_average(members, tiny_llama, tmp_path, capsys):
    assert main(["merge", "--model", members[0], "--model", members[0], "--output", str(tmp_path / "self")]) == 0
    a, same = load_file(f"{members[0]}/model.safetensors"), load_file(str(tmp_path / "self" / "model.safetensors"))
    assert a.keys() == same.keys() and all(torch.equal(a[k], same[k]) for k in a)
    assert main(["merge", "--model", members[0], "--model", members[1], "--weights", "1,3",
                 "--output", str(tmp_path / "avg")]) == 0
    b, avg = load_file(f"{members[1]}/model.safetensors"), load_file(str(tmp_path / "avg" / "model.safetensors"))
    assert all(torch.allclose(avg[k].double(), 0.25 * a[k].double() + 0.75 * b[k].double(), atol=1e-6)
               for k in a if a[k].is_floating_point())
    merged = RewardModel.from_pretrained(str(tmp_path / "avg"), device="cpu")
    assert merged.settings.reward_stats is None and merged.settings.merged["merge_weights"] == [0.25, 0.75]
    capsys.readouterr()
    assert main(["merge", "--model", members[0], "--model", tiny_llama, "--output", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rewardlab: error: ") and tiny_llama in err[0]


def test_serving_an_ensemble_equals_rewardlab_score_with_the_spread(ensemble, tmp_path):
    from tests.serve.test_server import KEY, _start

    rows = [{"prompt": p, "completion": c} for p in PROMPTS for c in REPLIES]
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--model", ensemble, "--data", write_jsonl(tmp_path / "rows.jsonl", rows),
                 "--output", str(out)]) == 0
    offline = [json.loads(x) for x in out.read_text().splitlines()]
    proc, url = _start(ensemble)
    try:
        client = RewardClient(url, api_key=KEY)
        answer = client.get_reward_details([r["prompt"] + r["completion"] for r in rows],
                                           [r["prompt"] for r in rows])
        served = client.score(rows)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for o, s, r, std in zip(offline, served, answer["rewards"], answer["extra_logs"]["reward_std"]):
        assert abs(o["reward"] - s["reward"]) < 1e-5 and abs(o["reward_std"] - s["reward_std"]) < 1e-5
        assert abs(o["reward"] - r) < 1e-5 and abs(o["reward_std"] - std) < 1e-5


def test_lora_runs_average_their_merged_weights(tiny_llama, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", PAIRS * 4)
    runs = [_train(tiny_llama, data, tmp_path / f"lora{s}", s, "--lora-r", "4") for s in (1, 2)]
    assert main(["merge", "--model", runs[0], "--model", runs[1], "--output", str(tmp_path / "from_runs")]) == 0
    assert main(["merge", "--model", f"{runs[0]}/adapter", "--model", f"{runs[1]}/adapter",
                 "--output", str(tmp_path / "from_adapters")]) == 0
    a, b = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("from_runs", "from_adapters"))
    assert a.keys() == b.keys() and max((a[k].float() - b[k].float()).abs().max().item() for k in a) < 1e-6
    one, two = (load_file(f"{r}/model.safetensors") for r in runs)
    k = next(k for k in a if "q_proj" in k)
    assert torch.allclose(a[k].double(), (one[k].double() + two[k].double()) / 2, atol=1e-6)


def test_members_of_different_backbones_each_read_the_texts_with_their_own_tokenizer(members, tiny_llama, tmp_path):
    from rewardlab.data.encode import encode_texts

    data = write_jsonl(tmp_path / "pairs.jsonl", PAIRS * 4)
    llama = _train(tiny_llama, data, tmp_path / "llama", 5, "--reward-stats")
    assert main(["ensemble", "--model", members[0], "--model", llama, "--output", str(tmp_path / "mixed")]) == 0
    ens = RewardModel.from_pretrained(str(tmp_path / "mixed"), device="cpu")
    assert ens._shares == [True, False]  # a BERT WordPiece and a SmolLM2 BPE vocabulary
    texts = [plain_text(p, c, ens.tokenizer) for p, c in zip(PROMPTS, REPLIES)]
    ens = ens.with_options(members=True)
    alone, _ = ens.score_details(texts)
    given, _ = ens.score_details(texts, encoded=[e[:3] for e in encode_texts(ens.tokenizer, texts)])
    singles = [RewardModel.from_pretrained(m, device="cpu") for m in (members[0], llama)]
    for k, (a, b) in enumerate(zip(alone, given)):
        assert max(abs(x - y) for x, y in zip(a["members"], b["members"])) < 1e-6
        for m, s in enumerate(singles):
            raw = s.score([PROMPTS[k]], [REPLIES[k]])[0]
            stats = s.settings.reward_stats
            assert abs(a["members"][m] - (raw - stats.mean) / stats.std) < 1e-5


def test_merge_weights_are_normalised_and_bad_ones_refused():
    from rewardlab.errors import ConfigError
    from rewardlab.inference.merge import parse_weights

    assert parse_weights("", 4) == [0.25] * 4 and parse_weights("1,3", 2) == [0.25, 0.75]
    for bad, says in (("1,x", "comma-separated numbers"), ("1,2,3", "3 values for 2"), ("-1,2", ">= 0")):
        with pytest.raises(ConfigError, match=says):
            parse_weights(bad, 2)
