"""LoRA reward models: the head is saved with the adapter (TRL #1379) and merging is exact."""

import torch

from rewardlab import RewardModel
from rewardlab.cli import main
from rewardlab.models.lora import apply_lora, load_adapter
from rewardlab.models.backbone import load_backbone

PROMPTS = ["\n\nHuman: hi\n\nAssistant:", "Q: 2+2?\nA:"]
COMPLETIONS = [" Hello, how can I help?", " 4"]


def test_reloaded_adapter_scores_exactly_as_before_saving(tiny_llama, tmp_path):
    model, tok = load_backbone(tiny_llama)
    model = apply_lora(model, r=4, alpha=8)
    torch.manual_seed(3)
    for name, p in model.named_parameters():
        if p.requires_grad:  # as if trained: LoRA B is zero at init, the head is random
            torch.nn.init.normal_(p, std=0.5)
    before = RewardModel(model, tok).score(PROMPTS, COMPLETIONS)
    model.save_pretrained(tmp_path / "adapter")
    tok.save_pretrained(tmp_path / "adapter")
    reloaded, _, _ = load_adapter(str(tmp_path / "adapter"))
    after = RewardModel(reloaded, tok).score(PROMPTS, COMPLETIONS)
    assert max(abs(a - b) for a, b in zip(before, after)) < 1e-6
    fresh, _ = load_backbone(tiny_llama)
    assert max(abs(a - b) for a, b in zip(before, RewardModel(fresh, tok).score(PROMPTS, COMPLETIONS))) > 1e-3


def test_lora_training_saves_merged_model_and_adapter(tiny_llama, pairs_file, tmp_path):
    out = tmp_path / "lora"
    assert main(["train", "--model", tiny_llama, "--data", pairs_file, "--output", str(out), "--lora-r", "4",
                 "--lr", "1e-2", "--max-steps", "2", "--batch-size", "4", "--save-every", "1"]) == 0
    merged = RewardModel.from_pretrained(str(out)).score(PROMPTS, COMPLETIONS)
    adapter = RewardModel.from_pretrained(str(out / "adapter")).score(PROMPTS, COMPLETIONS)
    assert max(abs(a - b) for a, b in zip(merged, adapter)) < 1e-5
    assert main(["export", "--model", str(out / "adapter"), "--output", str(tmp_path / "exported")]) == 0
    exported = RewardModel.from_pretrained(str(tmp_path / "exported")).score(PROMPTS, COMPLETIONS)
    assert max(abs(a - b) for a, b in zip(merged, exported)) < 1e-5
    ckpt = RewardModel.from_pretrained(str(out / "checkpoints" / "step-1"))
    assert ckpt.max_length == 256  # the trained max_length travels with every adapter folder


def test_lora_resume_equals_uninterrupted(tiny_llama, pairs_file, tmp_path):
    import shutil

    from safetensors.torch import load_file

    args = ["--model", tiny_llama, "--data", pairs_file, "--lora-r", "4", "--lr", "1e-2", "--batch-size", "4"]
    assert main(["train", *args, "--output", str(tmp_path / "full"), "--save-every", "2"]) == 0
    shutil.copytree(tmp_path / "full" / "checkpoints" / "step-2", tmp_path / "again" / "checkpoints" / "step-2")
    assert main(["train", *args, "--output", str(tmp_path / "again"), "--save-every", "2", "--resume"]) == 0
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "again" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


def test_qlora_trains_on_4bit_weights_and_reloads_exactly(tiny_llama_wide, pairs_file, tmp_path, capsys):
    """QLoRA on CPU (bitsandbytes NF4): the 4-bit base is rebuilt on reload, so the adapter
    scores as at the end of training; evaluating mid-run changes nothing; the final folder is a
    plain full-precision model."""
    import json

    import pytest

    pytest.importorskip("bitsandbytes")
    from bitsandbytes.nn import Linear4bit
    from transformers import AutoModelForSequenceClassification

    def run(out, *extra):
        assert main(["train", "--model", tiny_llama_wide, "--data", pairs_file, "--eval-data", pairs_file,
                     "--output", str(out), "--lora-r", "4", "--load-in-4bit", "--lr", "1e-2", "--max-steps", "3",
                     "--batch-size", "4", "--log-every", "1", *extra]) == 0
        return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]

    out = tmp_path / "qlora"
    logs = run(out)
    with_eval = run(tmp_path / "with_eval", "--eval-every", "1")
    assert [r["loss"] for r in logs if "loss" in r] == [r["loss"] for r in with_eval if "loss" in r]
    assert json.loads((out / "adapter" / "rewardlab.json").read_text())["load_in_4bit"] is True
    assert any(isinstance(m, Linear4bit) for m in RewardModel.from_pretrained(str(out / "adapter")).model.modules())
    trained = json.loads((out / "train_results.json").read_text())["eval"]
    capsys.readouterr()
    assert main(["eval", "--model", str(out / "adapter"), "--data", pairs_file, "--json"]) == 0
    reloaded = json.loads(capsys.readouterr().out)
    assert abs(reloaded["mean_margin"] - trained["mean_margin"]) < 1e-5  # the same 4-bit model again
    merged = AutoModelForSequenceClassification.from_pretrained(out)  # plain, no quantization config
    assert not any(isinstance(m, Linear4bit) for m in merged.modules())
    assert "quantization_config" not in json.loads((out / "config.json").read_text())


def test_qlora_needs_lora(tiny_llama, pairs_file, tmp_path, capsys):
    assert main(["train", "--model", tiny_llama, "--data", pairs_file, "--output", str(tmp_path / "o"),
                 "--load-in-4bit"]) == 2
    assert "--load-in-4bit (QLoRA) trains LoRA adapters: also pass --lora-r" in capsys.readouterr().err
