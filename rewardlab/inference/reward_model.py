"""The :class:`RewardModel` scoring API: a trained reward model folder, its tokenizer, its typed
settings, and the score-time options it reads with. Every way of scoring (``score``,
``score_texts``, ``score_details``, ``group_details``; eval, the server, training's evaluation)
ends in :meth:`RewardModel.score_details`, which hands the texts to the model's kind
(``score_texts`` in rewardlab/kinds/): one scorer."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from .. import kinds
from ..config import ENSEMBLE_OPTIONS, ModelSettings, ScoreOptions, score_options
from ..errors import ConfigError, ModelError
from ..kinds import ScoreCall
from ..models.backbone import ensure_pad_token
from ..models.lora import load_adapter
from .ensemble import Ensemble, is_ensemble
from .scoring import Scores


class RewardModel(Scores):
    """A trained reward model with its tokenizer: ``RewardModel.from_pretrained(dir).score(prompts, completions)``.

    ``settings``: what training saved (:class:`rewardlab.config.ModelSettings`; read from the
    model's config when not given), never changed here. ``options``: score-time options
    (:class:`rewardlab.config.ScoreOptions`, a dict of its fields, or keywords of
    :meth:`with_options`): a PRM's aggregate, a verifier's samples, an ensemble's aggregate...
    An option the model does not take is an error naming it. ``max_length`` (0: as trained) is
    kept within the model's positions; ``capped`` says so when it was not."""

    def __init__(self, model: nn.Module, tokenizer, max_length: int = 0, device: str | None = None, *,
                 settings: ModelSettings | None = None, options: ScoreOptions | dict | None = None, name: str = ""):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if next(model.parameters()).device != self.device:
            model = model.to(self.device)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.settings = settings if settings is not None else ModelSettings.of(model)
        # A length asked for is kept within the model's positions (and said); the trained one fits.
        self.max_length, self.capped = _fitting(max_length, model) if max_length else (self.settings.max_length, None)
        self.kind = self.settings.kind
        self.rules = kinds.of_model(self.settings, name or "this model")  # the kind: how texts are read and scored
        self.chat = self.settings.apply_chat_template  # plain-text rows go through the chat template
        self._set_options(score_options(options))

    def _set_options(self, options: ScoreOptions) -> None:
        self.options = options
        self.kind_options = kinds.scoring_options(self.rules, self.settings, options)  # this model's reading
        wanted = [k for k in ENSEMBLE_OPTIONS if k in options.given()]
        if wanted and self.ensemble_size == 1:
            flags = ", ".join("--" + k.replace("_", "-") for k in wanted)
            raise ConfigError(f"{flags}: {self.name or 'the model'} is a single reward model, not an ensemble (an "
                              "ensemble folder from `rewardlab ensemble`, or a model trained with --heads N)")

    def with_options(self, options: ScoreOptions | dict | None = None, **more) -> "RewardModel":
        """The same loaded model read with other score-time options (nothing is copied but this view)."""
        view = copy.copy(self)
        view._set_options(score_options(options, **more))
        return view

    @property
    def ensemble_size(self) -> int:
        """Rewards read per text: N for a model trained with N reward heads, else 1."""
        return self.settings.ensemble_size

    @property
    def reward_stats(self):
        """The reward statistics saved at training (``--reward-stats``), or None."""
        return self.settings.reward_stats

    @property
    def reading(self) -> dict:
        """How a model with several reward heads combines them in this view (aggregate,
        uncertainty_coef, members); the mean for a model trained with --heads N, unless options say."""
        o, heads = self.options, self.ensemble_size > 1
        return {"aggregate": o.ensemble_aggregate if heads and o.ensemble_aggregate != "saved" else "mean",
                "uncertainty_coef": o.uncertainty_coef if o.uncertainty_coef >= 0 else 1.0,
                "members": heads and o.members}

    @property
    def step_marker(self) -> str | None:
        """What ends each step of a ``steps`` row (process reward models); None for other kinds."""
        return self.rules.step_marker(self.kind_options)

    @classmethod
    def from_pretrained(cls, path: str, device: str | None = None, max_length: int = 0,
                        trust_remote_code: bool = False, dtype: torch.dtype | None = None,
                        options: ScoreOptions | dict | None = None) -> "RewardModel":
        """Load a reward model folder (or a LoRA adapter folder, or an ensemble folder: then an
        :class:`rewardlab.inference.ensemble.Ensemble` of its members, loaded alike); ``dtype``
        e.g. torch.bfloat16 for a large model on a GPU (default: as saved, fp32 for rewardlab's
        own folders); ``options``: score-time options."""
        options = score_options(options)
        if is_ensemble(path):
            for_members = ScoreOptions(**{k: v for k, v in options.__dict__.items() if k not in ENSEMBLE_OPTIONS})
            return Ensemble.from_pretrained(path, lambda member: cls.from_pretrained(
                member, device, max_length, trust_remote_code, dtype, for_members), options)
        if Path(path, "adapter_config.json").exists():
            model, tokenizer, trained = load_adapter(path, trust_remote_code)
            return cls(model.to(dtype) if dtype else model, tokenizer, max_length or trained, device, options=options,
                       name=path)
        model, tokenizer = _load_folder(path, trust_remote_code, dtype)
        return cls(model, tokenizer, max_length, device, options=options, name=path)

    def save_pretrained(self, path: str) -> None:
        """A standard Hugging Face folder: the weights, the tokenizer, and these settings (with this
        view's max_length) in config.json; the loaded model's own config is left as it was."""
        before = getattr(self.model.config, "rewardlab", None)
        self.model.config.rewardlab = self.settings.replace(max_length=self.max_length).to_dict()
        try:
            self.model.save_pretrained(path, safe_serialization=True)
        finally:
            self.model.config.rewardlab = before
        self.tokenizer.save_pretrained(path)

    def score_details(self, texts: list, batch_size: int = 16, max_tokens: int = 16384, share_prefixes: bool = True,
                      encoded: list | None = None, cache=None, groups: list | None = None):
        """Everything the model's kind reads from each text, in input order: ``reward`` always,
        and e.g. ``step_rewards`` (prm), ``values`` (value), ``attributes`` (regression),
        ``token_rewards`` (orm with ``per_token``); a read cut off by truncation is None (JSON has
        no NaN). And the counts (truncated; ``sent`` and ``processed`` tokens).

        Sequences are sorted by length before batching, so the result does not depend on the
        batch size or on the order of the inputs. ``groups``: lists of indices of texts that
        belong together (a row's completions): a kind that compares texts (a pairwise judge)
        compares within a group only, and truncation is counted per group; without groups a
        judge compares the texts of one prompt. On causal backbones, texts that begin with the
        same tokens share one encoding of that prefix (``share_prefixes``; exact either way).
        ``encoded``: the texts already tokenized by :func:`rewardlab.data.encode.encode_texts`
        (the server does it to check lengths). ``cache``: a
        :class:`rewardlab.models.prefix_cache.PrefixCache` (a server's) whose prompts are reused.
        """
        how = self.reading
        call = ScoreCall(self.kind_options, self.options.per_token, groups, batch_size, max_tokens, share_prefixes,
                         encoded, cache, heads_aggregate=how["aggregate"], uncertainty_coef=how["uncertainty_coef"],
                         members=how["members"])
        return self.rules.score_texts(self, texts, call)


def _fitting(max_length: int, model) -> tuple[int, str | None]:
    """``max_length`` within the model's positions, and the note to say when it was capped."""
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(positions, int) and 0 < positions < max_length:
        return positions, f"max_length {max_length} is more than the model's {positions} positions: using {positions}"
    return max_length, None


def _load_folder(path: str, trust_remote_code: bool, dtype):
    """A saved reward model folder's model (the auto class its head needs) and tokenizer."""
    from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification,
                              AutoModelForTokenClassification, AutoTokenizer)

    if not Path(path, "config.json").exists():
        raise ModelError(f"{path}: not a reward model folder (no config.json); train one with `rewardlab train`")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        raw = getattr(config, "rewardlab", None)
        settings = ModelSettings.from_dict(raw, path)
        archs, head = config.architectures or [], settings.head if raw else None
        auto = AutoModelForCausalLM if head == "lm" else AutoModelForTokenClassification \
            if head == "token" or any(a.endswith("ForTokenClassification") for a in archs) else \
            AutoModelForCausalLM if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs) else \
            AutoModelForSequenceClassification
        model = auto.from_pretrained(path, trust_remote_code=trust_remote_code, **({"dtype": dtype} if dtype else {}))
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{path}: cannot load the reward model: {str(e).splitlines()[0]}") from None
    if auto is AutoModelForCausalLM and not raw:
        raise ModelError(f"{path}: a causal language model without rewardlab's settings is not a reward model; "
                         "judge with it (`rewardlab judge`) or train a generative verifier (--kind genrm)")
    outputs = settings.num_labels  # a folder without rewardlab's settings: one reward
    if settings.head != "lm" and model.config.num_labels != outputs:
        raise ModelError(f"{path}: a reward model has {outputs} output{'s' if outputs > 1 else ''}, this one has "
                         f"{model.config.num_labels}")
    ensure_pad_token(tokenizer, model)
    return model, tokenizer
