"""Configuration: one dataclass per command, read from a YAML file and CLI flags.

Each field carries its documentation in ``metadata["help"]``; that text is what ``--help``
prints. Precedence: dataclass default < YAML file < command-line flag. A YAML key that is
not a field is an error naming the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import argparse
import importlib.util
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml


class ConfigError(ValueError):
    """A configuration problem the user can fix; the CLI prints it as one line."""


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Train a Bradley-Terry reward model on preference pairs."""

    model: str = _f("minilm", "Backbone: a local Hugging Face folder, a hub name (online only), "
                    "or a bundled alias: minilm (MiniLM-L6 encoder) or smollm2 (SmolLM2-135M-Instruct).")
    data: str = _f("", "Training pairs: a .jsonl/.json/.parquet/.csv file, a saved `datasets` folder, "
                   "or a hub dataset name (online only).")
    eval_data: str = _f("", "Held-out pairs, same formats as --data; evaluated every --eval-every steps and at the end.")
    output: str = _f("", "Output folder: the final model (standard Hugging Face folder), checkpoints/, metrics.jsonl.")
    epochs: int = _f(1, "Passes over the data. One is the norm for reward models: more tends to overfit.")
    max_steps: int = _f(-1, "Stop after this many optimizer steps (-1: run all epochs).")
    batch_size: int = _f(8, "Pairs per micro-batch (each pair is two sequences in the same forward pass).")
    grad_accum: int = _f(1, "Micro-batches per optimizer step; the loss is averaged over all their pairs, "
                         "so batch_size x grad_accum behaves exactly like one large batch.")
    lr: float = _f(2e-5, "Peak learning rate of AdamW.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    warmup_ratio: float = _f(0.05, "Fraction of the optimizer steps spent in linear warmup.")
    lr_schedule: str = _f("linear", "Decay after warmup: linear, cosine or constant.")
    max_grad_norm: float = _f(1.0, "Gradient clipping by global norm (0 disables).")
    max_length: int = _f(512, "Maximum tokens per sequence (prompt + completion + end marker). Longer pairs "
                         "lose prompt tokens from the left; pairs whose completion alone is too long are skipped "
                         "and counted.")
    center_rewards_coefficient: float = _f(0.0, "Adds c * mean((r_c + r_r)^2) to the loss to keep rewards centred.")
    num_proc: int = _f(1, "Processes for tokenizing the training data (through datasets.map).")
    tokenized_cache: str = _f("", "Folder keeping tokenized training data (Arrow, memory-mapped): a rerun with the same "
                              "data, tokenizer and max_length loads it instead of tokenizing again. Empty: off.")
    streaming: bool = _f(False, "Read, check and tokenize the training data lazily (data larger than memory); "
                         "needs --max-steps. Order: a seeded shuffle buffer instead of a full permutation.")
    shuffle_buffer: int = _f(10000, "Pairs held in the shuffle buffer with --streaming.")
    group_by_length: bool = _f(False, "Put pairs of similar length in the same step (less padding: speeds up "
                               "encoders, which cannot use the packed forward). Changes the data order.")
    shared_prompt: bool = _f(True, "Causal backbones: encode each prompt once for both completions (exact; "
                             "encoders always use the padded forward).")
    attention: str = _f("auto", "Kernel of the shared-prompt forward: blocks (one SDPA call per prompt group; "
                        "fastest on CPU), flex (torch flex_attention with a block-sparse mask, compiled; GPU), "
                        "auto (flex on CUDA, blocks otherwise). Both are exact.")
    lora_r: int = _f(0, "LoRA rank (0: train all weights). The reward head is always trained and saved fully.")
    lora_alpha: int = _f(16, "LoRA scaling alpha.")
    load_in_4bit: bool = _f(False, "QLoRA: hold the backbone's linear layers in 4-bit NF4 (bitsandbytes, double "
                            "quantization) and train LoRA adapters on them; needs --lora-r. The head stays full "
                            "precision; the final model is the adapter merged into the full-precision base.")
    lora_dropout: float = _f(0.0, "Dropout on the LoRA branch.")
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass: less memory, ~30% slower.")
    bf16: bool = _f(False, "bf16 autocast for the forward and backward (the loss stays fp32).")
    disable_dropout: bool = _f(True, "Turn dropout off in the backbone (deterministic rewards, exact accumulation).")
    seed: int = _f(42, "Seed for the head initialisation and data order.")
    eval_every: int = _f(0, "Evaluate on --eval-data every N optimizer steps (0: only at the end).")
    save_every: int = _f(100, "Write a resumable checkpoint every N optimizer steps (0: only on Ctrl-C).")
    log_every: int = _f(10, "Append training metrics to metrics.jsonl every N optimizer steps.")
    eval_batch_size: int = _f(16, "Pairs per batch when evaluating.")
    skip_bad_rows: bool = _f(False, "Leave out invalid rows (counted and listed) instead of stopping at the first.")
    resume: bool = _f(False, "Continue from the last checkpoint in --output exactly where it stopped.")
    report_to: str = _f("", "Extra experiment trackers through accelerate: tensorboard, wandb (comma separated).")
    trust_remote_code: bool = _f(False, "Allow model code from the hub folder (off unless you trust it).")


@dataclass
class ExportConfig:
    """Merge a LoRA adapter folder into its base model and save a plain Hugging Face reward model."""

    model: str = _f("", "An adapter folder (OUTPUT/adapter, or a checkpoint of a LoRA run).")
    output: str = _f("", "Where to write the merged model.")


@dataclass
class ScoreConfig:
    """Score rows with a trained reward model; every input row is written back with its rewards."""

    model: str = _f("", "A reward model folder written by `rewardlab train`.")
    data: str = _f("", "Rows with prompt+completion, prompt+completions (a list), or chosen/rejected pairs.")
    output: str = _f("", "Output JSONL: the input rows, in input order, with reward / rewards / chosen_reward "
                     "and rejected_reward added.")
    batch_size: int = _f(16, "Most sequences per forward pass (sorted by length, so results do not depend on it).")
    max_batch_tokens: int = _f(16384, "Most tokens (padding included) per forward pass: short texts go in bigger batches.")
    max_length: int = _f(0, "Maximum tokens per sequence (0: the value the model was trained with).")


@dataclass
class EvalConfig:
    """Pairwise accuracy of a reward model on preference pairs."""

    model: str = _f("", "A reward model folder written by `rewardlab train`.")
    data: str = _f("", "Preference pairs, same formats as training data; an optional `subset` column gives "
                   "per-subset accuracies.")
    batch_size: int = _f(16, "Pairs per forward pass.")
    max_length: int = _f(0, "Maximum tokens per sequence (0: the value the model was trained with).")
    json: bool = _f(False, "Print one JSON object on stdout instead of a table.")
    skip_bad_rows: bool = _f(False, "Leave out invalid rows (counted and listed) instead of stopping at the first.")


@dataclass
class ServeConfig:
    """Serve a reward model over HTTP: POST /score (rows), POST /get_reward (OpenRLHF), GET /health."""

    model: str = _f("", "A reward model folder written by `rewardlab train` (or an adapter folder).")
    host: str = _f("127.0.0.1", "Interface to listen on (0.0.0.0: every interface).")
    port: int = _f(8000, "TCP port.")
    batch_size: int = _f(16, "Most sequences per forward pass.")
    max_batch_tokens: int = _f(16384, "Most tokens (padding included) per forward pass.")
    max_length: int = _f(0, "Maximum tokens per sequence (0: the value the model was trained with).")


@dataclass
class JudgeConfig:
    """Judge completions with a language model (LLM-as-a-judge): preference data and agreement with humans."""

    data: str = _f("", "Rows to judge: chosen/rejected pairs (human-labelled, as for training), prompt + completions "
                   "(a list of 2), or prompt + completion (single mode). A 'reference' column feeds --reference.")
    output: str = _f("", "Output JSONL of preference pairs (prompt, chosen, rejected, confidence, raw judgments) that "
                     "`rewardlab train` reads; ties and errors go to OUTPUT.undecided.jsonl.")
    mode: str = _f("pairwise", "pairwise (MT-Bench pair-v2: [[A]]/[[B]]/[[C]]) or single (a 1-10 [[rating]] per answer).")
    position: str = _f("both", "Position-bias control for pairwise: both (judge A/B and B/A; disagreement or a tie is a "
                       "tie, FastChat), random (one seeded random order, RewardBench) or first (the data's order).")
    template: str = _f("", "A built-in template (pair-v2, pair-ref, single, single-ref) or a file: YAML/JSON with "
                       "'user' (+ 'system', 'mode'), or plain text; placeholders {question} {answer_a} {answer_b} "
                       "{answer} {reference}.")
    reference: bool = _f(False, "Use the reference-guided built-in template; rows need a 'reference' column.")
    backend: str = _f("local", "local (a transformers causal LM) or openai (any OpenAI-compatible chat server).")
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


def validate_train(cfg: TrainConfig) -> None:
    """Settings that cannot work together, or cannot work here, as one-line errors."""
    if not cfg.data:
        raise ConfigError("no training data: pass --data FILE")
    if not cfg.output:
        raise ConfigError("no output folder: pass --output DIR")
    if cfg.streaming and cfg.max_steps <= 0:
        raise ConfigError("--streaming needs --max-steps (a stream has no known length)")
    if cfg.streaming and cfg.group_by_length:
        raise ConfigError("--group-by-length needs the whole data set; it cannot be used with --streaming")
    if cfg.lr <= 0:
        raise ConfigError(f"lr must be > 0, got {cfg.lr}")
    for name in ("batch_size", "grad_accum", "epochs", "max_length", "log_every"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    for tracker in filter(None, (t.strip() for t in cfg.report_to.split(","))):
        package = {"tensorboard": "tensorboard", "wandb": "wandb"}.get(tracker)
        if package is None:
            raise ConfigError(f"report_to: unknown tracker {tracker!r} (use tensorboard or wandb)")
        if importlib.util.find_spec(package) is None:
            raise ConfigError(f"report_to {tracker} needs its package: pip install {package}")
    if cfg.load_in_4bit and not cfg.lora_r:
        raise ConfigError("--load-in-4bit (QLoRA) trains LoRA adapters: also pass --lora-r, e.g. 16")
    if cfg.attention not in ("auto", "blocks", "flex"):
        raise ConfigError(f"attention must be auto, blocks or flex, got {cfg.attention!r}")
    if cfg.lr_schedule not in ("linear", "cosine", "constant"):
        raise ConfigError(f"lr_schedule must be linear, cosine or constant, got {cfg.lr_schedule!r}")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one flag per dataclass field, with the field's doc as help. Defaults are left
    unset (None) so we can tell which flags the user actually typed."""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        help_text = f"{f.metadata['help']} (default: {f.default!r})"
        if kind is bool:
            parser.add_argument(_flag(f.name), dest=f.name, default=None,
                                action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(_flag(f.name), dest=f.name, default=None, type=kind, help=help_text)


def load_config(cls: type, yaml_path: str | None, args: argparse.Namespace | dict | None = None):
    """Build ``cls`` from defaults, then the YAML file, then flags that were given."""
    values: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    hints = get_type_hints(cls)
    if yaml_path:
        path = Path(yaml_path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot read config: {e}".replace("\n", " ")) from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: config must be a mapping of field: value")
        for key, value in loaded.items():
            key = str(key).replace("-", "_")
            if key not in names:
                raise ConfigError(f"{path}: unknown key {key!r} (valid keys: {', '.join(sorted(names))})")
            values[key] = _coerce(value, hints[key], f"{path}: key {key!r}")
    given = vars(args) if isinstance(args, argparse.Namespace) else (args or {})
    for key, value in given.items():
        if key in names and value is not None:
            values[key] = value
        elif key not in names and key not in ("command", "config"):
            raise ConfigError(f"unknown option {key!r}")
    return cls(**values)


def _coerce(value: Any, kind: type, where: str) -> Any:
    if kind is bool:
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
    return dataclasses.asdict(config)
