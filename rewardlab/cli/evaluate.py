"""``rewardlab eval``: a model's kind on its own rows, benchmark files by their own rules, several
models side by side, and ensembles beside their members."""

from __future__ import annotations

import dataclasses
import json
import sys

from ..config import EvalConfig
from ..data.rows import read_rows
from ..errors import ConfigError
from ..inference.ensemble import apply_options
from .benchmarks import benchmark_format, eval_benchmark, eval_leaderboard
from .common import dtype, models_of, need


def cmd_eval(cfg: EvalConfig) -> int:
    """Evaluate with the model's kind: its rows, its scoring, its metrics, summary and report;
    benchmark formats by their own rules (kinds that score them list them in ``FORMATS``)."""
    from .. import kinds
    from ..inference import RewardModel

    models, datas = models_of(cfg.model), models_of(cfg.data)
    need(models[0] if models else "", "--model"), need(datas[0] if datas else "", "--data")
    if cfg.report:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:  # before hours of scoring, not after
            raise ConfigError("--report draws with matplotlib: pip install 'rewardlab[report]'")
    if len(datas) > 1 or (len(models) > 1 and _is_benchmark(cfg, datas[0])):
        return eval_leaderboard(cfg, models, datas, _score_rows)
    cfg = dataclasses.replace(cfg, data=datas[0])
    if len(models) > 1:
        return _eval_compare(cfg, models)
    cfg = dataclasses.replace(cfg, model=models[0])
    rm = RewardModel.from_pretrained(cfg.model, max_length=cfg.max_length, device=cfg.device or None,
                                     dtype=dtype(cfg.bf16))
    apply_options(rm, cfg.ensemble_aggregate, cfg.uncertainty_coef, name=cfg.model)
    kind = rm.rules
    if rm.ensemble_size > 1 and cfg.format in ("auto", "pairs", "groups"):  # benchmarks: the aggregate, below
        if (benchmark := benchmark_format(cfg, kinds.get(kinds.DEFAULT), cfg.data)) is None:
            return _eval_ensemble(cfg, rm)
        return eval_benchmark(cfg, rm, benchmark, _score_rows)
    if cfg.format not in ("auto", *kind.FORMATS):
        raise ConfigError(f"--format {cfg.format} does not apply to {cfg.model}, a model of kind {rm.kind} "
                          f"(its formats: {', '.join(('auto',) + kind.FORMATS)})")
    if (benchmark := benchmark_format(cfg, kind, cfg.data)) is not None:
        return eval_benchmark(cfg, rm, benchmark, _score_rows)
    return _eval_own_rows(cfg, rm)


def _eval_own_rows(cfg: EvalConfig, rm) -> int:
    """The model's kind on its own rows: its parser, scoring, metrics, summary and report."""
    from .. import kinds
    from ..data.encode import Counts
    from ..data.loader import load_examples

    kind = rm.rules
    obj = kinds.objective_of(rm.settings, tie_threshold=cfg.tie_threshold,
                             **({"prm_threshold": cfg.threshold, "implicit_threshold": cfg.threshold}
                                if cfg.threshold else {}))
    examples = load_examples(cfg.data, rm.tokenizer, cfg.skip_bad_rows, lambda m: print(m, file=sys.stderr),
                             cfg.allow_empty, chat=rm.chat, columns=cfg.columns.mapping(), parse=kind.parser(obj))
    truncated = []

    def score_chunk(idx):
        outputs, counts = kind.score(rm.model, rm.tokenizer, [examples[i] for i in idx], rm.max_length,
                                     cfg.batch_size, obj)
        truncated.append(counts.truncated)
        return outputs

    outputs = _score_rows(cfg, rm, [kind.texts(e) for e in examples], score_chunk)
    metrics = kind.metrics(examples, outputs, obj)
    metrics.update(kind=rm.kind, truncated=sum(truncated), skipped_rows=len(read_rows(cfg.data, keep_bad=True)) - len(examples),
                   empty_completions=sum(e.empty_completions() for e in examples))
    counts = Counts(total=len(examples), truncated=sum(truncated))
    if cfg.report:
        print(f"report: {kind.report(cfg.report, metrics, examples, outputs, cfg.model, cfg.data, obj)}",
              file=sys.stderr)
    if cfg.format == "processbench":  # the benchmark's own keys at the top
        if "processbench" not in metrics:
            raise ConfigError(f"{cfg.data}: ProcessBench needs at least 4 rows with step labels, or --threshold")
        metrics = {**metrics["processbench"], "n": metrics["n"], "truncated": metrics["truncated"]}
        print(json.dumps(metrics) if cfg.json else "ProcessBench\n" + kind.format_eval({"n": metrics["n"],
                                                                                    "processbench": metrics}))
        return 0
    print(json.dumps(metrics) if cfg.json else kind.format_eval(metrics))
    if (msg := counts.report("examples", rm.max_length)):
        print(f"note: {msg}", file=sys.stderr)
    if metrics["empty_completions"]:
        print(f"note: {metrics['empty_completions']} empty completions scored", file=sys.stderr)
    return 0


def _eval_ensemble(cfg: EvalConfig, rm) -> int:
    """An ensemble (a folder, or --heads N) on pairs or groups: the ensemble beside each member
    and aggregation, and whether the spread predicts mistakes (eval/uncertainty.py)."""
    from .. import kinds
    from ..data.loader import load_examples
    from ..eval.preference import format_metrics
    from ..eval.uncertainty import ensemble_metrics, format_ensemble, write_ensemble_report

    rows = kinds.get(kinds.DEFAULT)  # pairs and groups: preference rows, whatever the members' kinds
    obj = kinds.objective_of({}, tie_threshold=cfg.tie_threshold)
    examples = load_examples(cfg.data, rm.tokenizer, cfg.skip_bad_rows, lambda m: print(m, file=sys.stderr),
                             cfg.allow_empty, chat=rm.chat, columns=cfg.columns.mapping(), parse=rows.parser(obj))
    rm.settings.setdefault("ensemble", {})["members"] = True
    truncated = []

    def score_chunk(idx):
        details, counts = rm.group_details([rows.texts(examples[i]) for i in idx], False, cfg.batch_size)
        truncated.append(counts.truncated if counts else 0)
        return details

    details = _score_rows(cfg, rm, [rows.texts(e) for e in examples], score_chunk)
    metrics = ensemble_metrics(examples, details, cfg.tie_threshold,
                               rm.settings["ensemble"].get("uncertainty_coef", 1.0))
    metrics.update(kind="ensemble", members_n=rm.ensemble_size, aggregate=rm.settings["ensemble"].get("aggregate", "mean"),
                   truncated=sum(truncated))
    if cfg.report:
        print(f"report: {write_ensemble_report(cfg.report, metrics, examples, details, cfg.model, cfg.data)}",
              file=sys.stderr)
    print(json.dumps(metrics) if cfg.json else format_metrics(metrics) + "\n" + format_ensemble(metrics))
    if metrics["truncated"]:
        print(f"note: {metrics['truncated']} examples had their prompt cut from the left to fit a member's "
              "max_length", file=sys.stderr)
    return 0


def _score_rows(cfg: EvalConfig, rm, groups: list, score_chunk) -> list[list[float]]:
    """Score in chunks with a progress bar, through --scores-cache when given (resumable)."""
    from ..eval.cache import ScoresCache, model_identity, score_cached

    cache = ScoresCache(cfg.scores_cache)
    rewards, reused = score_cached(groups, score_chunk, model_identity(cfg.model, rm.max_length, rm.settings.get("ensemble")), cache)
    if reused:
        print(f"note: {reused} of {len(groups)} rows taken from {cfg.scores_cache}", file=sys.stderr)
    return rewards


def _eval_compare(cfg: EvalConfig, models: list[str]) -> int:
    """Several models on the same rows: each one's metrics, and for every pair of models the
    difference in pairwise accuracy with a paired bootstrap interval (resampling the pairs)."""
    from .. import kinds
    from ..data.loader import load_examples
    from ..eval.diagnostics import paired_bootstrap
    from ..inference import RewardModel

    if cfg.format not in ("auto", "pairs", "groups"):
        raise ConfigError(f"several --model with --format {cfg.format}: models are compared on rewardlab's pairs or "
                          "groups, and on benchmark files as a leaderboard")
    results, right = {}, {}
    for name in models:
        rm = RewardModel.from_pretrained(name, max_length=cfg.max_length, device=cfg.device or None,
                                         dtype=dtype(cfg.bf16))
        if rm.rules.COMPARES or not (rm.rules.ONE_REWARD_HEAD or rm.ensemble_size > 1):
            raise ConfigError(f"several --model compares models with one reward per completion on pairs; {name} is a "
                              f"model of kind {rm.kind}: evaluate it alone")
        apply_options(rm, cfg.ensemble_aggregate, cfg.uncertainty_coef, name=name) if rm.ensemble_size > 1 else None
        rows = kinds.get(kinds.DEFAULT)  # pairs and groups are preference rows
        obj = kinds.objective_of({}, tie_threshold=cfg.tie_threshold)
        examples = load_examples(cfg.data, rm.tokenizer, cfg.skip_bad_rows, None, cfg.allow_empty, chat=rm.chat,
                                 columns=cfg.columns.mapping(), parse=rows.parser(obj))
        rewards, _ = rm.score_groups([rows.texts(e) for e in examples], cfg.batch_size)
        results[name] = rows.metrics(examples, rewards, obj)
        right[name] = [r[i] > r[j] for e, r in zip(examples, rewards) for i, j in e.strict_pairs()]
    comparisons = [{"a": a, "b": b, **paired_bootstrap(right[a], right[b])}
                   for k, a in enumerate(models) for b in models[k + 1:]]
    if cfg.report:
        from ..eval.report_kinds import write_comparison_report

        print(f"report: {write_comparison_report(cfg.report, results, comparisons, cfg.data)}", file=sys.stderr)
    if cfg.json:
        print(json.dumps({"models": results, "comparisons": comparisons}))
        return 0
    for name in sorted(models, key=lambda m: -results[m]["accuracy"]):
        print(f"{results[name]['accuracy']:.4f}  {name}")
    for c in comparisons:
        print(f"{c['a']} - {c['b']}: {c['difference']:+.4f}  ({c['level']:.0%} interval {c['low']:+.4f} .. {c['high']:+.4f})")
    return 0


def _is_benchmark(cfg: EvalConfig, data: str) -> bool:
    """Whether ``data`` is a benchmark file (several models on it make a leaderboard)."""
    from ..eval.benchmarks import FORMATS, detect

    return cfg.format in FORMATS or (cfg.format == "auto" and detect(read_rows(data), data) is not None)
