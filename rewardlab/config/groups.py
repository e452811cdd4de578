"""The config groups and each command's config: typed dataclasses whose fields carry their
documentation (see the package docstring)."""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .flags import load_config


def _f(default: Any, help: str, choices: tuple | None = None, resume: bool = False, bare: str | None = None,
       repeat: bool = False, low: float | None = None, above: float | None = None, score: str | None = None) -> Any:
    """A documented field. ``bare``: the value of the flag given alone (``--resume`` = ``--resume latest``);
    ``repeat``: the flag may be given several times (a list of strings); ``low`` / ``above``: a
    number must be >= low / > above (checked where the config is built, so a batch size of 0
    is refused at once instead of looping). ``score``: a kind's option that scoring may change
    too, by the score option of that name (:class:`ScoreOptions`, or eval's ``threshold``)."""
    return field(default=default, metadata={"help": help, "choices": choices, "resume": resume, "bare": bare,
                                            "repeat": repeat, "low": low, "above": above, "score": score})


def check_choices(obj) -> None:
    """Every field with fixed choices holds one of them, and every number is finite and within
    its declared bounds (a one-line error otherwise)."""
    for f in dataclasses.fields(obj):
        value, choices = getattr(obj, f.name), f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{f.name} must be one of {', '.join(map(str, choices))}, got {value!r}")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{f.name} must be a finite number, got {value}")
        low, above = f.metadata.get("low"), f.metadata.get("above")
        if low is not None and value < low:
            raise ConfigError(f"{f.name} must be >= {low:g}, got {value:g}")
        if above is not None and value <= above:
            raise ConfigError(f"{f.name} must be > {above:g}, got {value:g}")


RECOMMENDED_LR = {"minilm": 1e-4}  # measured on HH-RLHF (README, recipes); other backbones: DEFAULT_LR
DEFAULT_LR = 2e-5
LORA_LR = 2e-4  # measured on HH-RLHF (README, Defaults): 2e-5 learned nothing in 30 steps; PEFT practice 1e-4 to 2e-4


def default_lr(model: str, lora_r: int) -> tuple[float, str]:
    """The learning rate of a run that gives none (``--lr 0``), and where it comes from."""
    if lora_r:
        return LORA_LR, "the LoRA default"
    if model in RECOMMENDED_LR:
        return RECOMMENDED_LR[model], f"recommended for {model}"
    return DEFAULT_LR, "the full fine-tuning default"


@dataclass
class ColumnArgs:
    """Column names of your data, where they differ from rewardlab's (OpenRLHF's --prompt_key)."""

    prompt_key: str = _f("prompt", "Column holding the prompt.")
    chosen_key: str = _f("chosen", "Column holding the preferred completion of a pair.")
    rejected_key: str = _f("rejected", "Column holding the other completion of a pair.")
    completions_key: str = _f("completions", "Column holding the list of K completions of a group row.")
    ranking_key: str = _f("ranking", "Column holding a group row's ranking.")
    scores_key: str = _f("scores", "Column holding a group row's scores.")
    completion_key: str = _f("completion", "Column holding the one completion of a pointwise row (orm, value, "
                             "regression).")
    label_key: str = _f("label", "Column holding an orm row's outcome label.")
    steps_key: str = _f("steps", "Column holding a prm row's list of steps.")
    labels_key: str = _f("labels", "Column holding a prm row's step labels.")
    reward_key: str = _f("reward", "Column holding a value row's return.")
    ratings_key: str = _f("ratings", "Column holding a regression row's {attribute: rating} object.")

    def mapping(self) -> dict[str, str]:
        """rewardlab's name -> the user's name, for the columns that differ."""
        return {f.name.removesuffix("_key"): getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.name.removesuffix("_key")}


@dataclass
class BackboneArgs:
    """Backbone and how it is trained."""

    model: str = _f("minilm", "Backbone: a local Hugging Face folder, a hub name (online only), or a bundled alias: "
                    "minilm (MiniLM-L6 encoder) or smollm2 (SmolLM2-135M-Instruct).", resume=True)
    trust_remote_code: bool = _f(False, "Allow model code from the hub folder (off unless you trust it).")
    lora_r: int = _f(0, "LoRA rank (0: train all weights). The reward head is always trained and saved fully.",
                     resume=True, low=0)
    lora_alpha: int = _f(16, "LoRA scaling alpha.", resume=True, above=0)
    lora_dropout: float = _f(0.0, "Dropout on the LoRA branch, in [0, 1).", resume=True, low=0)
    load_in_4bit: bool = _f(False, "QLoRA: hold the backbone's linear layers in 4-bit NF4 (bitsandbytes, double "
                            "quantization) and train LoRA adapters on them; needs --lora-r. The head stays full "
                            "precision; the final model is the adapter merged into the full-precision base.",
                            resume=True)
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass: less memory, about 30 "
                                      "percent slower.")
    bf16: bool = _f(False, "bf16 autocast for the forward and backward (the loss stays fp32).", resume=True)
    disable_dropout: bool = _f(True, "Turn dropout off in the backbone (deterministic rewards, exact accumulation).",
                               resume=True)
    shared_prompt: bool = _f(True, "Causal backbones: encode each prompt once for all its completions; BERT-style "
                             "encoders on CPU: pack each micro-batch into one padding-free row. Both exact; "
                             "--no-shared-prompt uses the padded forward.")
    attention: str = _f("auto", "Kernel of the shared-prompt forward: blocks (one SDPA call per prompt group; "
                        "fastest on CPU), flex (torch flex_attention with a block-sparse mask, compiled; GPU), "
                        "auto (flex on CUDA with --bf16, blocks on CPU). Both are exact.",
                        choices=("auto", "blocks", "flex"))

    def __post_init__(self):
        check_choices(self)
        if self.lora_dropout >= 1:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.load_in_4bit and not self.lora_r:
            raise ConfigError("--load-in-4bit (QLoRA) trains LoRA adapters: also pass --lora-r, e.g. 16")


@dataclass
class InputArgs:
    """Training and evaluation data."""

    data: str = _f("", "Training rows: pairs (prompt/chosen/rejected, HH-style whole texts, or chat messages) or "
                   "groups (prompt + completions + ranking or scores); a .jsonl/.json/.parquet/.csv file, a saved "
                   "`datasets` folder, or a hub dataset name (online only). FILE[a:b] takes rows a..b-1.",
                   resume=True)
    eval_data: str = _f("", "Held-out rows, same formats as --data; evaluated every --eval-every steps and at the end.")
    eval_split: float = _f(0.0, "Without --eval-data: hold out this fraction of the training rows (seeded) for "
                           "evaluation, e.g. 0.05.", resume=True)
    apply_chat_template: bool = _f(False, "Render plain-text prompt/completions as a user turn and an assistant "
                                   "turn with the tokenizer's chat template (message-list columns always are).",
                                   resume=True)
    max_length: int = _f(512, "Maximum tokens per sequence (prompt + completion + end marker). Longer sequences "
                         "lose prompt tokens from the left; an example whose completion alone is too long is "
                         "skipped and counted.", resume=True, low=1)
    skip_bad_rows: bool = _f(False, "Leave out invalid rows (counted and listed) instead of stopping at the first.")
    allow_empty: bool = _f(True, "Accept empty completions (HH-RLHF has pairs where silence was preferred); they "
                           "are counted. --no-allow-empty makes them errors.")
    num_proc: int = _f(1, "Processes for tokenizing the training data (through datasets.map).", low=1)
    tokenized_cache: str = _f("", "Folder keeping tokenized training data (Arrow, memory-mapped): a rerun with the "
                              "same data, tokenizer and max_length loads it instead of tokenizing again. Empty: off.")
    streaming: bool = _f(False, "Read, check and tokenize the training data lazily (data larger than memory); "
                         "needs --max-steps. Order: a seeded shuffle buffer instead of a full permutation.",
                         resume=True)
    shuffle_buffer: int = _f(10000, "Examples held in the shuffle buffer with --streaming.", resume=True, low=1)
    group_by_length: bool = _f(False, "Put examples of similar length in the same step: less padding where the "
                               "padded forward runs (GPU encoders, --no-shared-prompt). Changes the data order.",
                               resume=True)

    def __post_init__(self):
        check_choices(self)
        if not 0.0 <= self.eval_split < 1.0:
            raise ConfigError(f"eval_split must be in [0, 1), got {self.eval_split}")
        if self.eval_split and self.eval_data:
            raise ConfigError("give either --eval-data or --eval-split, not both")
        if self.eval_split and self.streaming:
            raise ConfigError("--eval-split needs the whole data set; with --streaming give --eval-data")
        if self.streaming and self.group_by_length:
            raise ConfigError("--group-by-length needs the whole data set; it cannot be used with --streaming")


KIND_OPTIONS: dict[str, type] = {}
"""Each kind's option group, by kind name: the ``Options`` dataclass in ``rewardlab/kinds/<kind>.py``
(documented ``_f`` fields; its ``__post_init__`` holds the kind's own rules). Filled by
``rewardlab.kinds.register``: config sits below the kinds, so the kinds tell it their options."""


@dataclass
class ObjectiveArgs:
    """What the model learns: its kind, and every kind's own options (flat flags and YAML keys,
    grouped under each kind in ``--help``). A kind reads only its own group: ``of(kind)``."""

    kind: str = _f("preference", "Model kind (the registered kinds, rewardlab/kinds/; each one's options are "
                   "grouped below under its name).", resume=True)
    options: dict = field(default_factory=dict, metadata={"groups": KIND_OPTIONS})

    def __post_init__(self):
        check_choices(self)
        unknown = set(self.options) - set(KIND_OPTIONS)
        if unknown:
            raise ConfigError(f"options of unknown kinds: {', '.join(sorted(unknown))}")
        self.options = {name: self.options.get(name) or cls() for name, cls in KIND_OPTIONS.items()}

    def of(self, kind: str):
        """The options of one kind (its ``Options`` dataclass)."""
        return self.options[kind]

    def replaced(self, kind: str, **values) -> "ObjectiveArgs":
        """A copy with some of one kind's options changed."""
        return ObjectiveArgs(self.kind, {**self.options, kind: dataclasses.replace(self.options[kind], **values)})


@dataclass
class OptimArgs:
    """Optimisation: steps, batch, learning rate."""

    epochs: int = _f(1, "Passes over the data. One is the norm for reward models: more tends to overfit.",
                     resume=True, low=1)
    max_steps: int = _f(-1, "Stop after this many optimizer steps, >= 1 (-1: run all epochs).", resume=True)
    batch_size: int = _f(8, "Prompts per micro-batch (a prompt's completions are always in the same forward pass).",
                         resume=True, low=1)
    grad_accum: int = _f(1, "Micro-batches per optimizer step; the loss is averaged over the whole step, so "
                         "batch_size x grad_accum behaves exactly like one large batch.", resume=True, low=1)
    lr: float = _f(0.0, "Peak learning rate of AdamW. 0: with --lora-r 2e-4 (LoRA adapters); else the recommended "
                   "rate for the backbone (minilm 1e-4, measured on HH-RLHF; others 2e-5). Printed on the first "
                   "line.", resume=True, low=0)
    weight_decay: float = _f(0.0, "AdamW weight decay.", resume=True, low=0)
    warmup_ratio: float = _f(0.05, "Fraction of the optimizer steps spent in linear warmup.", resume=True, low=0)
    lr_schedule: str = _f("linear", "Decay after warmup.", choices=("linear", "cosine", "constant"), resume=True)
    max_grad_norm: float = _f(1.0, "Gradient clipping by global norm (0 disables).", resume=True, low=0)
    seed: int = _f(42, "Seed for the head initialisation and data order.", resume=True)

    def __post_init__(self):
        check_choices(self)
        if self.warmup_ratio > 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1], got {self.warmup_ratio}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"max_steps must be a number of steps >= 1, or -1 to run every epoch, got {self.max_steps}")


@dataclass
class RunArgs:
    """Output, checkpoints, logging."""

    output: str = _f("", "Output folder: the final model (standard Hugging Face folder), checkpoints/, metrics.jsonl.")
    resume: str = _f("", "Continue exactly where a run stopped: --resume alone takes the newest checkpoint in "
                     "--output, --resume DIR a given checkpoint folder.", bare="latest")
    eval_every: int = _f(0, "Evaluate on --eval-data every N optimizer steps (0: only at the end).", low=0)
    save_every: int = _f(100, "Write a resumable checkpoint every N optimizer steps (0: only on Ctrl-C).", low=0)
    save_total_limit: int = _f(1, "Checkpoints kept in OUTPUT/checkpoints (the oldest are removed; the final model "
                               "is always kept).", low=1)
    log_every: int = _f(10, "Append training metrics to metrics.jsonl every N optimizer steps.", low=1)
    eval_batch_size: int = _f(16, "Prompts per batch when evaluating.", low=1)
    reward_stats: bool = _f(False, "After training, score every training completion and save the rewards' mean "
                            "and std with the model (preference kind; `serve --normalize` uses them).")
    report_to: str = _f("", "Extra experiment trackers through accelerate: tensorboard, wandb (comma separated).")

    def __post_init__(self):
        if self.resume is True or self.resume == "true":  # a YAML/Python boolean
            self.resume = "latest"
        elif self.resume is False or self.resume == "false":
            self.resume = ""
        check_choices(self)
        for tracker in filter(None, (t.strip() for t in self.report_to.split(","))):
            if tracker not in ("tensorboard", "wandb"):
                raise ConfigError(f"report_to: unknown tracker {tracker!r} (use tensorboard or wandb)")


@dataclass
class TrainConfig:
    """Train a reward model: pairs or K completions per prompt, Bradley-Terry family losses."""

    backbone: BackboneArgs = field(default_factory=BackboneArgs)
    inputs: InputArgs = field(default_factory=InputArgs)
    columns: ColumnArgs = field(default_factory=ColumnArgs)
    objective: ObjectiveArgs = field(default_factory=ObjectiveArgs)
    optim: OptimArgs = field(default_factory=OptimArgs)
    run: RunArgs = field(default_factory=RunArgs)

    @classmethod
    def flat(cls, **values: Any) -> "TrainConfig":
        """Build from flat field names: ``TrainConfig.flat(model="minilm", lr=1e-5, ...)``."""
        return load_config(cls, None, values)


def validate_train(cfg: TrainConfig) -> None:
    """What a run needs before it starts, as one-line errors."""
    if not cfg.inputs.data:
        raise ConfigError("no training data: pass --data FILE")
    if not cfg.run.output:
        raise ConfigError("no output folder: pass --output DIR")
    if cfg.inputs.streaming and cfg.optim.max_steps <= 0:
        raise ConfigError("--streaming needs --max-steps (a stream has no known length)")
    for tracker in filter(None, (t.strip() for t in cfg.run.report_to.split(","))):
        if importlib.util.find_spec(tracker) is None:
            raise ConfigError(f"report_to {tracker} needs its package: pip install {tracker}")
