"""``rewardlab.evaluate`` is what ``rewardlab eval`` prints: for every benchmark format, ProcessBench,
a comparison of models and a leaderboard, ``to_json()`` equals ``eval --json`` and ``report(path)``
writes the page ``--report`` writes (each kind's own rows: tests/inference/test_score_options.py)."""

import json
from pathlib import Path

import pytest

import rewardlab
from rewardlab.cli import main
from rewardlab.eval.benchmarks import FORMATS, detect
from rewardlab.data.rows import read_rows
from tests.conftest import PAIRS, write_jsonl

FIXTURES = Path(__file__).parent / "fixtures"


def _rows(fmt: str, tmp_path: Path) -> str:
    """A small file (or folder) of ``fmt``'s rows, in the benchmark's released layout."""
    p = PAIRS
    if fmt == "rewardbench":
        rows = [dict(x, subset=s) for x, s in zip(p, ("donotanswer", "alpacaeval-easy", "math-prm", "hep-go"))]
    elif fmt == "rewardbench2":
        rows = [{"id": str(i), "prompt": x["prompt"], "chosen": [x["chosen"]], "rejected": [x["rejected"]] * 3,
                 "subset": s, "num_correct": 1} for i, (x, s) in enumerate(zip(p, ("Factuality", "Focus", "Math",
                                                                                    "Safety")))]
    elif fmt == "rm-bench":
        rows = [{"id": i, "prompt": x["prompt"], "chosen": [x["chosen"], x["chosen"] + " More.", "**" + x["chosen"] + "**"],
                 "rejected": [x["rejected"], x["rejected"] + " More.", "- " + x["rejected"]], "domain": "chat"}
                for i, x in enumerate(p)]
    elif fmt == "judgebench":
        rows = [{"pair_id": str(i), "question": x["prompt"], "response_A": x["chosen"], "response_B": x["rejected"],
                 "label": "A>B", "source": s} for i, (x, s) in enumerate(zip(p, ("mmlu-pro-law", "livebench-math",
                                                                                 "livecodebench", "livebench-reasoning")))]
    elif fmt == "m-rewardbench":
        rows = [dict(x, source=s, language=lang) for x in p for s, lang in (("alpacaeval-easy", "deu_Latn"),
                                                                             ("donotanswer", "fra_Latn"))]
    elif fmt == "ppe":
        rows = [{"prompt": x["prompt"], "response_1": x["chosen"], "response_2": x["rejected"], "winner": w,
                 "is_code": i % 2 == 0} for i, (x, w) in enumerate(zip(p, ("model_a", "model_b", "model_a", "tie")))]
    elif fmt == "rmb":
        from tests.test_cli_benchmarks import _rmb_tree

        return _rmb_tree(tmp_path / "rmb")
    elif fmt == "rewardmath":
        return str(FIXTURES / "rewardmath_direct_sample.json")
    elif fmt == "prmbench":
        return str(FIXTURES / "prmbench_rows.jsonl")
    else:  # processbench: a PRM's own rows, the first wrong step's index as the label
        rows = [{"problem": q, "steps": ["We add.", f"It is {a}."], "label": label}
                for q, a, label in (("2 + 3?", 5, -1), ("2 + 3?", 6, 1), ("4 + 4?", 8, -1), ("4 + 4?", 9, 1),
                                    ("1 + 1?", 3, 0), ("7 + 1?", 8, -1))]
    return write_jsonl(tmp_path / f"{fmt}.jsonl", rows)


@pytest.mark.parametrize("fmt", [*FORMATS, "processbench"])
def test_to_json_equals_eval_json_and_the_report_is_evals(kind_models, fmt, tmp_path, capsys):
    steps = fmt in ("prmbench", "processbench")
    model = kind_models["prm" if steps else "preference"][0]
    data = _rows(fmt, tmp_path)
    if fmt in FORMATS:
        assert detect(read_rows(data), data) == fmt
    forced = ["--format", fmt] if fmt == "processbench" else []
    capsys.readouterr()
    assert main(["eval", "--model", model, "--data", data, "--json", "--report", str(tmp_path / "cli.html"),
                 *forced]) == 0
    printed = capsys.readouterr().out.strip()
    result = rewardlab.evaluate(model, data, format="processbench" if forced else "auto")
    assert result.to_json() == printed and result.format == fmt and json.loads(printed) == result.to_dict()
    assert result.report(str(tmp_path / "api.html")) == str(tmp_path / "api.html")
    assert (tmp_path / "api.html").read_text() == (tmp_path / "cli.html").read_text()
    assert str(result) == result.text and result.text.splitlines()[0]
    name, number = result.headline
    assert number == result.metrics[name] and result.counts["rows"] == len(result.details) == len(result.examples)


def test_several_models_compare_and_a_leaderboard_equal_eval(kind_models, tmp_path, capsys):
    models = [kind_models["preference"][0], kind_models["regression"][0]]
    pairs = write_jsonl(tmp_path / "pairs.jsonl", PAIRS * 2)
    capsys.readouterr()
    assert main(["eval", "--model", models[0], "--model", models[1], "--data", pairs, "--json"]) == 0
    assert rewardlab.evaluate(models, pairs).to_json() == capsys.readouterr().out.strip()
    files = [_rows("rewardbench", tmp_path), _rows("ppe", tmp_path)]
    assert main(["eval", *[a for m in models for a in ("--model", m)], *[a for f in files for a in ("--data", f)],
                 "--json", "--bootstrap-samples", "30"]) == 0
    board = rewardlab.evaluate(models, files, bootstrap_samples=30)
    assert board.to_json() == capsys.readouterr().out.strip() and board.kind == "leaderboard"


def test_a_loaded_model_rows_in_memory_and_settings_by_keyword(kind_models, tmp_path, capsys):
    model, data = kind_models["prm"]
    rows = [json.loads(x) for x in open(data)]
    rm = rewardlab.RewardModel.from_pretrained(model)
    in_memory = rewardlab.evaluate(rm, rows, threshold=0.5, options={"aggregate": "prod"})
    from_disk = rewardlab.evaluate(model, data, threshold=0.5, options={"aggregate": "prod"})
    assert in_memory.metrics == from_disk.metrics and in_memory.metrics["best_of_n"]["aggregate"] == "prod"
    assert [e.prompt for e in in_memory.examples] == [r["prompt"] for r in rows]
    with pytest.raises(rewardlab.errors.ConfigError, match="unknown setting 'thresh'"):
        rewardlab.evaluate(model, data, thresh=0.5)
    notes = []
    rewardlab.evaluate(model, data, say=notes.append, format="auto")
    assert notes and notes[0].startswith("format: ")
