"""What a model kind is: the interface, by role, written down once.

A kind is a module (``kinds/preference.py``, ``kinds/orm.py``, ...) registered with
``kinds.register(module)``. Training (``training/``) uses its training role, the one scorer
(``inference/reward_model.py``) its scoring role, evaluation (``eval/evaluate.py``) its
evaluation role; none of them compares a kind's name or reads a flag of it. Every member below
marked *optional* has a default (:data:`DEFAULTS`, the pointwise kinds' behaviour: one
completion per row, outputs read at the positions that carry a label), so a module writes only
what differs. ``tests/kinds/test_protocol.py`` checks every registered kind against this file.

**What a new pointwise kind must write** (``tests/kinds/test_toy_kind.py`` is one, whole):
``NAME``, ``parser`` (rows -> examples), ``loss``, ``readout`` (one scored text's answer) and
``metrics``: five members. Most kinds also write ``Options``, ``head`` and ``read_mode``.

Words used below: a *row* is what the user wrote (a dict); an *example* is what the kind's
parser makes of it; an *item* is an (example, encoding) pair the training loop batches;
*outputs* are the head's outputs; *obj* is the kind's own ``Options`` (from the run's flags, or
as saved with a model and changed by score-time options); *settings* is what training saved with
the model (:class:`rewardlab.config.ModelSettings`); a *detail* is what the scorer answers for one
text: a dict with ``reward`` and whatever else the kind reads (``step_rewards``, ``values``...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol


@dataclass(frozen=True)
class HeadSpec:
    """The head a kind puts on the backbone (``head(obj, data)``), and what it saves with the model."""

    head: str = "token"
    """'sequence' (one output vector per text), 'token' (one per token) or 'lm' (the backbone's
    own language-model head)."""
    num_labels: int = 1
    new_tokens: tuple[str, ...] = ()
    """Special tokens added to the tokenizer (a PRM's step token)."""
    labels: tuple[str, ...] = ()
    """Output names (saved as the model's ``id2label``)."""
    ensemble_size: int = 1
    """Rewards per text (independently initialised heads on one backbone)."""
    extras: dict = field(default_factory=dict)
    """Saved with the model (``settings.extras``): what scoring needs that the options do not hold."""
    token_extras: Callable[[Any], dict] | None = None
    """More extras from the tokenizer once it is loaded (token ids)."""
    fixed: dict = field(default_factory=dict)
    """``Options`` fields fixed from the data (output names...), saved as trained."""
    fixed_by_model: Callable[[Any], dict] | None = None
    """``Options`` fields fixed from the loaded backbone (causal or not...)."""


@dataclass(frozen=True)
class ScoreCall:
    """One call of the scorer, as a kind's ``score_texts`` gets it."""

    options: Any
    """The kind's ``Options``: as the model was trained, with this call's score-time options."""
    per_token: bool = False
    groups: list | None = None
    """Lists of text indices that belong together (a row's completions): a kind whose rewards
    compare texts compares within a group only. None: each text alone."""
    batch_size: int = 16
    max_tokens: int = 16384
    share_prefixes: bool = True
    encoded: list | None = None
    """The texts already tokenized by ``data.encode.encode_texts`` (a server checks lengths first)."""
    cache: Any = None
    """A server's ``models.prefix_cache.PrefixCache``."""
    heads_aggregate: str = "mean"
    """A model with several reward heads: their aggregate, its coef, and whether each head's reward is returned."""
    uncertainty_coef: float = 1.0
    members: bool = False


class Scorable(Protocol):
    """What ``score_texts`` gets to score with (a :class:`rewardlab.inference.RewardModel`)."""

    model: Any
    tokenizer: Any
    max_length: int
    settings: Any


class Rows(Protocol):
    """Every role reads rows through the kind."""

    NAME: str
    """The name in ``--kind`` and in a saved model's settings."""
    Options: type
    """*Optional* (no options). The kind's option group: a dataclass of documented fields
    (``rewardlab.config.option``), flat flags and YAML keys of ``train``. A field with
    ``score=NAME`` may also be changed at scoring time by the score option NAME
    (:class:`rewardlab.config.ScoreOptions`)."""

    def parser(self, obj) -> Callable:
        """``parse(row, tokenizer, where, n, allow_empty, chat) -> example`` (DataError on a bad row)."""

    def describe(self, obj) -> str:
        """*Optional*. One line for the start of a run."""


class Training(Protocol):
    """What the training loop needs."""

    STATS: tuple[str, ...]
    """*Optional* (none). Step statistics the loss returns, summed over a step's micro-batches and processes."""

    def head(self, obj, data=None) -> HeadSpec:
        """*Optional* (one output per token). ``data``: the training rows' source (a kind may read names from it)."""

    def check(self, example, where: str, obj) -> None:
        """*Optional*. What the loss needs of an example, as a one-line DataError."""

    def encode(self, tokenizer, examples: list, max_length: int, obj, num_proc: int = 1,
               cache_dir: str = "") -> tuple[list, Any]:
        """*Optional* (read where ``read_mode`` says). Examples -> items and the truncation ``Counts``."""

    def units(self, item, obj) -> int:
        """*Optional* (labelled positions). What the exact accumulation rule counts in an item."""

    def batch(self, items: list, pad_id: int, path: str, device) -> dict:
        """*Optional*. Items -> the tensors of one forward pass on ``path`` (shared, packed or padded)."""

    def forward_module(self, model, attention: str):
        """*Optional* (the head's outputs). The ``nn.Module`` the loop wraps; called on a batch it
        returns the outputs the loss reads."""

    def loss(self, outputs, items: list, obj) -> tuple[Any, dict]:
        """Summed loss over the items' units, and the step statistics named in ``STATS``."""

    def summarize(self, sums: dict) -> dict:
        """*Optional*. Step statistics -> the numbers shown in the progress bar and metrics.jsonl."""

    def prepare(self, model, items: list, obj, device) -> list:
        """*Optional*. Training items once the model is built, before the first step (an
        implicit PRM adds its reference log-probabilities here)."""


class Scoring(Protocol):
    """What the one scorer needs: text in, a detail per text out."""

    PER_TOKEN: bool
    """*Optional* (False). Whether the kind answers per-token rewards (score option ``per_token``)."""

    def step_marker(self, obj) -> str | None:
        """*Optional* (None). The text that ends each step of a ``steps`` row (process reward models)."""

    def read_mode(self, per_token: bool) -> str:
        """*Optional* ('last'). Where a scored text's head outputs are read: 'sequence', 'last',
        'tokens' or 'steps'."""

    def scored_point(self, text, call: ScoreCall):
        """*Optional* (the text as it is, its steps marked). The ``Point`` a scored ``Text`` becomes."""

    def readout(self, outputs, settings, call: ScoreCall) -> dict:
        """One scored text's detail from its head outputs (reads x labels; NaN rows were cut off
        by truncation): always ``reward``, plus what this kind adds to a scored row and a served answer."""

    def score_texts(self, rm: Scorable, texts: list, call: ScoreCall) -> tuple[list[dict], Any]:
        """*Optional* (``scored_point`` -> the forward at ``read_mode`` -> ``readout``, each text
        alone). One detail per text and the truncation ``Counts``: a kind scored otherwise writes
        it (a scalar reward shares prompts and a server's prefix cache; a judge compares the
        texts of each group; an implicit PRM also runs its reference model)."""


class Evaluation(Protocol):
    """What ``rewardlab.evaluate`` and its reports need."""

    FORMATS: tuple[str, ...]
    """*Optional* (none). ``eval --format`` values of the kind's own (pairs, processbench...), beside the
    benchmarks of rewardlab/eval/benchmarks/, which every kind is scored on."""
    HEADLINE: str
    """*Optional* ('accuracy'). The metric an evaluation of this kind is known by."""

    def texts(self, example) -> list:
        """*Optional* (the example's one text). The ``Text`` items scored for an example."""

    def metrics(self, examples: list, details: list, obj) -> dict:
        """The kind's evaluation metrics; ``details[i]``: the details of example i's texts."""

    def format_eval(self, metrics: dict) -> str:
        """*Optional* (a plain table). The evaluation summary as printed by ``rewardlab eval``."""

    def report(self, path: str, metrics: dict, examples: list, details: list, model: str, data: str, obj) -> str:
        """*Optional* (the metrics alone). Write ``eval --report``'s HTML page; returns its path."""


ROLES = (Rows, Training, Scoring, Evaluation)
REQUIRED = ("NAME", "parser", "loss", "readout", "metrics")
"""What a kind must write; ``readout`` may be left out by a kind that writes ``score_texts``."""


def members() -> dict[str, bool]:
    """Every member of the interface: name -> whether it is a function."""
    out: dict[str, bool] = {}
    for role in ROLES:
        out.update({name: False for name in role.__annotations__})
        out.update({name: True for name, v in vars(role).items() if callable(v) and not name.startswith("_")})
    return out
