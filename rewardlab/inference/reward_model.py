"""The :class:`RewardModel` scoring API: a trained reward model folder and its tokenizer. What a
scored text returns is its kind's (``score_texts`` in rewardlab/kinds/); kinds whose
reward is the head's one output (``ONE_REWARD_HEAD``) take the scalar path, where texts that
start with the same tokens share one encoding of that prefix (and a server's prefix cache)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .. import kinds
from ..data.encode import Counts, encode_groups, encode_texts, fit_groups
from ..data.text import plain_text
from ..errors import ConfigError, ModelError
from ..models.backbone import ensure_pad_token, score_sequences
from ..models.lora import load_adapter
from ..models.heads import forward_path
from ..models.packed_encoder import score_packed
from ..models.layout import group_by_prefix, tokens_processed
from ..models.shared_prompt import can_use_prefix_cache, score_groups_shared
from .ensemble import Ensemble, is_ensemble


class RewardModel:
    """A trained reward model with its tokenizer: ``RewardModel.from_pretrained(dir).score(prompts, completions)``."""

    def __init__(self, model: nn.Module, tokenizer, max_length: int = 512, device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        # Saved at training time: how to encode text and read the head (kind, step marker, ...).
        self.settings = dict(getattr(self.model.config, "rewardlab", None) or {})
        self.kind = self.settings.get("kind", kinds.DEFAULT)
        try:
            self.rules = kinds.get(self.kind)  # the kind module: how texts are read and scored
        except ConfigError as e:
            raise ModelError(f"this model was trained as {e} (a newer rewardlab?)") from None
        # Plain-text rows go through the chat template when the model was trained that way.
        self.chat = bool(self.settings.get("apply_chat_template"))

    @property
    def ensemble_size(self) -> int:
        """Rewards read per text: N for a model trained with N reward heads, else 1."""
        return int(self.settings.get("ensemble_size", 1))

    @property
    def step_marker(self) -> str | None:
        """What ends each step of a ``steps`` row (process reward models); None for other kinds."""
        return self.rules.step_marker(self.settings)

    @classmethod
    def from_pretrained(cls, path: str, device: str | None = None, max_length: int = 0,
                        trust_remote_code: bool = False, dtype: torch.dtype | None = None) -> "RewardModel":
        """Load a reward model folder (or a LoRA adapter folder, or an ensemble folder: then an
        :class:`rewardlab.inference.ensemble.Ensemble` of its members, loaded alike); ``dtype``
        e.g. torch.bfloat16 for a large model on a GPU (default: as saved, fp32 for rewardlab's
        own folders)."""
        from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification,
                                  AutoModelForTokenClassification, AutoTokenizer)

        if is_ensemble(path):
            return Ensemble.from_pretrained(path, lambda member: cls.from_pretrained(
                member, device, max_length, trust_remote_code, dtype))
        if Path(path, "adapter_config.json").exists():
            model, tokenizer, trained = load_adapter(path, trust_remote_code)
            return cls(model.to(dtype) if dtype else model, tokenizer, max_length or trained, device)
        if not Path(path, "config.json").exists():
            raise ModelError(f"{path}: not a reward model folder (no config.json); train one with `rewardlab train`")
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
            config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
            archs, head = config.architectures or [], (getattr(config, "rewardlab", None) or {}).get("head")
            auto = AutoModelForCausalLM if head == "lm" else AutoModelForTokenClassification \
                if head == "token" or any(a.endswith("ForTokenClassification") for a in archs) else \
                AutoModelForCausalLM if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs) else \
                AutoModelForSequenceClassification
            model = auto.from_pretrained(path, trust_remote_code=trust_remote_code, **({"dtype": dtype} if dtype else {}))
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"{path}: cannot load the reward model: {str(e).splitlines()[0]}") from None
        settings = getattr(model.config, "rewardlab", None) or {}
        if auto is AutoModelForCausalLM and not settings:
            raise ModelError(f"{path}: a causal language model without rewardlab's settings is not a reward model; "
                             "judge with it (`rewardlab judge`) or train a generative verifier (--kind genrm)")
        outputs = settings.get("num_labels", 1)  # a folder without rewardlab's settings: one reward
        if settings.get("head") != "lm" and model.config.num_labels != outputs:
            raise ModelError(f"{path}: a reward model has {outputs} output{'s' if outputs > 1 else ''}, this one has "
                             f"{model.config.num_labels}")
        ensure_pad_token(tokenizer, model)
        trained = settings.get("max_length", 512)
        return cls(model, tokenizer, max_length or trained, device)

    def save_pretrained(self, path: str) -> None:
        settings = dict(getattr(self.model.config, "rewardlab", None) or {})
        settings["max_length"] = self.max_length
        self.model.config.rewardlab = settings
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)

    def score_texts(self, texts: list, batch_size: int = 16, max_tokens: int = 16384, share_prefixes: bool = True,
                    encoded: list | None = None, cache=None):
        """Rewards for :class:`rewardlab.data.Text` items, in input order, and the counts
        (truncated texts; ``sent`` and ``processed`` tokens).

        Sequences are sorted by length before batching, so the result does not depend on the
        batch size or on the order of the inputs (a kind that ``COMPARES`` compares the texts of
        one prompt given together). On causal backbones, texts that begin with the
        same tokens are found from their token ids and share one encoding of that prefix
        (``share_prefixes``; exact either way). ``encoded``: the texts already tokenized by
        :func:`rewardlab.data.encode.encode_texts` (the server does it to check lengths).
        ``cache``: a :class:`rewardlab.models.prefix_cache.PrefixCache` (a server's) whose
        prompts are reused and which keeps this call's.
        """
        details, counts = self.score_details(texts, False, batch_size, max_tokens, share_prefixes, encoded, cache)
        return [d["reward"] for d in details], counts

    def score_details(self, texts: list, per_token: bool = False, batch_size: int = 16, max_tokens: int = 16384,
                      share_prefixes: bool = True, encoded: list | None = None,
                      cache=None) -> tuple[list[dict], Counts]:
        """Everything the model's kind reads from each text (its ``readout``): ``reward``
        always, and e.g. ``step_rewards`` (prm), ``values`` (value), ``attributes``
        (regression), ``token_rewards`` (orm with ``per_token``); on the other kinds' paths a read
        cut off by truncation is None (JSON has no NaN)."""
        if self.rules.ONE_REWARD_HEAD:
            rewards, counts = self._score_scalar(texts, batch_size, max_tokens, share_prefixes, encoded, cache)
            return [self.rules.readout(_row(r), self.settings, per_token) for r in rewards], counts
        return self.rules.score_texts(self, texts, per_token, batch_size, max_tokens, share_prefixes)

    def _score_scalar(self, texts: list, batch_size: int, max_tokens: int, share_prefixes: bool,
                      encoded: list | None, cache) -> tuple[list[float], Counts]:
        if encoded is None:
            encoded = encode_texts(self.tokenizer, texts)
        elif len(encoded) != len(texts):
            raise ValueError(f"{len(encoded)} encodings for {len(texts)} texts")
        groups, counts = fit_groups([1] * len(texts), [e[:3] for e in encoded], self.max_length, cut_completion=True)
        seqs = [g.sequences[0] for g in groups]
        cache = cache if cache is not None and can_use_prefix_cache(self.model) else None
        path = forward_path(self.model)
        if share_prefixes and (len(seqs) > 1 or cache is not None) and path == "shared":
            return self._score_shared(seqs, batch_size, max_tokens, cache, counts), counts
        counts.sent = counts.processed = sum(map(len, seqs))
        return self._score_flat(seqs, batch_size, max_tokens, path), counts

    def _score_shared(self, seqs: list[list[int]], batch_size: int, max_tokens: int, cache=None,
                      counts: Counts | None = None) -> list[float]:
        """Independent texts that start with the same tokens (the samples of one prompt) go
        through the shared-prompt forward together, their common prefix encoded once."""
        found = group_by_prefix(seqs)
        processed, sent = tokens_processed([[seqs[i] for i in g] for g in found])
        reused = cache.reused_tokens if cache is not None else 0
        rewards = score_groups_shared(self.model, [[seqs[i] for i in g] for g in found], self.tokenizer.pad_token_id,
                                      batch_size, max_tokens, cache)
        if counts is not None:
            counts.sent = sent
            counts.processed = processed - ((cache.reused_tokens if cache is not None else 0) - reused)
        out = [0.0] * len(seqs)
        for g, r in zip(found, rewards):
            for i, x in zip(g, r):
                out[i] = x
        return out

    def _score_flat(self, seqs: list[list[int]], batch_size: int, max_tokens: int, path: str) -> list[float]:
        """Packed padding-free on BERT-style encoders (CPU), padded and length-sorted otherwise."""
        if path == "packed":
            return score_packed(self.model, seqs, batch_size, max_tokens)
        return score_sequences(self.model, seqs, self.tokenizer.pad_token_id, batch_size, max_tokens)

    def score_groups(self, groups: list[list], batch_size: int = 16, max_tokens: int = 16384):
        """Rewards for groups of :class:`rewardlab.data.Text` that share a prompt (a pair, K
        completions), as a list per group, and the truncation counts."""
        details, counts = self.group_details(groups, False, batch_size, max_tokens)
        return [[d["reward"] for d in g] for g in details], counts

    def group_details(self, groups: list[list], per_token: bool = False, batch_size: int = 16,
                      max_tokens: int = 16384) -> tuple[list[list[dict]], Counts]:
        """:meth:`score_details` per group of texts that share a prompt. On the scalar path each
        prompt is encoded once for all its completions, across rows too (exact, see
        shared_prompt.py); truncation is counted per group."""
        if not self.rules.ONE_REWARD_HEAD:  # a kind that compares compares each group's texts, never across groups
            flat, at, idx = [t for g in groups for t in g], 0, []
            for g in groups:
                idx.append(list(range(at, at + len(g))))
                at += len(g)
            details, counts = self.rules.score_texts(self, flat, per_token, batch_size, max_tokens, True, idx)
            return _split(details, groups), counts
        encoded, counts = encode_groups(self.tokenizer, groups, self.max_length, cut_completion=True)
        every = [s for g in encoded for s in g.sequences]
        path = forward_path(self.model)
        flat = self._score_shared(every, batch_size, max_tokens) if len(every) > 1 and path == "shared" else \
            self._score_flat(every, batch_size, max_tokens, path)
        return _split([self.rules.readout(_row(r), self.settings, per_token) for r in flat], groups), \
            counts

    def score(self, prompts: list[str], completions: list[str], batch_size: int = 16,
              max_tokens: int = 16384) -> list[float]:
        """One reward per (prompt, completion), batched. Prompts are plain text (apply a chat
        template yourself, or pass message lists through ``rewardlab score``)."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        texts = [plain_text(p, c, self.tokenizer) for p, c in zip(prompts, completions)]
        return self.score_texts(texts, batch_size, max_tokens)[0]


def _row(reward) -> torch.Tensor:
    """A scalar path's reward as the (1, N) outputs a kind's readout reads (N reward heads: a list)."""
    return torch.tensor([reward if isinstance(reward, list) else [reward]])


def _split(flat: list, groups: list[list]) -> list[list]:
    """A flat list cut back into the sizes of ``groups``."""
    out, pos = [], 0
    for g in groups:
        out.append(flat[pos:pos + len(g)])
        pos += len(g)
    return out
