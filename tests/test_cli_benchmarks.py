"""``rewardlab eval`` on the newer benchmark files end to end on tiny models: a PRM on PRMBench,
a reward model on RMB's folder, RewardMATH and PPE, conversations on a backbone without a chat
template, and the leaderboard of several models x several benchmark files."""

import importlib.util
import json
from pathlib import Path

import pytest

from rewardlab.cli import main
from tests.conftest import PAIRS, write_jsonl

FIXTURES = Path(__file__).parent / "eval" / "fixtures"


def _rmb_tree(root: Path) -> str:
    a, b = {"llm_name": "m", "answer": " Paris is the capital."}, {"llm_name": "n", "answer": " I will not say."}
    conv = [{"role": "user", "content": "What is the capital of France?", "language": "English"}]
    files = {"Pairwise_set/Helpfulness/Chat/Discussion": [{"chosen": a, "reject": b}, {"chosen": b, "reject": a}],
             "Pairwise_set/Harmlessness/S1": [{"chosen": b, "reject": a}],
             "BoN_set/Helpfulness/Chat/Discussion": [{"bon_best": a, "loser_list": [b, b]}],
             "BoN_set/Harmlessness/S1": [{"bon_best": b, "loser_list": [a]}]}
    for path, rows in files.items():
        f = root / f"{path}.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps([{"conversation_input": conv, "category_path": path, "pair_uid": str(k), **r}
                                 for k, r in enumerate(rows)]))
    return str(root)


@pytest.fixture(scope="module")
def two_models(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    data = write_jsonl(root / "p.jsonl", PAIRS * 2)
    out = []
    for seed in (1, 2):
        folder = str(root / f"m{seed}")
        assert main(["train", "--model", tiny_bert, "--data", data, "--output", folder, "--max-steps", "1",
                     "--seed", str(seed), "--save-every", "0"]) == 0
        out.append(folder)
    return out


def test_conversations_on_a_backbone_without_a_chat_template_use_the_plain_one_in_score_and_eval(two_models, tmp_path,
                                                                                                 capsys):
    from rewardlab import RewardModel

    rows = [{"prompt": [{"role": "user", "content": "Hi"}], "completion": "Hello."}]
    scored = tmp_path / "s.jsonl"
    assert main(["score", "--model", two_models[0], "--data", write_jsonl(tmp_path / "c.jsonl", rows),
                 "--output", str(scored)]) == 0
    assert "plain template" in capsys.readouterr().err
    reward = json.loads(scored.read_text())["reward"]
    rm = RewardModel.from_pretrained(two_models[0], device="cpu")
    assert reward == pytest.approx(rm.score(["\n\nHuman: Hi\n\nAssistant:"], [" Hello."])[0], abs=1e-6)
    tree = _rmb_tree(tmp_path / "rmb")
    assert main(["eval", "--model", two_models[0], "--data", tree, "--json"]) == 0
    out = capsys.readouterr()
    m = json.loads(out.out)
    assert "format: rmb (detected" in out.err and "plain template" in out.err
    assert m["parts"] == ["bon_harmlessness", "bon_helpfulness", "pairwise_harmlessness", "pairwise_helpfulness"]
    assert m["accuracy"] == pytest.approx(sum(m[p] for p in m["parts"]) / 4)
    # the same texts scored by hand give the same decisions
    good = rm.score(["\n\nHuman: What is the capital of France?\n\nAssistant:"] * 2,
                    [" Paris is the capital.", " I will not say."])
    assert m["pairwise_harmlessness"] == float(good[1] > good[0])


def test_a_process_reward_model_on_prmbench_and_a_plain_one_refused(tiny_llama, two_models, tmp_path, capsys):
    rows = [{"prompt": f"What is {a} + {b}?", "steps": ["We add the numbers.", f"The sum is {a + b + w}."],
             "labels": [True, not w]} for a, b in ((2, 3), (4, 4), (7, 1)) for w in (0, 1)]
    prm = str(tmp_path / "prm")
    assert main(["train", "--model", tiny_llama, "--kind", "prm", "--data", write_jsonl(tmp_path / "prm.jsonl", rows),
                 "--output", prm, "--max-steps", "2", "--batch-size", "2", "--save-every", "0"]) == 0
    capsys.readouterr()
    data = str(FIXTURES / "prmbench_rows.jsonl")
    assert main(["eval", "--model", prm, "--data", data, "--json", "--threshold", "0.4"]) == 0
    out = capsys.readouterr()
    m = json.loads(out.out)
    assert "format: prmbench (detected" in out.err and m["threshold"] == 0.4 and m["n"] == 9
    assert set(m["categories"]) == {"redundency", "circular", "counterfactual", "step_contradiction",
                                    "domain_inconsistency", "confidence", "missing_condition", "deception",
                                    "multi_solutions"}
    assert 0 <= m["prmscore"] <= 1 and m["correct"]["items"] == 1
    assert main(["eval", "--model", two_models[0], "--data", data]) == 2
    assert "needs a process reward model" in capsys.readouterr().err
    assert main(["eval", "--model", prm, "--data", str(FIXTURES / "rewardmath_direct_sample.json"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == 2 and set(m["reducers"]) == {"min", "max", "prod", "geometric_mean", "mean", "mean_logit",
                                                  "mean_odd", "last"}


def test_leaderboard_of_models_by_benchmark_files(two_models, tmp_path, capsys):
    tree = _rmb_tree(tmp_path / "rmb")
    ppe_rows = [{"prompt": "What is 2 + 2?", "response_1": " 4.", "response_2": " 5.", "winner": "model_a", "is_math": True},
                {"prompt": "Say hi.", "response_1": " Hi!", "response_2": " No.", "winner": "model_b", "is_math": False}] * 3
    ppe = write_jsonl(tmp_path / "ppe.jsonl", ppe_rows)
    math_file = str(FIXTURES / "rewardmath_direct_sample.json")
    report = tmp_path / "board.html"
    argv = ["eval", "--model", two_models[0], "--model", two_models[1], "--data", tree, "--data", math_file,
            "--data", ppe, "--json", "--bootstrap-samples", "50"]
    if importlib.util.find_spec("matplotlib"):
        argv += ["--report", str(report)]
    assert main(argv) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["benchmarks"] == ["rmb: rmb", "rewardmath: rewardmath_direct_sample.json", "ppe: ppe.jsonl"]
    for model in two_models:
        cells = board["leaderboard"][model]
        assert cells["rewardmath: rewardmath_direct_sample.json"]["headline"] == "accuracy"
        c = cells["ppe: ppe.jsonl"]
        assert c["low"] <= c["number"] <= c["high"] and "is_math" in c["metrics"]["categories"]
    capsys.readouterr()
    assert main(["eval", "--model", two_models[1], "--data", ppe, "--json"]) == 0  # alone: the same number
    assert json.loads(capsys.readouterr().out)["accuracy"] == board["leaderboard"][two_models[1]]["ppe: ppe.jsonl"]["number"]
    if importlib.util.find_spec("matplotlib"):
        page = report.read_text()
        assert "Leaderboard" in page and page.count("<tr>") >= 3 and "is_math" in page
        assert page.count("<img") == 1  # the headlines drawn with their intervals
    pairs = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    assert main(["eval", "--model", two_models[0], "--data", pairs, "--data", ppe]) == 2
    assert "not a benchmark file" in capsys.readouterr().err
