"""The configs of the commands other than ``train``: eval, score, export, serve, judge, prm-data,
ensemble, merge."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import ConfigError
from .groups import ColumnArgs, _f, check_choices

ENSEMBLE_AGGREGATES = ("mean", "min", "mean_minus_std")  # models/ensemble.py's (config sits below models)
UNSET = "saved"  # a score-time option left as the model has it


@dataclass
class ScoreOptions:
    """Score-time options: how this call turns a model's outputs into rewards. Left unset, each is as
    the model was trained; the model folder and the loaded model are never changed. The same options
    are taken by score, eval, serve and the Python API (``RewardModel.from_pretrained(..., options=)``);
    a model takes the ones its kind declares (``option(score=NAME)`` in rewardlab/kinds/), and one it
    does not take is an error naming it."""

    aggregate: str = _f(UNSET, "prm and implicit_prm models: a solution's reward from its step scores: min, prod, "
                        "last, mean (implicit_prm also sum: sigma of the summed step rewards).",
                        choices=(UNSET, "min", "prod", "last", "mean", "sum"))
    samples: int = _f(-1, "genrm models: sample N rationales per completion and average p(Yes) over them "
                      "(GenRM-CoT; 0: the verdict right after the question; -1: the model's saved setting).", low=-1)
    sample_temperature: float = _f(0.0, "genrm models with --samples: the sampling temperature (0: the saved one).",
                                   low=0)
    judge_reward: str = _f(UNSET, "judge models: win_rate or bradley_terry (how pairwise verdicts become rewards).",
                           choices=(UNSET, "win_rate", "bradley_terry"))
    weights: str = _f("", "regression models: the reward's weight per attribute, comma-separated (empty: as saved).")
    per_token: bool = _f(False, "orm and implicit_prm models: also return every completion token's reward "
                         "(token_rewards).")
    ensemble_aggregate: str = _f(UNSET, "Ensembles and --heads models: the aggregate of the members' standardised "
                                 "rewards (Coste et al. 2023): mean, min (worst-case optimisation, WCO) or "
                                 "mean_minus_std (uncertainty-weighted, UWO: mean - coef x std); saved: the "
                                 "ensemble's own (mean for a --heads model).", choices=(UNSET, *ENSEMBLE_AGGREGATES))
    uncertainty_coef: float = _f(-1.0, "mean_minus_std's coef, Coste et al.'s lambda (-1: the ensemble's saved one, "
                                 "else 1).", low=-1)
    members: bool = _f(False, "Ensembles and --heads models: also return each member's (standardised) reward, "
                       "'members'.")

    def __post_init__(self):
        check_choices(self)

    def given(self) -> dict:
        """The options set away from 'as the model has it', by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.default}

    def of_kind(self) -> dict:
        """The given options a model's kind reads (the rest are read above the kinds: ensembles, per token)."""
        return {k: v for k, v in self.given().items() if k not in ENSEMBLE_OPTIONS + ("per_token",)}


ENSEMBLE_OPTIONS = ("ensemble_aggregate", "uncertainty_coef", "members")


def score_options(values: "ScoreOptions | dict | None" = None, **more) -> ScoreOptions:
    """A :class:`ScoreOptions` from an instance, a dict of its fields or keywords (an unknown name
    is an error naming it and the known ones)."""
    if isinstance(values, ScoreOptions) and not more:
        return values
    given = {**(dataclasses.asdict(values) if isinstance(values, ScoreOptions) else dict(values or {})), **more}
    known = [f.name for f in dataclasses.fields(ScoreOptions)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"unknown score option {unknown[0]!r} (known: {', '.join(known)})")
    return ScoreOptions(**given)


@dataclass
class ExportConfig:
    """Merge a LoRA adapter folder into its base model and save a plain Hugging Face reward model."""

    model: str = _f("", "An adapter folder (OUTPUT/adapter, or a checkpoint of a LoRA run).")
    output: str = _f("", "Where to write the merged model.")
    device: str = _f("", "Device: cuda, cuda:1, cpu (default: cuda when available).")
    bf16: bool = _f(False, "Merge and save in bf16 (half the size).")

    def __post_init__(self):
        check_choices(self)


@dataclass
class ScoreConfig:
    """Score rows with a trained reward model; every input row is written back with its rewards."""

    model: str = _f("", "A reward model folder: written by `rewardlab train`, or any Hugging Face "
                    "sequence-classification reward model with one output (a LoRA adapter folder too).")
    data: str = _f("", "Rows with prompt+completion, prompt+completions (a list), chosen/rejected pairs, or "
                   "prompt+steps (process reward models).")
    output: str = _f("", "Output JSONL: the input rows, in input order, with reward / rewards / chosen_reward "
                     "and rejected_reward added (and step_rewards, values, attributes for those kinds).")
    batch_size: int = _f(16, "Most sequences per forward pass (sorted by length, so results do not depend on it).", low=1)
    max_batch_tokens: int = _f(16384, "Most tokens (padding included) per forward pass: short texts go in bigger batches.", low=1)
    max_length: int = _f(0, "Maximum tokens per sequence (0: the value the model was trained with).", low=0)
    skip_bad_rows: bool = _f(False, "Write an invalid row back with an 'error' field (counted) instead of stopping.")
    allow_empty: bool = _f(True, "Accept empty completions (counted); --no-allow-empty makes them errors.")
    device: str = _f("", "Device: cuda, cuda:1, cpu (default: cuda when available).")
    bf16: bool = _f(False, "Load the weights in bf16 (halves memory; rewards differ from fp32 by rounding).")
    scoring: ScoreOptions = field(default_factory=ScoreOptions)
    columns: ColumnArgs = field(default_factory=ColumnArgs)

    def __post_init__(self):
        check_choices(self)


@dataclass
class EvalConfig:
    """Evaluate a reward model: pairwise accuracy on pairs; on groups of K completions also tie accuracy,
    Kendall tau, Spearman, top-1 and best-of-K beside the random and majority-vote baselines; RewardBench,
    RewardBench 2 and RM-Bench files by their own scoring rules."""


    model: str = _f("", "A reward model folder: written by `rewardlab train`, or any Hugging Face "
                    "sequence-classification reward model with one output (a LoRA adapter folder too). Give "
                    "--model several times to compare models on the same rows (paired bootstrap intervals).",
                    repeat=True)
    data: str = _f("", "Pairs or groups, same formats as training data (an optional `subset` column gives "
                   "per-subset accuracies), or a benchmark file. Give --data several times (benchmark files) "
                   "for a leaderboard: every --model on every file, each by its benchmark's own rule.",
                   repeat=True)
    bootstrap_samples: int = _f(1000, "Leaderboard: resamples of the rows for each benchmark's bootstrap interval.",
                                low=10)
    batch_size: int = _f(16, "Prompts per forward pass.", low=1)
    format: str = _f("auto", "Data layout and scoring rule: pairs / groups (rewardlab's rows), rewardbench "
                     "(sections, v1 weighting), rewardbench2 (best-of-N, Ties rule), rm-bench (style matrix), "
                     "judgebench (net vote over both orders, per category; any kind with a reward), processbench "
                     "(a process reward model's first-error F1), prmbench (a PRM's PRMScore), rewardmath (one "
                     "correct solution against nine: accuracy, MRR), rmb (pairwise and best-of-N, helpfulness and "
                     "harmlessness), m-rewardbench (per language), ppe (human preference; best-of-K correctness); "
                     "auto detects it from the columns and says which (the list: rewardlab.eval.evaluate.formats).")
    threshold: float = _f(0.0, "Process reward models: the step-score threshold of ProcessBench's first-error rule "
                          "(0: the model's saved one if any, else chosen on the even rows and reported on the odd) "
                          "and of PRMBench's step validity (0: the benchmark's 0.5).", low=0)
    outside_categories: bool = _f(False, "Benchmark formats (rewardbench, rewardbench2, rm-bench, judgebench): score "
                                  "rows whose subset, domain or source is not one of the benchmark's apart, under their own name, "
                                  "outside the sections and the overall (said on the first line). Without it such "
                                  "a row is an error naming it and the known ones.")
    tie_threshold: float = _f(0.1, "A tied pair counts as predicted tied when its rewards differ by at most this "
                              "many standard deviations of the model's rewards over the evaluated completions (a "
                              "fixed number of reward units means nothing across models).", low=0)
    allow_empty: bool = _f(True, "Accept empty completions (counted); --no-allow-empty makes them errors.")
    max_length: int = _f(0, "Maximum tokens per sequence (0: the value the model was trained with).", low=0)
    json: bool = _f(False, "Print one JSON object on stdout instead of a table.")
    report: str = _f("", "Also write a self-contained HTML report here (figures inline; needs matplotlib).")
    scores_cache: str = _f("", "JSONL file keeping every scored row (model + texts as the key): an interrupted "
                           "evaluation rerun with the same command scores only the rows not yet scored.")
    skip_bad_rows: bool = _f(False, "Leave out invalid rows (counted and listed) instead of stopping at the first.")
    device: str = _f("", "Device: cuda, cuda:1, cpu (default: cuda when available).")
    bf16: bool = _f(False, "Load the weights in bf16 (halves memory; rewards differ from fp32 by rounding).")
    scoring: ScoreOptions = field(default_factory=ScoreOptions)
    columns: ColumnArgs = field(default_factory=ColumnArgs)

    def __post_init__(self):
        check_choices(self)


@dataclass
class ServeConfig:
    """Serve a reward model over HTTP: POST /score (rows), POST /get_reward (OpenRLHF), GET /health."""

    model: str = _f("", "A reward model folder written by `rewardlab train` (or an adapter folder).")
    host: str = _f("127.0.0.1", "Interface to listen on (0.0.0.0: every interface).")
    port: int = _f(5000, "TCP port (5000, as OpenRLHF's reward server; 0 to 65535).", low=0)
    batch_size: int = _f(16, "Most sequences per forward pass.", low=1)
    max_batch_tokens: int = _f(16384, "Token budget of a batch: concurrent requests are scored together up to it.", low=1)
    max_wait_ms: float = _f(5.0, "How long a batch waits after its first request for more to arrive.", low=0)
    batching: bool = _f(True, "Batch concurrent requests together (--no-batching: one request at a time).")
    prefix_sharing: bool = _f(True, "Texts that start with the same tokens share one encoding of that prefix "
                              "(causal models; exact).")
    prefix_cache_mb: float = _f(512.0, "Memory for the keys and values of recent prompts, reused when later "
                                "requests start with the same tokens (0: off; needs --prefix-sharing; causal models on CPU, "
                                "scalar rewards).", low=0)
    normalize: bool = _f(False, "Answer (r - mean) / std with the training rewards' statistics saved in the "
                         "model (train with --reward-stats).")
    api_key_env: str = _f("", "Require 'Authorization: Bearer KEY' with KEY read from this environment variable.")
    max_body_bytes: int = _f(16 * 2**20, "Largest request body (413 beyond it).", low=1)
    max_items: int = _f(4096, "Most texts or rows per request (413 beyond it).", low=1)
    max_item_tokens: int = _f(32768, "Most tokens per text (422 naming the item beyond it; texts longer than "
                              "--max-length are still scored, cut from the left).", low=1)
    max_length: int = _f(0, "Maximum tokens per sequence (0: the value the model was trained with).", low=0)
    device: str = _f("", "Device: cuda, cuda:1, cpu (default: cuda when available).")
    bf16: bool = _f(False, "Load the weights in bf16 (halves memory; rewards differ from fp32 by rounding).")
    drift_threshold: float = _f(0.25, "Warn once in the log when the population-stability index of the served "
                                "rewards against the model's training statistics passes this (0.1: watch; 0.25: "
                                "act). Needs saved statistics (train --reward-stats) or an ensemble.", above=0)
    drift_window: int = _f(10000, "How many of the latest served rewards the drift is measured on.", low=2)
    drift_log: str = _f("", "Append each served text's token count and reward to this JSONL file (off when empty).")
    drift_log_mb: float = _f(64.0, "--drift-log stops growing past this many MB.", low=0)
    scoring: ScoreOptions = field(default_factory=ScoreOptions)

    def __post_init__(self):
        check_choices(self)
        if self.port > 65535:
            raise ConfigError(f"port must be <= 65535, got {self.port}")


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
    temperature: float = _f(0.0, "Sampling temperature; 0 is greedy (the norm for judges: reproducible).", low=0)
    max_new_tokens: int = _f(256, "Most tokens a judgment may generate (the README's measurements used 256); a "
                             "cut-off answer without a verdict is re-asked.", low=1)
    parse_retries: int = _f(1, "Times to re-ask for the verdict alone when an answer has none (then it is an error).", low=0)
    batch_size: int = _f(8, "Local backend: conversations generated together.", low=1)
    concurrency: int = _f(8, "openai backend: requests in flight at once.", low=1)
    timeout: float = _f(120.0, "openai backend: seconds before a request is abandoned and retried.", above=0)
    max_retries: int = _f(5, "openai backend: retries of a timed-out, 429 or 5xx request (exponential backoff).", low=0)
    backoff: float = _f(1.0, "openai backend: first wait in seconds before a retry, doubled each time "
                        "(a server's Retry-After wins).", low=0)
    cache: str = _f("", "Judgment cache (JSONL). Default OUTPUT.cache.jsonl; 'none' disables. Reruns and resumed "
                    "runs reuse every cached judgment.")
    seed: int = _f(0, "Seed for random position order and sampling.")
    eval: bool = _f(False, "Report agreement with the human labels (chosen/rejected rows).")
    json: bool = _f(False, "Print the report as one JSON object on stdout.")
    device: str = _f("", "Local backend device (default: cuda if available, else cpu).")

    def __post_init__(self):
        check_choices(self)


@dataclass
class PrmDataConfig:
    """Write process-supervision rows {prompt, steps, labels} as JSONL. From GSM8K reference solutions
    (--format gsm8k): a seeded share of them gets one wrong calculator result, labelled wrong from that step
    on. Or convert PRM800K, Math-Shepherd, or the CHAMP human annotations of the first wrong step."""

    input: str = _f("", "The source file (GSM8K: train.jsonl or test.jsonl; champ: optional, default the installed "
                    "champ-dataset package's v0.json).")
    output: str = _f("", "JSONL file to write the PRM rows to.")
    format: str = _f("gsm8k", "What --input is.", choices=("gsm8k", "prm800k", "math-shepherd", "champ"))
    seed: int = _f(0, "gsm8k: random seed choosing which solutions and steps to corrupt.")
    limit: int = _f(0, "gsm8k: read only the first N rows (0: all).", low=0)
    corrupt_share: float = _f(0.5, "gsm8k: fraction of solutions, 0 to 1, drawn for a wrong step.", low=0)

    def __post_init__(self):
        check_choices(self)
        if self.corrupt_share > 1:
            raise ConfigError(f"corrupt_share must be between 0 and 1, got {self.corrupt_share}")


@dataclass
class EnsembleConfig:
    """Combine reward models into an ensemble folder that every --model flag accepts: each member's rewards
    standardised with its own statistics, then aggregated (mean, min or mean - coef x std)."""

    model: str = _f("", "A member: a reward model folder with one reward per text (give --model at least twice; "
                    "backbones and kinds may differ).", repeat=True)
    output: str = _f("", "The ensemble folder to write (ensemble.json; members stay where they are, named by "
                     "relative path).")
    aggregate: str = _f("mean", "The aggregate of the members' standardised rewards (Coste et al. 2023): mean, min "
                        "(worst-case optimisation, WCO) or mean_minus_std (uncertainty-weighted optimisation, UWO: "
                        "mean - coef x std).", choices=ENSEMBLE_AGGREGATES)
    uncertainty_coef: float = _f(1.0, "mean_minus_std: the coef (Coste et al.'s lambda).", low=0)
    calibration_data: str = _f("", "Rows (as `rewardlab score` reads them) on which every member's reward mean "
                               "and std are measured and saved; without it each member needs the statistics saved "
                               "at training (train --reward-stats).")
    batch_size: int = _f(16, "Calibration scoring: most sequences per forward pass.", low=1)
    device: str = _f("", "Device: cuda, cuda:1, cpu (default: cuda when available).")

    def __post_init__(self):
        check_choices(self)


@dataclass
class MergeConfig:
    """Average reward models fine-tuned from the same base in weight space (WARM, Rame et al. 2024): one
    model's cost at inference. Writes a plain Hugging Face folder."""

    model: str = _f("", "A member: a reward model folder (a LoRA run's folder holds its merged weights; an adapter "
                    "folder is merged first). Give --model at least twice.", repeat=True)
    output: str = _f("", "Where to write the merged model.")
    weights: str = _f("", "Comma-separated weights, one per --model (normalised to sum 1); default equal.")

    def __post_init__(self):
        check_choices(self)
