"""What a model kind is: the whole interface, written down once.

A kind is a module (``kinds/preference.py``, ``kinds/orm.py``, ...) that provides every member
of :class:`Kind`. Training (``training/loop.py``), scoring and serving (``inference/``,
``serve/``), evaluation and reports (``cli/``) only ever call these members; none of them
compares a kind's name. A new kind is one new module plus one line in ``kinds/__init__.py``
(or a ``kinds.register(module)`` call); ``tests/kinds/test_protocol.py`` checks that every
registered kind provides all of it, with these parameter names.

Words used below: a *row* is what the user wrote (a dict); an *example* is what the kind's
parser makes of it; an *item* is an (example, encoding) pair the training loop batches;
*outputs* are the head's outputs; *obj* is the kind's own ``Options`` (from the run's flags, or
as saved with a model); *settings* is what training saved with the model (``config.rewardlab``:
the kind, its options, head settings).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable


@runtime_checkable
class Kind(Protocol):
    NAME: str
    """The name in ``--kind`` and in a saved model's ``config.rewardlab["kind"]``."""
    Options: type
    """The kind's option group: a dataclass of documented fields (``rewardlab.config.option``),
    flat flags and YAML keys of ``train``, under the kind's name in ``--help``; its
    ``__post_init__`` holds the rules among them. Setting another kind's option is an error
    (:func:`rewardlab.kinds.options`)."""
    STATS: tuple[str, ...]
    """Step statistics the loss returns, summed over a step's micro-batches and processes."""
    ONE_REWARD_HEAD: bool
    """True when the head's single output at a text's last token is its reward: scoring then
    takes the scalar path (prompts shared across rows, the server's prefix cache)."""
    COMPARES: bool
    """True when a text's reward depends on the other completions of its prompt scored with it
    (a pairwise judge): the server then scores each request on its own, never batched with
    another request's texts."""
    FORMATS: tuple[str, ...]
    """``eval --format`` values this kind's models are scored with (besides ``auto``)."""
    forward_module: Callable
    """``forward_module(model, attention)``: the ``nn.Module`` the training loop wraps; called
    on a batch it returns the outputs the loss reads."""

    def head(self, obj, data_path: str = "") -> dict:
        """The head: ``{"head": "sequence" | "token" | "lm", "num_labels": N}``, optionally
        ``new_tokens`` (added to the tokenizer), ``labels`` (output names), ``settings`` (saved
        with the model), ``token_settings`` (a function of the tokenizer giving more settings:
        token ids), ``fixed`` (``Options`` fields fixed from the data) and ``fixed_by_model`` (a
        function of the loaded backbone giving ``Options`` fields fixed from it)."""

    def describe(self, obj) -> str:
        """One line for the start of a run."""

    def parser(self, obj) -> Callable:
        """``parse(row, tokenizer, where, n, allow_empty, chat) -> example`` (DataError on a bad row)."""

    def check(self, example, where: str, obj) -> None:
        """What the loss needs of an example, as a one-line DataError."""

    def encode(self, tokenizer, examples: list, max_length: int, obj, num_proc: int = 1,
               cache_dir: str = "") -> tuple[list, Any]:
        """Examples -> items (example, encoding) and the truncation ``Counts``."""

    def units(self, item, obj) -> int:
        """What the exact accumulation rule counts in an item (pairs, tokens, steps...)."""

    def batch(self, items: list, pad_id: int, path: str, device) -> dict:
        """Items -> the tensors of one forward pass on ``path`` (shared, packed or padded)."""

    def loss(self, outputs, items: list, obj) -> tuple[Any, dict]:
        """Summed loss over the items' units, and the step statistics named in ``STATS``."""

    def summarize(self, sums: dict) -> dict:
        """Step statistics -> the numbers shown in the progress bar and metrics.jsonl."""

    def texts(self, example) -> list:
        """The ``Text`` items scored for an example (the key of ``eval --scores-cache``)."""

    def score(self, model, tokenizer, examples: list, max_length: int, batch_size: int = 16,
              obj=None) -> tuple[list, Any]:
        """Evaluation outputs per example (what ``metrics`` reads) and the truncation ``Counts``."""

    def metrics(self, examples: list, outputs: list, obj) -> dict:
        """The kind's evaluation metrics."""

    def format_eval(self, metrics: dict) -> str:
        """The evaluation summary as printed by ``rewardlab eval``."""

    def report(self, path: str, metrics: dict, examples: list, outputs: list, model: str, data: str, obj) -> str:
        """Write ``eval --report``'s HTML page; returns its path."""

    def read_mode(self, per_token: bool) -> str:
        """Where a scored text's head outputs are read: 'sequence', 'last', 'tokens' or 'steps'."""

    def readout(self, outputs, settings: dict, per_token: bool) -> dict:
        """One scored text's answer from what the kind read of it (for most kinds its head
        outputs, reads x labels; NaN rows were cut off by truncation): always ``reward``, plus the fields this kind adds to a scored row and a
        served answer (``step_rewards``, ``values``, ``attributes``, ``token_rewards``...)."""

    def scored_point(self, text, settings: dict):
        """The ``Point`` a ``Text`` sent to be scored becomes (its steps marked, a question
        appended...); ``readout`` reads its outputs."""

    def score_texts(self, rm, texts: list, per_token: bool, batch_size: int, max_tokens: int,
                    share_prefixes: bool, groups: list | None = None) -> tuple[list, Any]:
        """How a :class:`rewardlab.inference.RewardModel` (``rm``: its model, tokenizer,
        settings) scores texts when ``ONE_REWARD_HEAD`` is False: one answer per text and the
        truncation ``Counts``. Most kinds score each text alone (``points.score_texts``:
        ``scored_point`` -> forward -> ``readout``); an implicit PRM also runs its reference
        model; a kind that ``COMPARES`` compares the texts of each group in ``groups`` (lists of
        indices: a row's completions), or without groups the texts of one prompt."""

    def prepare(self, model, items: list, obj, device) -> list:
        """Training items once the model is built, before the first step (on resume too,
        before the checkpoint is loaded): an implicit PRM adds the reference model's
        log-probabilities here. Most kinds return the items as they are."""

    def step_marker(self, settings: dict) -> str | None:
        """The text that ends each step of a ``steps`` row (process reward models), else None."""


def members() -> dict[str, bool]:
    """Every member of :class:`Kind`: name -> whether it is a function."""
    out = {name: False for name in Kind.__annotations__}
    out.update({name: True for name, v in vars(Kind).items() if callable(v) and not name.startswith("_")})
    return out
