"""The :class:`RewardModel` scoring API: a trained reward model folder and its tokenizer."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..data.encode import Counts, encode_groups, encode_texts, fit_groups
from ..data.pointwise import text_point
from ..data.text import plain_text
from ..errors import ModelError
from .backbone import ensure_pad_token, score_sequences
from .lora import load_adapter
from .packed_encoder import score_packed, supports_packed_encoder
from .readout import READ, read_fields, score_points
from .shared_prompt import (can_use_prefix_cache, group_by_prefix, score_groups_shared, supports_shared_prompt,
                            tokens_processed)


class RewardModel:
    """A trained reward model with its tokenizer: ``RewardModel.from_pretrained(dir).score(prompts, completions)``."""

    def __init__(self, model: nn.Module, tokenizer, max_length: int = 512, device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        # Saved at training time: how to encode text and read the head (kind, step marker, ...).
        self.settings = dict(getattr(self.model.config, "rewardlab", None) or {})
        self.kind = self.settings.get("kind", "preference")
        # Plain-text rows go through the chat template when the model was trained that way.
        self.chat = bool(self.settings.get("apply_chat_template"))
        self.last_tokens = (0, 0)  # (tokens the last score_texts processed, tokens it was given)
        # A PrefixCache (models/prefix_cache.py) for a model that no longer trains (the server):
        # prompts scored in one call are reused by the next ones.
        self.prefix_cache = None

    @property
    def step_marker(self) -> str | None:
        """A process reward model's step marker (separator or step token); None for other kinds."""
        if self.kind != "prm":
            return None
        obj = self.settings.get("objective", {})
        return obj.get("step_token") or obj.get("step_separator", "\n")

    @classmethod
    def from_pretrained(cls, path: str, device: str | None = None, max_length: int = 0,
                        trust_remote_code: bool = False, dtype: torch.dtype | None = None) -> "RewardModel":
        """Load a reward model folder (or a LoRA adapter folder); ``dtype`` e.g. torch.bfloat16
        for a large model on a GPU (default: as saved, fp32 for rewardlab's own folders)."""
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification, \
            AutoTokenizer

        if Path(path, "adapter_config.json").exists():
            model, tokenizer, trained = load_adapter(path, trust_remote_code)
            return cls(model.to(dtype) if dtype else model, tokenizer, max_length or trained, device)
        if not Path(path, "config.json").exists():
            raise ModelError(f"{path}: not a reward model folder (no config.json); train one with `rewardlab train`")
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
            config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
            per_token = any(a.endswith("ForTokenClassification") for a in (config.architectures or []))
            auto = AutoModelForTokenClassification if per_token else AutoModelForSequenceClassification
            model = auto.from_pretrained(path, trust_remote_code=trust_remote_code, **({"dtype": dtype} if dtype else {}))
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"{path}: cannot load the reward model: {str(e).splitlines()[0]}") from None
        kind = (getattr(model.config, "rewardlab", None) or {}).get("kind", "preference")
        if kind == "preference" and model.config.num_labels != 1:
            raise ModelError(f"{path}: a reward model has one output, this one has {model.config.num_labels}")
        ensure_pad_token(tokenizer, model)
        trained = (getattr(model.config, "rewardlab", None) or {}).get("max_length", 512)
        return cls(model, tokenizer, max_length or trained, device)

    def save_pretrained(self, path: str) -> None:
        settings = dict(getattr(self.model.config, "rewardlab", None) or {})
        settings["max_length"] = self.max_length
        self.model.config.rewardlab = settings
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)

    def score_texts(self, texts: list, batch_size: int = 16, max_tokens: int = 16384, share_prefixes: bool = True,
                    encoded: list | None = None):
        """Rewards for :class:`rewardlab.data.Text` items, in input order, and the truncation counts.

        Sequences are sorted by length before batching, so the result does not depend on the
        batch size or on the order of the inputs. On causal backbones, texts that begin with the
        same tokens are found from their token ids and share one encoding of that prefix
        (``share_prefixes``; exact either way). ``encoded``: the texts already tokenized by
        :func:`rewardlab.data.encode.encode_texts` (the server does it to check lengths).
        """
        if self.kind != "preference":
            details, counts = self.score_details(texts, batch_size=batch_size, max_tokens=max_tokens)
            return [d["reward"] for d in details], counts
        if encoded is None:
            encoded = encode_texts(self.tokenizer, texts)
        elif len(encoded) != len(texts):
            raise ValueError(f"{len(encoded)} encodings for {len(texts)} texts")
        groups, counts = fit_groups([1] * len(texts), [e[:3] for e in encoded], self.max_length, cut_completion=True)
        seqs = [g.sequences[0] for g in groups]
        cached = self.prefix_cache is not None and can_use_prefix_cache(self.model)
        if share_prefixes and (len(seqs) > 1 or cached) and supports_shared_prompt(self.model):
            return self._score_shared(seqs, batch_size, max_tokens), counts
        self.last_tokens = (sum(map(len, seqs)),) * 2
        return self._score_flat(seqs, batch_size, max_tokens), counts

    def _score_shared(self, seqs: list[list[int]], batch_size: int, max_tokens: int) -> list[float]:
        """Independent texts that start with the same tokens (the samples of one prompt) go
        through the shared-prompt forward together, their common prefix encoded once."""
        found = group_by_prefix(seqs)
        processed, sent = tokens_processed([[seqs[i] for i in g] for g in found])
        cache = self.prefix_cache
        reused = cache.reused_tokens if cache is not None else 0
        rewards = score_groups_shared(self.model, [[seqs[i] for i in g] for g in found], self.tokenizer.pad_token_id,
                                      batch_size, max_tokens, cache)
        self.last_tokens = (processed - ((cache.reused_tokens if cache is not None else 0) - reused), sent)
        out = [0.0] * len(seqs)
        for g, r in zip(found, rewards):
            for i, x in zip(g, r):
                out[i] = x
        return out

    def score_details(self, texts: list, per_token: bool = False, batch_size: int = 16,
                      max_tokens: int = 16384, share_prefixes: bool = True) -> tuple[list[dict], Counts]:
        """Everything the model's kind reads from each text (see models/readout.py): ``reward``
        always; ``step_rewards`` (prm), ``values`` (value), ``attributes`` (regression),
        ``token_rewards`` (orm with ``per_token``)."""
        if self.kind == "preference":
            rewards, counts = self.score_texts(texts, batch_size, max_tokens, share_prefixes)
            return [{"reward": r} for r in rewards], counts
        read = "tokens" if self.kind == "orm" and per_token else READ[self.kind]
        points = [text_point(t, self.step_marker) for t in texts]
        outputs, counts = score_points(self.model, self.tokenizer, points, self.max_length, read, batch_size,
                                       max_tokens, share_prefixes)
        return [read_fields(self.kind, o, self.settings, per_token) for o in outputs], counts

    def _score_flat(self, seqs: list[list[int]], batch_size: int, max_tokens: int) -> list[float]:
        """Packed padding-free on BERT-style encoders (CPU), padded and length-sorted otherwise."""
        if supports_packed_encoder(self.model):
            return score_packed(self.model, seqs, batch_size, max_tokens)
        return score_sequences(self.model, seqs, self.tokenizer.pad_token_id, batch_size, max_tokens)

    def score_groups(self, groups: list[list], batch_size: int = 16, max_tokens: int = 16384):
        """Rewards for groups of :class:`rewardlab.data.Text` that share a prompt (a pair, K
        completions), as a list per group, and the truncation counts. On causal backbones each
        prompt is encoded once for all its completions (exact, see shared_prompt.py)."""
        if self.kind != "preference":
            flat, counts = self.score_texts([t for g in groups for t in g], batch_size, max_tokens)
            out, pos = [], 0
            for g in groups:
                out.append(flat[pos:pos + len(g)])
                pos += len(g)
            return out, counts
        encoded, counts = encode_groups(self.tokenizer, groups, self.max_length, cut_completion=True)
        seqs = [g.sequences for g in encoded]
        every = [s for g in seqs for s in g]
        # Prefixes are found across rows too (the same prompt in several rows is encoded once).
        shared = len(every) > 1 and supports_shared_prompt(self.model)
        flat = self._score_shared(every, batch_size, max_tokens) if shared else \
            self._score_flat(every, batch_size, max_tokens)
        out, pos = [], 0
        for g in seqs:
            out.append(flat[pos:pos + len(g)])
            pos += len(g)
        return out, counts

    def score(self, prompts: list[str], completions: list[str], batch_size: int = 16,
              max_tokens: int = 16384) -> list[float]:
        """One reward per (prompt, completion), batched. Prompts are plain text (apply a chat
        template yourself, or pass message lists through ``rewardlab score``)."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        texts = [plain_text(p, c, self.tokenizer) for p, c in zip(prompts, completions)]
        return self.score_texts(texts, batch_size, max_tokens)[0]
