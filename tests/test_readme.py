"""The getting-started quick start and the Python API walk-through, run as written (serve and curl
aside) on a tiny decoder with a chat template and chat-formatted pairs: nothing in them may rot.
(The other blocks of README.md and docs/ run in tests/test_docs.py.)"""

import json
import shlex

from rewardlab.cli import main
from tests.conftest import write_jsonl
from tests.docblocks import block


def quickstart() -> list[list[str]]:
    return [shlex.split(line) for line in block("quickstart").splitlines() if line.strip()]


def test_quickstart_runs_as_written(tiny_llama, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = [{"prompt": [{"role": "user", "content": f"Question {i}: what is {i} + {i}?"}],
             "chosen": [{"role": "assistant", "content": f"It is {2 * i}."}],
             "rejected": [{"role": "assistant", "content": "I will not say."}]} for i in range(20)]
    write_jsonl(tmp_path / "chats.jsonl", rows)
    commands = quickstart()
    assert [c[:2] for c in commands] == [["rewardlab", "train"], ["rewardlab", "eval"], ["rewardlab", "score"],
                                         ["rewardlab", "serve"], ["curl", "-s"]]
    for command in commands[:3]:
        args = [tiny_llama if a == "./my-decoder" else a for a in command[1:]]
        assert main(args) == 0, " ".join(command)
    assert (tmp_path / "runs" / "my-rm" / "adapter" / "adapter_config.json").exists()
    scored = [json.loads(x) for x in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert len(scored) == 20 and all(isinstance(r["chosen_reward"], float) for r in scored)
    assert "--host" in commands[3] and "localhost:5000/get_reward" in commands[4]


def python_api() -> str:
    return block("python-api")


def test_the_python_api_example_runs_as_written(tiny_llama, tmp_path, monkeypatch, capsys):
    """The TRL-style walk-through: a datasets.Dataset of pairs -> train with LoRA and a callback ->
    evaluate on RewardBench rows -> RewardModel.score. Only the bundled model's name becomes a tiny one."""
    from tests.conftest import PAIRS

    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "hh_pairs.jsonl", [dict(p, prompt=p["prompt"] + f" ({i})") for i, p in enumerate(PAIRS * 54)])
    write_jsonl(tmp_path / "rewardbench.jsonl", [dict(p, subset=s) for p, s in
                                                 zip(PAIRS, ("donotanswer", "alpacaeval-easy", "math-prm", "hep-go"))])
    code = python_api()
    assert code.count('model="smollm2"') == 1
    exec(compile(code.replace('model="smollm2"', f'model="{tiny_llama}"'), "docs/python-api.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("step 10: held-out accuracy") and out[1].startswith("step 20: held-out accuracy")
    assert "'Chat'" in out[2] and len(out) == 4
    assert out[-1].startswith("[") and (tmp_path / "runs" / "hh-rm" / "adapter" / "adapter_config.json").exists()
