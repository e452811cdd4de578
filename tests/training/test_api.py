"""``rewardlab.train``: the same rows give the same weights from a path, a list of rows, a
``datasets.Dataset`` (an ``IterableDataset`` when streaming) and ``rewardlab train``; a model and
a ``peft`` config in memory; callbacks see every step and can stop a run, which then resumes exactly."""

import json

import datasets
import pytest
import torch
from safetensors.torch import load_file

import rewardlab
from rewardlab.cli import main
from rewardlab.config import ConfigError, TrainConfig
from tests.conftest import PAIRS, write_jsonl

OPTIONS = dict(batch_size=4, max_steps=3, lr=1e-2, save_every=0, seed=3)


def _flags(options: dict) -> list[str]:
    return [a for k, v in options.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def _weights(folder) -> dict:
    return load_file(f"{folder}/model.safetensors")


def _same(a, b) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_rows_a_dataset_a_path_and_the_cli_train_the_same_weights(tiny_llama, tmp_path):
    rows = [dict(p, prompt=p["prompt"] + f" ({i})") for i, p in enumerate(PAIRS * 3)]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    held = write_jsonl(tmp_path / "held.jsonl", PAIRS)
    assert main(["train", "--model", tiny_llama, "--data", path, "--eval-data", held, "--output",
                 str(tmp_path / "cli"), *_flags(OPTIONS)]) == 0
    by_path = rewardlab.train(model=tiny_llama, data=path, eval_data=held, output=str(tmp_path / "path"), **OPTIONS)
    by_rows = rewardlab.train(model=tiny_llama, data=rows, eval_data=PAIRS, output=str(tmp_path / "rows"), **OPTIONS)
    by_dataset = rewardlab.train(model=tiny_llama, data=datasets.Dataset.from_list(rows),
                                 eval_data=datasets.Dataset.from_list(PAIRS), output=str(tmp_path / "ds"), **OPTIONS)
    for other in ("path", "rows", "ds"):
        assert _same(tmp_path / "cli", tmp_path / other), other
    cli = json.loads((tmp_path / "cli" / "train_results.json").read_text())
    assert by_rows["eval"] == by_dataset["eval"] == by_path["eval"] == cli["eval"]
    assert by_rows.output == str(tmp_path / "rows") and by_rows.metrics["steps"] == 3
    assert by_rows.model.score([PAIRS[0]["prompt"]], [PAIRS[0]["chosen"]]) == \
        rewardlab.RewardModel.from_pretrained(str(tmp_path / "cli")).score([PAIRS[0]["prompt"]], [PAIRS[0]["chosen"]])
    config = TrainConfig.flat(model=tiny_llama, data=path, output=str(tmp_path / "cfg"), **OPTIONS)
    rewardlab.train(config, eval_data=held)  # a config object, rows added by keyword
    assert _same(tmp_path / "cli", tmp_path / "cfg")


def test_a_streamed_iterable_dataset_trains_as_the_streamed_file(tiny_llama, tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", PAIRS * 3)
    stream = dict(OPTIONS, streaming=True, shuffle_buffer=4)
    rewardlab.train(model=tiny_llama, data=path, output=str(tmp_path / "file"), **stream)
    iterable = datasets.Dataset.from_list(PAIRS * 3).to_iterable_dataset()
    rewardlab.train(model=tiny_llama, data=iterable, output=str(tmp_path / "iter"), **stream)
    assert _same(tmp_path / "file", tmp_path / "iter")


def test_a_model_and_a_peft_config_in_memory(tiny_llama, tmp_path):
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    path = write_jsonl(tmp_path / "rows.jsonl", PAIRS * 2)
    rewardlab.train(model=tiny_llama, data=path, output=str(tmp_path / "flags"), lora_r=4, lora_alpha=8, **OPTIONS)
    rewardlab.train(model=tiny_llama, data=path, output=str(tmp_path / "peft"), **OPTIONS,
                    peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    assert _same(tmp_path / "flags", tmp_path / "peft")  # the reward head was added to modules_to_save
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    mine = AutoModelForSequenceClassification.from_pretrained(tiny_llama, num_labels=1)
    result = rewardlab.train(model=mine, tokenizer=tok, data=PAIRS * 2, output=str(tmp_path / "mine"), **OPTIONS)
    assert result.metrics["steps"] == 2 and result.model.kind == "preference"
    with pytest.raises(ConfigError, match="tokenizer"):
        rewardlab.train(model=mine, data=PAIRS, output=str(tmp_path / "x"), **OPTIONS)
    with pytest.raises(rewardlab.errors.ModelError, match="needs a AutoModelForSequenceClassification with num_labels=1; "
                                                          "got LlamaForCausalLM"):
        rewardlab.train(model=AutoModelForCausalLM.from_pretrained(tiny_llama), tokenizer=tok, data=PAIRS,
                        output=str(tmp_path / "y"), **OPTIONS)


class Recorder(rewardlab.Callback):
    """Records every hook; stops the run after ``stop_at`` steps."""

    def __init__(self, stop_at: int = 0):
        self.stop_at, self.calls = stop_at, []

    def on_train_begin(self, run):
        self.calls.append(("begin", run.step))

    def on_step(self, run, logs):
        self.calls.append(("step", logs["step"], round(logs["loss"], 6) >= 0, "accuracy" in logs))
        if run.step == self.stop_at:
            run.stop()

    def on_evaluate(self, run, metrics):
        self.calls.append(("evaluate", run.step, "accuracy" in metrics))

    def on_save(self, run, folder):
        self.calls.append(("save", run.step, folder.rsplit("/", 1)[-1]))

    def on_train_end(self, run, result):
        self.calls.append(("end", result["steps"]))


def test_callbacks_see_every_step_and_a_stop_resumes_exactly(tiny_llama, tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", PAIRS * 4)
    common = dict(model=tiny_llama, data=path, eval_data=path, batch_size=2, lr=1e-2, seed=3, save_every=0)
    seen = Recorder()
    rewardlab.train(output=str(tmp_path / "full"), eval_every=4, callbacks=[seen], **common)
    steps = [c for c in seen.calls if c[0] == "step"]
    assert [c[1] for c in steps] == list(range(1, 9)) and all(c[2] and c[3] for c in steps)
    assert seen.calls[0] == ("begin", 0) and seen.calls[-1] == ("end", 8)
    assert ("evaluate", 4, True) in seen.calls and ("evaluate", 8, True) in seen.calls
    assert ("save", 8, "full") in seen.calls

    stopper = Recorder(stop_at=3)
    result = rewardlab.train(output=str(tmp_path / "cut"), eval_every=4, callbacks=[stopper], **common)
    assert result["steps"] == 3 and ("save", 3, "step-3") in stopper.calls and ("save", 3, "cut") in stopper.calls
    assert (tmp_path / "cut" / "model.safetensors").exists() and "eval" in result  # finished: model and evaluation
    rewardlab.train(output=str(tmp_path / "cut"), eval_every=4, resume="latest", **common)
    assert _same(tmp_path / "full", tmp_path / "cut")


def test_unknown_options_and_bad_rows_in_memory_are_one_line_errors(tiny_llama, tmp_path):
    with pytest.raises(ConfigError, match="unknown option 'learning_rate'"):
        rewardlab.train(model=tiny_llama, data=PAIRS, output=str(tmp_path / "o"), learning_rate=1e-3)
    with pytest.raises(rewardlab.errors.DataError, match=r"^rows: row 2: expected a dict, got str"):
        rewardlab.train(model=tiny_llama, data=[PAIRS[0], "not a row"], output=str(tmp_path / "o2"), max_steps=1)
    with pytest.raises(rewardlab.errors.DataError, match=r"^rows: row 1: missing column 'chosen'"):
        rewardlab.train(model=tiny_llama, data=[{"prompt": "p", "rejected": "r"}], output=str(tmp_path / "o3"))
