"""Configuration: small typed dataclass groups, read from a YAML file and CLI flags.

Each field carries its documentation in ``metadata["help"]`` (what ``--help`` prints), its
allowed values in ``metadata["choices"]`` where the set is fixed, and ``metadata["resume"]``
when changing it between a run and its ``--resume`` would silently change the run.
Precedence: dataclass default < YAML file < command-line flag. A YAML key that is not a
field is an error naming the key, so a typo never silently falls back to a default.

``TrainConfig`` is made of groups (``backbone``, ``inputs``, ``objective``, ``optim``, ``run``);
field names are unique across groups, so flags stay flat (``--lr``) and a YAML file may be
flat (``lr: 1e-5``) or grouped (``optim: {lr: 1e-5}``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from .errors import ConfigError

__all__ = ["ConfigError", "TrainConfig", "load_config", "add_arguments", "to_dict", "resume_values"]


def _f(default: Any, help: str, choices: tuple | None = None, resume: bool = False, bare: str | None = None,
       repeat: bool = False) -> Any:
    """A documented field. ``bare``: the value of the flag given alone (``--resume`` = ``--resume latest``);
    ``repeat``: the flag may be given several times (a list of strings)."""
    return field(default=default, metadata={"help": help, "choices": choices, "resume": resume, "bare": bare,
                                            "repeat": repeat})


def check_choices(obj) -> None:
    """Every field with fixed choices holds one of them (a one-line error otherwise)."""
    for f in dataclasses.fields(obj):
        choices = f.metadata.get("choices")
        if choices and getattr(obj, f.name) not in choices:
            raise ConfigError(f"{f.name} must be one of {', '.join(map(str, choices))}, got {getattr(obj, f.name)!r}")


LOSSES = ("bt", "scaled_bt", "plackett_luce", "davidson")
RECOMMENDED_LR = {"minilm": 1e-4}  # measured on HH-RLHF (README, recipes); other backbones: DEFAULT_LR
DEFAULT_LR = 2e-5


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
KINDS = ("preference", "orm", "prm", "value", "regression")


@dataclass
class BackboneArgs:
    """Backbone and how it is trained."""

    model: str = _f("minilm", "Backbone: a local Hugging Face folder, a hub name (online only), or a bundled alias: "
                    "minilm (MiniLM-L6 encoder) or smollm2 (SmolLM2-135M-Instruct).", resume=True)
    trust_remote_code: bool = _f(False, "Allow model code from the hub folder (off unless you trust it).")
    lora_r: int = _f(0, "LoRA rank (0: train all weights). The reward head is always trained and saved fully.",
                     resume=True)
    lora_alpha: int = _f(16, "LoRA scaling alpha.", resume=True)
    lora_dropout: float = _f(0.0, "Dropout on the LoRA branch.", resume=True)
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
                         "skipped and counted.", resume=True)
    skip_bad_rows: bool = _f(False, "Leave out invalid rows (counted and listed) instead of stopping at the first.")
    allow_empty: bool = _f(True, "Accept empty completions (HH-RLHF has pairs where silence was preferred); they "
                           "are counted. --no-allow-empty makes them errors.")
    num_proc: int = _f(1, "Processes for tokenizing the training data (through datasets.map).")
    tokenized_cache: str = _f("", "Folder keeping tokenized training data (Arrow, memory-mapped): a rerun with the "
                              "same data, tokenizer and max_length loads it instead of tokenizing again. Empty: off.")
    streaming: bool = _f(False, "Read, check and tokenize the training data lazily (data larger than memory); "
                         "needs --max-steps. Order: a seeded shuffle buffer instead of a full permutation.",
                         resume=True)
    shuffle_buffer: int = _f(10000, "Examples held in the shuffle buffer with --streaming.", resume=True)
    group_by_length: bool = _f(False, "Put examples of similar length in the same step: less padding where the "
                               "padded forward runs (GPU encoders, --no-shared-prompt). Changes the data order.",
                               resume=True)

    def __post_init__(self):
        for name in ("max_length", "num_proc", "shuffle_buffer"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.eval_split < 1.0:
            raise ConfigError(f"eval_split must be in [0, 1), got {self.eval_split}")
        if self.eval_split and self.eval_data:
            raise ConfigError("give either --eval-data or --eval-split, not both")
        if self.eval_split and self.streaming:
            raise ConfigError("--eval-split needs the whole data set; with --streaming give --eval-data")
        if self.streaming and self.group_by_length:
            raise ConfigError("--group-by-length needs the whole data set; it cannot be used with --streaming")


@dataclass
class ObjectiveArgs:
    """What the model learns: its kind and its loss (formulas in rewardlab/losses/preference.py)."""

    kind: str = _f("preference", "Model kind: preference (one reward per completion, trained on pairs or on "
                   "groups of K completions per prompt); orm (outcome reward model: per-token P(correct)); prm "
                   "(process reward model: a label per reasoning step); value (per-token value function); "
                   "regression (one output per rated attribute).", choices=KINDS, resume=True)
    loss: str = _f("bt", "bt: Bradley-Terry on every strict pair implied by the row; scaled_bt: pairs weighted by "
                   "preference strength |score difference| (HelpSteer2-Preference); plackett_luce: K-wise "
                   "ranking likelihood (ties by Breslow's rule); davidson: Bradley-Terry with ties, which also "
                   "learns from tied pairs.", choices=LOSSES, resume=True)
    balance: bool = _f(False, "InstructGPT balancing (bt, scaled_bt): average each prompt's pair losses so every "
                       "prompt weighs the same whatever its number of completions K.", resume=True)
    margin: str = _f("column", "Llama 2 margin: column (a pair row's `margin` column, 0 if absent), score_diff "
                     "(score difference x --margin-scale, for rows with scores) or none.",
                     choices=("column", "score_diff", "none"), resume=True)
    margin_scale: float = _f(1.0, "Multiplies the score difference with --margin score_diff.", resume=True)
    strength_map: str = _f("", "scaled_bt: remap |score difference| to a strength, e.g. '1:1,2:3,3:10' (INF-ORM); "
                           "empty: the difference itself.", resume=True)
    davidson_nu: float = _f(1.0, "davidson: the tie parameter nu > 0 (P(tie) grows with it; fixed during training).",
                            resume=True)
    label_smoothing: float = _f(0.0, "bt, scaled_bt: conservative Bradley-Terry, eps in [0, 0.5): each pair is "
                                "taken as mislabelled with probability eps.", resume=True)
    center_rewards_coefficient: float = _f(0.0, "bt, scaled_bt: adds c * (r_better + r_worse)^2 per pair to keep "
                                           "rewards centred (TRL's option).", resume=True)
    tie_threshold: float = _f(0.5, "Evaluation: a tied pair counts as predicted tied when its rewards differ by at "
                              "most this.")
    orm_loss_on: str = _f("all_tokens", "orm: label every completion token (Cobbe et al.) or the last token only.",
                          choices=("all_tokens", "last_token"), resume=True)
    lm_coef: float = _f(0.0, "orm: adds lm_coef x the next-token cross-entropy of every completion token (Cobbe "
                        "et al.'s joint objective; causal backbones whose output embeddings are their input "
                        "embeddings, as SmolLM2's).", resume=True)
    prm_labels: str = _f("binary", "prm: step labels as binary (true/false, 0/1), ternary (PRM800K's -1/0/+1, a "
                         "3-class head) or soft (floats in [0, 1], kept as floats).",
                         choices=("binary", "ternary", "soft"), resume=True)
    step_separator: str = _f("\n", "prm: text appended to every step; the step's label is read at its last token.",
                             resume=True)
    step_token: str = _f("", "prm: a dedicated token appended to every step instead of the separator (e.g. "
                         "<extra_0>); added to the tokenizer if absent.", resume=True)
    last_step_only: bool = _f(False, "prm: train on each solution's last step only.", resume=True)
    aggregate: str = _f("min", "prm: a solution's reward from its step scores: min (Math-Shepherd), prod (PRM800K), "
                        "last or mean.", choices=("min", "prod", "last", "mean"))
    prm_threshold: float = _f(0.0, "prm evaluation: the step-score threshold of ProcessBench's first-error rule (0: "
                              "chosen on half of the eval rows, reported on the other half).")
    value_loss: str = _f("mse", "value: regression loss.", choices=("mse", "huber"), resume=True)
    huber_delta: float = _f(1.0, "value: the Huber loss's delta.", resume=True)
    gamma: float = _f(1.0, "value: discount of the return over completion tokens (1: every token's target is the "
                      "final reward).", resume=True)
    attributes: str = _f("", "regression: attribute names, comma-separated, in output order (empty: every "
                         "attribute the training data rates, in order of first appearance).", resume=True)
    weights: str = _f("", "regression: the reward's weight per attribute, comma-separated (empty: the mean).")

    def __post_init__(self):
        check_choices(self)
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ConfigError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.davidson_nu <= 0:
            raise ConfigError(f"davidson_nu must be > 0, got {self.davidson_nu}")
        if self.balance and self.loss not in ("bt", "scaled_bt"):
            raise ConfigError(f"--balance applies to bt and scaled_bt; {self.loss} already weighs each prompt once")
        if (self.label_smoothing or self.center_rewards_coefficient) and self.loss not in ("bt", "scaled_bt"):
            raise ConfigError(f"label_smoothing and center_rewards_coefficient apply to bt and scaled_bt, not {self.loss}")
        if self.strength_map:
            self.strength_table()
            if self.loss != "scaled_bt":
                raise ConfigError("--strength-map applies to --loss scaled_bt")
        if self.margin != "column" and self.loss in ("plackett_luce", "davidson"):
            raise ConfigError(f"--margin applies to bt and scaled_bt; {self.loss} has no margin")
        if self.kind != "preference" and (self.loss != "bt" or self.balance or self.margin != "column"):
            raise ConfigError(f"--loss, --balance and --margin apply to kind preference; kind {self.kind} has its "
                              "own loss")
        if self.lm_coef and (self.kind != "orm" or self.orm_loss_on != "all_tokens" or self.lm_coef < 0):
            raise ConfigError("--lm-coef (>= 0) applies to kind orm with --orm-loss-on all_tokens")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.huber_delta <= 0:
            raise ConfigError(f"huber_delta must be > 0, got {self.huber_delta}")
        if self.kind == "prm" and not (self.step_token or self.step_separator):
            raise ConfigError("kind prm needs --step-separator or --step-token to mark where each step ends")

    def strength_table(self) -> dict[float, float] | None:
        """'1:1,2:3' -> {1.0: 1.0, 2.0: 3.0}."""
        if not self.strength_map:
            return None
        try:
            return {float(k): float(v) for k, v in (part.split(":") for part in self.strength_map.split(","))}
        except ValueError:
            raise ConfigError(f"strength_map must look like '1:1,2:3,3:10', got {self.strength_map!r}") from None


@dataclass
class OptimArgs:
    """Optimisation: steps, batch, learning rate."""

    epochs: int = _f(1, "Passes over the data. One is the norm for reward models: more tends to overfit.",
                     resume=True)
    max_steps: int = _f(-1, "Stop after this many optimizer steps (-1: run all epochs).", resume=True)
    batch_size: int = _f(8, "Prompts per micro-batch (a prompt's completions are always in the same forward pass).",
                         resume=True)
    grad_accum: int = _f(1, "Micro-batches per optimizer step; the loss is averaged over the whole step, so "
                         "batch_size x grad_accum behaves exactly like one large batch.", resume=True)
    lr: float = _f(0.0, "Peak learning rate of AdamW. 0: the recommended rate for the backbone (minilm 1e-4, "
                   "measured on HH-RLHF; others 2e-5).", resume=True)
    weight_decay: float = _f(0.0, "AdamW weight decay.", resume=True)
    warmup_ratio: float = _f(0.05, "Fraction of the optimizer steps spent in linear warmup.", resume=True)
    lr_schedule: str = _f("linear", "Decay after warmup.", choices=("linear", "cosine", "constant"), resume=True)
    max_grad_norm: float = _f(1.0, "Gradient clipping by global norm (0 disables).", resume=True)
    seed: int = _f(42, "Seed for the head initialisation and data order.", resume=True)

    def __post_init__(self):
        check_choices(self)
        if self.lr < 0:
            raise ConfigError(f"lr must be > 0 (or 0 for the backbone's recommended rate), got {self.lr}")
        for name in ("batch_size", "grad_accum", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class RunArgs:
    """Output, checkpoints, logging."""

    output: str = _f("", "Output folder: the final model (standard Hugging Face folder), checkpoints/, metrics.jsonl.")
    resume: str = _f("", "Continue exactly where a run stopped: --resume alone takes the newest checkpoint in "
                     "--output, --resume DIR a given checkpoint folder.", bare="latest")
    eval_every: int = _f(0, "Evaluate on --eval-data every N optimizer steps (0: only at the end).")
    save_every: int = _f(100, "Write a resumable checkpoint every N optimizer steps (0: only on Ctrl-C).")
    save_total_limit: int = _f(1, "Checkpoints kept in OUTPUT/checkpoints (the oldest are removed; the final model "
                               "is always kept).")
    log_every: int = _f(10, "Append training metrics to metrics.jsonl every N optimizer steps.")
    eval_batch_size: int = _f(16, "Prompts per batch when evaluating.")
    reward_stats: bool = _f(False, "After training, score every training completion and save the rewards' mean "
                            "and std with the model (preference kind; `serve --normalize` uses them).")
    report_to: str = _f("", "Extra experiment trackers through accelerate: tensorboard, wandb (comma separated).")

    def __post_init__(self):
        if self.resume is True or self.resume == "true":  # a YAML/Python boolean
            self.resume = "latest"
        elif self.resume is False or self.resume == "false":
            self.resume = ""
        if self.save_total_limit < 1:
            raise ConfigError(f"save_total_limit must be >= 1, got {self.save_total_limit}")
        if self.log_every < 1:
            raise ConfigError(f"log_every must be >= 1, got {self.log_every}")
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


@dataclass
class ExportConfig:
    """Merge a LoRA adapter folder into its base model and save a plain Hugging Face reward model."""

    model: str = _f("", "An adapter folder (OUTPUT/adapter, or a checkpoint of a LoRA run).")
    output: str = _f("", "Where to write the merged model.")
    device: str = _f("", "Device: cuda, cuda:1, cpu (default: cuda when available).")
    bf16: bool = _f(False, "Merge and save in bf16 (half the size).")


@dataclass
class ScoreConfig:
    """Score rows with a trained reward model; every input row is written back with its rewards."""

    model: str = _f("", "A reward model folder: written by `rewardlab train`, or any Hugging Face "
                    "sequence-classification reward model with one output (a LoRA adapter folder too).")
    data: str = _f("", "Rows with prompt+completion, prompt+completions (a list), chosen/rejected pairs, or "
                   "prompt+steps (process reward models).")
    output: str = _f("", "Output JSONL: the input rows, in input order, with reward / rewards / chosen_reward "
                     "and rejected_reward added (and step_rewards, values, attributes for those kinds).")
    batch_size: int = _f(16, "Most sequences per forward pass (sorted by length, so results do not depend on it).")
    max_batch_tokens: int = _f(16384, "Most tokens (padding included) per forward pass: short texts go in bigger batches.")
    max_length: int = _f(0, "Maximum tokens per sequence (0: the value the model was trained with).")
    skip_bad_rows: bool = _f(False, "Write an invalid row back with an 'error' field (counted) instead of stopping.")
    allow_empty: bool = _f(True, "Accept empty completions (counted); --no-allow-empty makes them errors.")
    device: str = _f("", "Device: cuda, cuda:1, cpu (default: cuda when available).")
    per_token: bool = _f(False, "orm models: also write every completion token's P(correct) (token_rewards).")
    aggregate: str = _f("saved", "prm models: a solution's reward from its step scores: min, prod, last, mean, or "
                        "saved (the model's own).", choices=("saved", "min", "prod", "last", "mean"))
    bf16: bool = _f(False, "Load the weights in bf16 (halves memory; rewards differ from fp32 by rounding).")
    columns: ColumnArgs = field(default_factory=ColumnArgs)


@dataclass
class EvalConfig:
    """Evaluate a reward model: pairwise accuracy on pairs; on groups of K completions also tie accuracy,
    Kendall tau, Spearman, top-1 and best-of-K beside the random and majority-vote baselines; RewardBench,
    RewardBench 2 and RM-Bench files by their own scoring rules."""


    model: str = _f("", "A reward model folder: written by `rewardlab train`, or any Hugging Face "
                    "sequence-classification reward model with one output (a LoRA adapter folder too). Give "
                    "--model several times to compare models on the same rows (paired bootstrap intervals).",
                    repeat=True)
    data: str = _f("", "Pairs or groups, same formats as training data; an optional `subset` column gives "
                   "per-subset accuracies.")
    batch_size: int = _f(16, "Prompts per forward pass.")
    format: str = _f("auto", "Data layout and scoring rule: pairs / groups (rewardlab's rows), rewardbench "
                     "(sections, v1 weighting), rewardbench2 (best-of-N, Ties rule), rm-bench (style matrix), "
                     "processbench (a process reward model's first-error F1); auto detects it from the columns "
                     "and says which.",
                     choices=("auto", "pairs", "groups", "rewardbench", "rewardbench2", "rm-bench", "processbench"))
    threshold: float = _f(0.0, "Process reward models: the step-score threshold of ProcessBench's first-error rule "
                          "(0: the model's saved one if any, else chosen on the even rows and reported on the odd).")
    tie_threshold: float = _f(0.5, "A tied pair counts as predicted tied when its rewards differ by at most this.")
    allow_empty: bool = _f(True, "Accept empty completions (counted); --no-allow-empty makes them errors.")
    max_length: int = _f(0, "Maximum tokens per sequence (0: the value the model was trained with).")
    json: bool = _f(False, "Print one JSON object on stdout instead of a table.")
    report: str = _f("", "Also write a self-contained HTML report here (figures inline; needs matplotlib).")
    scores_cache: str = _f("", "JSONL file keeping every scored row (model + texts as the key): an interrupted "
                           "evaluation rerun with the same command scores only the rows not yet scored.")
    skip_bad_rows: bool = _f(False, "Leave out invalid rows (counted and listed) instead of stopping at the first.")
    device: str = _f("", "Device: cuda, cuda:1, cpu (default: cuda when available).")
    bf16: bool = _f(False, "Load the weights in bf16 (halves memory; rewards differ from fp32 by rounding).")
    columns: ColumnArgs = field(default_factory=ColumnArgs)

    def __post_init__(self):
        check_choices(self)


@dataclass
class ServeConfig:
    """Serve a reward model over HTTP: POST /score (rows), POST /get_reward (OpenRLHF), GET /health."""

    model: str = _f("", "A reward model folder written by `rewardlab train` (or an adapter folder).")
    host: str = _f("127.0.0.1", "Interface to listen on (0.0.0.0: every interface).")
    port: int = _f(5000, "TCP port (5000, as OpenRLHF's reward server).")
    batch_size: int = _f(16, "Most sequences per forward pass.")
    max_batch_tokens: int = _f(16384, "Token budget of a batch: concurrent requests are scored together up to it.")
    max_wait_ms: float = _f(5.0, "How long a batch waits after its first request for more to arrive.")
    batching: bool = _f(True, "Batch concurrent requests together (--no-batching: one request at a time).")
    prefix_sharing: bool = _f(True, "Texts that start with the same tokens share one encoding of that prefix "
                              "(causal models; exact).")
    normalize: bool = _f(False, "Answer (r - mean) / std with the training rewards' statistics saved in the "
                         "model (train with --reward-stats).")
    api_key_env: str = _f("", "Require 'Authorization: Bearer KEY' with KEY read from this environment variable.")
    max_body_bytes: int = _f(16 * 2**20, "Largest request body (413 beyond it).")
    max_items: int = _f(4096, "Most texts or rows per request (413 beyond it).")
    max_item_tokens: int = _f(32768, "Most tokens per text (422 naming the item beyond it; texts longer than "
                              "--max-length are still scored, cut from the left).")
    max_length: int = _f(0, "Maximum tokens per sequence (0: the value the model was trained with).")
    device: str = _f("", "Device: cuda, cuda:1, cpu (default: cuda when available).")
    bf16: bool = _f(False, "Load the weights in bf16 (halves memory; rewards differ from fp32 by rounding).")


@dataclass
class JudgeConfig:
    """Judge completions with a language model (LLM-as-a-judge): preference data and agreement with humans."""

    data: str = _f("", "Rows to judge: chosen/rejected pairs (human-labelled, as for training), prompt + completions "
                   "(a list of 2), or prompt + completion (single mode). A 'reference' column feeds --reference.")
    output: str = _f("", "Output JSONL of preference pairs (prompt, chosen, rejected, confidence, raw judgments) that "
                     "`rewardlab train` reads; ties and errors go to OUTPUT.undecided.jsonl.")
    mode: str = _f("pairwise", "pairwise (MT-Bench pair-v2: [[A]]/[[B]]/[[C]]) or single (a 1-10 [[rating]] per answer).")
    position: str = _f("both", "Position-bias control for pairwise: both (judge A/B and B/A; disagreement or a tie is a "
                       "tie, FastChat), random (one seeded random order, RewardBench) or first (the data's order).",
                       choices=("both", "random", "first"))
    template: str = _f("", "A built-in template (pair-v2, pair-ref, single, single-ref) or a file: YAML/JSON with "
                       "'user' (+ 'system', 'mode'), or plain text; placeholders {question} {answer_a} {answer_b} "
                       "{answer} {reference}.")
    reference: bool = _f(False, "Use the reference-guided built-in template; rows need a 'reference' column.")
    backend: str = _f("local", "local (a transformers causal LM) or openai (any OpenAI-compatible chat server).",
                     choices=("local", "openai"))
    model: str = _f("smollm2", "Judge model: a local folder or the bundled smollm2 (local backend), or the served "
                    "model's name (openai backend).")
    base_url: str = _f("", "Server URL for the openai backend, e.g. http://localhost:8000/v1.")
    api_key_env: str = _f("OPENAI_API_KEY", "Environment variable holding the API key (sent only if set).")
    soft: bool = _f(False, "Local pairwise only: read the verdict from the next-token probabilities of A/B/C right "
                    "after '[[' instead of generating (fast; gives a probability).")
    temperature: float = _f(0.0, "Sampling temperature; 0 is greedy (the norm for judges: reproducible).")
    max_new_tokens: int = _f(512, "Most tokens a judgment may generate; a cut-off answer without a verdict is re-asked.")
    parse_retries: int = _f(1, "Times to re-ask for the verdict alone when an answer has none (then it is an error).")
    batch_size: int = _f(8, "Local backend: conversations generated together.")
    concurrency: int = _f(8, "openai backend: requests in flight at once.")
    timeout: float = _f(120.0, "openai backend: seconds before a request is abandoned and retried.")
    max_retries: int = _f(5, "openai backend: retries of a timed-out, 429 or 5xx request (exponential backoff).")
    backoff: float = _f(1.0, "openai backend: first wait in seconds before a retry, doubled each time "
                        "(a server's Retry-After wins).")
    cache: str = _f("", "Judgment cache (JSONL). Default OUTPUT.cache.jsonl; 'none' disables. Reruns and resumed "
                    "runs reuse every cached judgment.")
    seed: int = _f(0, "Seed for random position order and sampling.")
    eval: bool = _f(False, "Report agreement with the human labels (chosen/rejected rows).")
    json: bool = _f(False, "Print the report as one JSON object on stdout.")
    device: str = _f("", "Local backend device (default: cuda if available, else cpu).")

    def __post_init__(self):
        check_choices(self)


# ---------------------------------------------------------------- flags and files

def _groups(cls: type) -> dict[str, type]:
    """Group name -> group class, for the fields of ``cls`` that are config groups."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


def _leaves(cls: type) -> dict[str, tuple[str | None, dataclasses.Field, type]]:
    """Flat field name -> (its group, or None for a top-level field; the field; its type)."""
    groups, hints, out = _groups(cls), get_type_hints(cls), {}
    for f in dataclasses.fields(cls):
        inner = [(f.name, g, get_type_hints(groups[f.name])) for g in dataclasses.fields(groups[f.name])] \
            if f.name in groups else [(None, f, hints)]
        for group, leaf, leaf_hints in inner:
            assert leaf.name not in out, f"field {leaf.name} is defined twice"
            out[leaf.name] = (group, leaf, leaf_hints[leaf.name])
    return out


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field, with the field's doc as help, in one argparse group per config
    group. Defaults are left unset (None) so we can tell which flags the user typed."""
    sections = {g: parser.add_argument_group(g, sub.__doc__) for g, sub in _groups(cls).items()}
    for name, (group, f, kind) in _leaves(cls).items():
        target = sections.get(group, parser)
        default = f.default
        shown = "" if default in ("", None) or kind is bool and default is False else f" (default: {default})"
        if kind is bool and default is True:
            shown = " (default: on)"
        help_text = (f.metadata["help"] + shown).replace("%", "%%")
        extra = {"choices": f.metadata["choices"]} if f.metadata.get("choices") else {}
        if extra:
            help_text = help_text.replace("%%", "%").replace("%", "%%")
        if kind is bool:
            target.add_argument(_flag(name), dest=name, default=None, action=argparse.BooleanOptionalAction,
                                help=help_text)
        elif f.metadata.get("repeat"):
            target.add_argument(_flag(name), dest=name, default=None, action="append", metavar=name.upper(),
                                help=help_text)
        elif f.metadata.get("bare"):
            target.add_argument(_flag(name), dest=name, default=None, nargs="?", const=f.metadata["bare"],
                                metavar=name.upper(), help=help_text)
        else:
            target.add_argument(_flag(name), dest=name, default=None, type=kind, help=help_text,
                                metavar=name.upper() if not extra else "{" + ",".join(extra["choices"]) + "}",
                                **extra)


def load_config(cls: type, yaml_path: str | None, args: argparse.Namespace | dict | None = None):
    """Build ``cls`` from defaults, then the YAML file, then flags that were given."""
    leaves = _leaves(cls)
    groups = _groups(cls)
    values: dict[str, Any] = {}
    if yaml_path:
        path = Path(yaml_path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot read config: {e}".replace("\n", " ")) from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: config must be a mapping of field: value")
        flat_items = []
        for key, value in loaded.items():
            key = str(key).replace("-", "_")
            if key in groups and isinstance(value, dict):
                flat_items += [(str(k).replace("-", "_"), v, f"{key}.") for k, v in value.items()]
            else:
                flat_items.append((key, value, ""))
        for key, value, prefix in flat_items:
            if key not in leaves or (prefix and leaves[key][0] != prefix[:-1]):
                raise ConfigError(f"{path}: unknown key {prefix + key!r} (valid keys: {', '.join(sorted(leaves))})")
            meta = leaves[key][1].metadata
            if meta.get("repeat") and isinstance(value, list):
                values[key] = [_coerce(v, str, f"{path}: key {key!r}") for v in value]
            else:
                values[key] = _coerce(value, leaves[key][2], f"{path}: key {key!r}", bool(meta.get("bare")))
    given = vars(args) if isinstance(args, argparse.Namespace) else (args or {})
    for key, value in given.items():
        if key in leaves and value is not None:
            values[key] = value
        elif key not in leaves and key not in ("command", "config"):
            raise ConfigError(f"unknown option {key!r}")
    parts: dict[str | None, dict] = {g: {} for g in groups}
    parts[None] = {}
    for key, value in values.items():
        parts[leaves[key][0]][key] = value
    return cls(**parts[None], **{g: groups[g](**parts[g]) for g in groups})


def _coerce(value: Any, kind: type, where: str, bare: bool = False) -> Any:
    if kind is bool or isinstance(value, bool) and bare:  # resume: true in YAML
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if kind in (int, float) and isinstance(value, str):
        try:  # YAML 1.1 reads 2e-5 (no dot) as a string
            return kind(value)
        except ValueError:
            raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")


def to_dict(config) -> dict[str, Any]:
    """Flat ``{field: value}``, whatever the grouping (what checkpoints and trackers record)."""
    out = {}
    for name, (group, _, _) in _leaves(type(config)).items():
        out[name] = getattr(getattr(config, group) if group else config, name)
    return out


def resume_values(config) -> dict[str, Any]:
    """The fields marked ``resume``: a resumed run must have the same values."""
    flat = to_dict(config)
    return {name: flat[name] for name, (_, f, _) in _leaves(type(config)).items() if f.metadata.get("resume")}
