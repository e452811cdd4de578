"""Every benchmark in bench/ run end to end at toy size, so none can rot between the runs that
produce its numbers: tiny random models (tests/conftest.py), a handful of rows, one repeat, one or
two steps. The shared data are FAKE: synthetic rows in the real files' schemas
(../shared/data/README.md), written here, never copied. Each script must exit 0 and write its
result file through bench/harness.py; nothing is timed and no number is checked.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import make_tiny_llama

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "eval" / "fixtures"  # real benchmark rows already in the repository
NOT_BENCHMARKS = {"harness.py", "report.py", "peer_trainer.py"}  # helper modules


# --- fake shared data -------------------------------------------------------------------------

TOPICS = ["bake bread", "fix a flat tyre", "learn the guitar", "plant tomatoes", "write a cover letter",
          "train a puppy", "clean a cast iron pan", "start running", "save money", "sleep better"]
GOOD = [" Start small: read one short guide on how to {}, then practise for ten minutes a day.",
        " Practise a little every day.", " Sure! Three steps: plan, try, and review how it went.",
        " Ask a friend who knows how to {}; learning together is easier and more fun.", " Watch a beginner's video."]
BAD = [" I would rather not help with that.", " No idea, honestly; ask someone else about it later.",
       " It is impossible to {}, so there is no point trying, and you should give up right now.",
       " Why would anyone want to {}?", " Figure it out yourself."]


def hh_rows(n: int) -> list[dict]:
    """HH-RLHF pairs: two dialogues sharing every turn but the last Assistant reply; replies of
    many lengths and words in changing combinations, so even a random model gets some right."""
    rows = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        prefix = (f"\n\nHuman: How do I {topic}? (question {i})\n\nAssistant: Do you want a quick answer or a "
                  f"detailed one?\n\nHuman: A quick one, please.\n\nAssistant:")
        good, bad = GOOD[i % len(GOOD)].format(topic), BAD[(i // len(GOOD) + 2 * i) % len(BAD)].format(topic)
        rows.append({"chosen": prefix + good, "rejected": prefix + bad})
    return rows


def gsm8k_rows(n: int, offset: int) -> list[dict]:
    """GSM8K problems: steps with calculator annotations, the final line '#### N'."""
    rows = []
    for i in range(n):
        a, b, c = 3 + i + offset, 2 + (i * 7 + offset) % 9, 1 + i % 3
        s = a + b
        rows.append({"question": f"Sam has {a} marbles, wins {b} more and then loses {c}. How many marbles "
                                 f"does Sam have now?",
                     "answer": f"After winning Sam has {a}+{b}=<<{a}+{b}={s}>>{s} marbles.\n"
                               f"After losing Sam has {s}-{c}=<<{s}-{c}={s - c}>>{s - c} marbles.\n#### {s - c}"})
    return rows


def model_solution_rows(n: int) -> list[dict]:
    """Graded model solutions: four per question, a mix of right and wrong (some questions all
    right or all wrong, as in the real file), each ending 'A: N'."""
    solvers = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
    rows = []
    for i, problem in enumerate(gsm8k_rows(n, 100)):
        truth = int(problem["answer"].rsplit("####", 1)[1])
        row = {"question": problem["question"], "ground_truth": str(truth)}
        for k, name in enumerate(solvers):
            right = (i + k) % 3 != 0 if i % 5 else True
            answer = truth if right else truth + k + 1
            steps = ["Sam wins some and loses some.", "First add, then subtract.", "Count the marbles.",
                     "Work it out step by step."][k]  # four different texts, as four solvers write
            row[name] = {"solution": f"{steps}\nSam ends with {answer} marbles.\nA: {answer}", "is_correct": right}
        rows.append(row)
    return rows


def rmb_row(path: str, i: int, **answers) -> dict:
    return {"conversation_input": [{"role": "user", "content": f"How do I {TOPICS[i % len(TOPICS)]}?",
                                    "language": "English"}], "category_path": path, **answers}


def write_rmb(folder: Path) -> None:
    """An RMB_dataset folder as released: pairwise and best-of-N files of both parts."""
    good, bad = {"llm_name": "m", "answer": "Here is a short, careful answer."}, {"llm_name": "n", "answer": "No."}
    for part in ("Helpfulness/Chat/Discussion", "Harmlessness/S1"):
        files = {f"Pairwise_set/{part}": [rmb_row(f"Pairwise_set/{part}", i, chosen=good, reject=bad)
                                          for i in range(3)],
                 f"BoN_set/{part}": [rmb_row(f"BoN_set/{part}", i, bon_best=good, loser_list=[bad, bad])
                                     for i in range(3)]}
        for rel, rows in files.items():
            (folder / f"{rel}.json").parent.mkdir(parents=True, exist_ok=True)
            (folder / f"{rel}.json").write_text(json.dumps(rows))


def write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text)


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
    """A fake ../shared/data folder (same layout and schemas, made-up rows) and RMB files."""
    root = tmp_path_factory.mktemp("shared_data")
    write_rows(root / "hh-rlhf-harmless" / "pairs.jsonl.gz", hh_rows(40))
    write_rows(root / "gsm8k" / "train.jsonl", gsm8k_rows(16, 0))
    write_rows(root / "gsm8k" / "test.jsonl", gsm8k_rows(8, 50))
    write_rows(root / "gsm8k" / "model_solutions.jsonl.gz", model_solution_rows(12))
    write_rmb(root / "rmb")
    return root


@pytest.fixture(scope="module")
def llama(tmp_path_factory, smol_tokenizer_dir) -> str:
    """A 2-layer tiny llama whose context holds a judge's prompt (1,024 positions)."""
    return make_tiny_llama(smol_tokenizer_dir, tmp_path_factory.mktemp("bench_models") / "tiny-llama",
                           max_position_embeddings=1024)


# --- the cases --------------------------------------------------------------------------------


@dataclass
class Case:
    args: str  # the toy flags; {llama}, {bert}, {tok}, {shared}, {fixtures}, {work} are filled in
    result: str  # the result file's name it must write; {llama_name}, {bert_name} are filled in
    trl: bool = False  # compares with TRL


# Decoder cuts both ways: --layers 1 cuts the 2-layer llama, --layers 4 (at least its count) keeps it
# whole, and the result names say the layers the model had (L1, L2). Encoder benchmarks get tiny_bert.
CASES = {
    "benchmarks_real.py": Case("--model {bert} --hh-pairs 16 --prmbench {fixtures}/prmbench_rows.jsonl "
                               "--rmb {shared}/rmb --rewardmath {fixtures}/rewardmath_direct_sample.json --out {work}",
                               "benchmarks-real-{bert_name}"),
    "genrm_vs_trl_sft.py": Case("--backbone {llama} --layers 1 --steps 2 --batch-size 2 --repeats 1 --max-length 256 "
                                "--work {work}", "genrm-vs-trl-sft-{llama_name}-L1", trl=True),
    "gsm8k_ensemble.py": Case("--model {bert} --members 2 --heads 2 --train-questions 8 --out {work}",
                              "gsm8k-ensemble-{bert_name}"),
    "gsm8k_genrm.py": Case("--model {llama} --train-questions 4 --eval-questions 4 --batch-size 4 --max-length 256 "
                           "--out {work}", "gsm8k-genrm-{llama_name}"),
    "gsm8k_implicit_prm.py": Case("--model {llama} --train-rows 8 --eval-rows 8 --batch-size 4 --max-length 256 "
                                  "--out {work}", "gsm8k-implicit-prm-{llama_name}"),
    "gsm8k_objectives.py": Case("--model {bert} --losses bt,plackett_luce --train-questions 8 --batch-size 4 "
                                "--out {work}", "gsm8k-objectives-{bert_name}"),
    "gsm8k_orm_prm.py": Case("--model {bert} --train-questions 8 --prm-train-limit 8 --champ-limit 4 --batch-size 8 "
                             "--out {work}", "gsm8k-orm-prm-{bert_name}"),
    "hh_ensemble.py": Case("--model {bert} --train-pairs 16 --eval-pairs 12 --members 2 --heads 2 --out {work}",
                           "hh-ensemble-{bert_name}"),
    "hh_judge.py": Case("--model {llama} --train-pairs 8 --eval-pairs 8 --max-length 1024 --out {work}",
                        "hh-judge-{llama_name}"),
    "hh_robust.py": Case("--model {bert} --train-pairs 16 --eval-pairs 12 --methods bt,both --max-length 128 "
                         "--out {work}", "hh-robust-{bert_name}"),
    "last_layer.py": Case("--model {llama} --layers 1 --layers 0 --pairs 4 --batch 2 --repeats 1",
                          "last-layer-{llama_name}-L1-L2"),
    "score_vs_pipeline.py": Case("--backbone {llama} --layers 4 --pairs 6 --repeats 1 --work {work}",
                                 "score-vs-pipeline-{llama_name}-L2"),
    "serve_load.py": Case("--model {llama} --layers 4 --prompts 3 --samples 2 --clients 4 --repeats 1 --work {work}",
                          "serve-load-{llama_name}-L2"),
    "simulated_value_regression.py": Case("--tokenizer {tok} --rows 16 --eval-rows 8 --epochs 1 --out {work}",
                                          "simulated-value-regression"),
    "train_vs_trl.py": Case("--backbone {llama} --layers 1 --steps 2 --batch-size 2 --repeats 1 --max-length 256 "
                            "--work {work}", "train-vs-trl-{llama_name}-L1", trl=True),
}


def test_every_bench_script_has_a_smoke_test():
    scripts = {p.name for p in (ROOT / "bench").glob("*.py")} - NOT_BENCHMARKS
    missing = sorted(scripts - set(CASES))
    assert not missing, f"bench scripts without a smoke case in {Path(__file__).name}: {', '.join(missing)}"


@pytest.mark.parametrize("script", CASES)
def test_bench_script_runs_at_toy_size_and_records_its_result(script, shared, llama, tiny_bert,
                                                               smol_tokenizer_dir, tmp_path):
    case = CASES[script]
    if case.trl:
        pytest.importorskip("trl")
    fill = {"llama": llama, "llama_name": Path(llama).name, "bert": tiny_bert, "bert_name": Path(tiny_bert).name,
            "tok": smol_tokenizer_dir, "shared": shared, "fixtures": FIXTURES, "work": tmp_path / "work"}
    results = tmp_path / "results"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "REWARDLAB_SHARED_DATA": str(shared), "REWARDLAB_BENCH_RESULTS": str(results)}
    proc = subprocess.run([sys.executable, f"bench/{script}", *case.args.format(**fill).split()], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    path = results / f"{case.result.format(**fill)}.json"
    assert path.exists(), f"{script} wrote {sorted(p.name for p in results.glob('*'))}, not {path.name}"
    body = json.loads(path.read_text())
    for field in ("environment", "command", "results"):
        assert body.get(field), f"{path.name} has no {field}"
    assert body.get("table", {}).get("rows"), f"{path.name} has no table"
