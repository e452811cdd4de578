"""``rewardlab.evaluate``: a model on its kind's rows or on a benchmark file, each by its own
rule, as a typed :class:`EvalResult` (``rewardlab eval`` prints it: ``--json`` is
:meth:`EvalResult.to_json`, ``--report`` :meth:`EvalResult.report`). Several models on one file
are compared side by side; models on several benchmark files make a leaderboard
(run_benchmarks.py). Every text goes through the one scorer (``RewardModel.score_details``).

This module sits above ``inference`` (it loads models): the metrics it calls are the lower
modules of this package and the kinds'.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Callable

from .. import kinds
from ..config import EvalConfig, ModelSettings, ScoreOptions, score_options
from ..data.encode import Counts
from ..data.loader import load_examples
from ..data.rows import read_rows, source_name
from ..errors import ConfigError
from .benchmarks import FORMATS
from .diagnostics import bias_intervals, lift_warnings, warned
from .run_benchmarks import benchmark_format, eval_benchmark, eval_leaderboard, is_benchmark
from .runner import EvalResult, load, name_of, need_matplotlib, score_rows


def evaluate(model, data, format: str = "auto", *, options: ScoreOptions | dict | None = None,
             say: Callable[[str], None] | None = None, **settings) -> EvalResult:
    """Evaluate ``model`` on ``data`` as ``rewardlab eval`` does, and return the result.

    ``model``: a folder, a loaded :class:`rewardlab.RewardModel` (or ensemble), or a list of them
    (compared on the same rows; on benchmark files, a leaderboard). ``data``: a path, rows in
    memory (a list of dicts, a ``datasets.Dataset``), or a list of benchmark files. ``format``:
    ``auto`` (detected from the columns), ``pairs``, ``groups``, or a benchmark's name.
    ``options``: score-time options (:class:`rewardlab.config.ScoreOptions`). ``settings``: any
    other field of :class:`rewardlab.config.EvalConfig` (``batch_size``, ``threshold``,
    ``tie_threshold``, ``scores_cache``, ``skip_bad_rows``, ``outside_categories``, ...).
    ``say``: where notes go (default: stderr).
    """
    known = {f.name for f in dataclasses.fields(EvalConfig)} - {"model", "data", "format", "scoring", "json", "report"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"evaluate: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    cfg = EvalConfig(format=format, scoring=score_options(options), **settings)
    models = model if isinstance(model, (list, tuple)) else [model]
    datas = data if isinstance(data, (list, tuple)) and data and all(isinstance(d, str) for d in data) else [data]
    return run(cfg, list(models), list(datas), say)


def formats() -> tuple[str, ...]:
    """Every ``--format``: auto, the kinds' own (pairs, groups, processbench) and the benchmarks,
    as registered now (a benchmark added to ``benchmarks.FORMATS`` is one at once)."""
    own = dict.fromkeys(f for kind in kinds.KINDS.values() for f in kind.FORMATS)
    return ("auto", *own, *FORMATS)


def run(cfg: EvalConfig, models: list, datas: list, say: Callable[[str], None] | None = None) -> EvalResult:
    """The evaluation ``cfg`` asks for (``rewardlab eval``'s dispatch): a leaderboard, a comparison, an
    ensemble, a benchmark file, or the kind's own rows."""
    notes: list[str] = []
    tell = _teller(say, notes)
    if not models or not datas or any(d is None or d == "" for d in datas):
        raise ConfigError("missing --model" if not models else "missing --data")
    if cfg.format not in formats():
        raise ConfigError(f"format must be one of {', '.join(formats())}, got {cfg.format!r}")
    if len(datas) > 1 or (len(models) > 1 and is_benchmark(cfg, datas[0])):
        return _noted(eval_leaderboard(cfg, models, datas, tell), notes)
    data = datas[0]
    if len(models) > 1:
        return _noted(eval_compare(cfg, models, data, tell), notes)
    rm = load(models[0], cfg, tell)
    if rm.ensemble_size > 1 and cfg.format in ("auto", "pairs", "groups"):  # benchmarks: the aggregate, below
        if (benchmark := benchmark_format(cfg, kinds.get(kinds.DEFAULT), data, tell)) is None:
            return _noted(eval_ensemble(cfg, rm, data, tell), notes)
        return _noted(eval_benchmark(cfg, rm, benchmark, data, tell), notes)
    kind = rm.rules
    if cfg.format not in ("auto", *kind.FORMATS, *FORMATS):
        raise ConfigError(f"--format {cfg.format} does not apply to {name_of(rm)}, a model of kind {rm.kind} "
                          f"(its formats: {', '.join(('auto', *kind.FORMATS, *FORMATS))})")
    if (benchmark := benchmark_format(cfg, kind, data, tell)) is not None:
        return _noted(eval_benchmark(cfg, rm, benchmark, data, tell), notes)
    return _noted(eval_own_rows(cfg, rm, data, tell), notes)


def _teller(say, notes: list[str]) -> Callable[[str], None]:
    say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))

    def tell(msg: str) -> None:
        notes.append(msg)
        say(msg)
    return tell


def _noted(result: EvalResult, notes: list[str]) -> EvalResult:
    result.notes = notes
    return result


def eval_own_rows(cfg: EvalConfig, rm, data, tell) -> EvalResult:
    """The model's kind on its own rows: its parser, the one scorer, its metrics, summary and report."""
    kind = rm.rules
    if cfg.threshold and "threshold" not in kinds.score_fields(kind):
        raise ConfigError(f"--threshold: a model of kind {kind.NAME} has no step threshold (it applies to process "
                          f"reward models, {', '.join(kinds.takers('threshold'))}, and to PRMBench files)")
    if cfg.tie_threshold != EvalConfig().tie_threshold and "tie_threshold" not in kinds.score_fields(kind):
        raise ConfigError(f"--tie-threshold: a model of kind {kind.NAME} on its own rows has no tied pairs to read "
                          "(it applies to pairs and groups)")
    obj = kinds.scoring_options(kind, rm.settings, rm.options, tie_threshold=cfg.tie_threshold,
                                **({"threshold": cfg.threshold} if cfg.threshold else {}))
    examples = load_examples(data, rm.tokenizer, cfg.skip_bad_rows, tell, cfg.allow_empty, chat=rm.chat,
                             columns=cfg.columns.mapping(), parse=kind.parser(obj))
    details, truncated = score_rows(cfg, rm, [kind.texts(e) for e in examples], tell)
    metrics = kind.metrics(examples, details, obj)
    warnings = lift_warnings(metrics)  # a model that learned nothing is said first
    metrics.update(kind=rm.kind, truncated=truncated, rows_scored=len(examples),
                   skipped_rows=len(read_rows(data, keep_bad=True)) - len(examples),
                   empty_completions=sum(e.empty_completions() for e in examples))
    name, where = name_of(rm), source_name(data)

    def writer(path: str) -> str:
        return kind.report(path, metrics, examples, details, name, where, obj)
    if cfg.format == "processbench":  # the benchmark's own keys at the top
        if "processbench" not in metrics:
            raise ConfigError(f"{where}: ProcessBench needs at least 4 rows with step labels, or --threshold")
        pb = {**metrics["processbench"], "n": metrics["n"], "truncated": metrics["truncated"],
              "rows_scored": metrics["rows_scored"], "skipped_rows": metrics["skipped_rows"],
              **({"warnings": warnings} if warnings else {})}
        text = warned("ProcessBench\n" + kind.format_eval({"n": pb["n"], "processbench": pb}), warnings)
        return EvalResult(pb, text, rm.kind, "processbench", details, examples, writer=writer, headline_key="f1")
    if (msg := Counts(total=len(examples), truncated=truncated).report("examples", rm.max_length)):
        tell(f"note: {msg}")
    if metrics["empty_completions"]:
        tell(f"note: {metrics['empty_completions']} empty completions scored")
    return EvalResult(metrics, warned(kind.format_eval(metrics), warnings), rm.kind, kind.NAME, details, examples,
                      writer=writer, headline_key=kind.HEADLINE)


def _preference_rows(cfg: EvalConfig, tokenizer, chat: bool, data, tell):
    """Pairs and groups are preference rows, whatever the models' kinds: the kind, its options and the examples."""
    rows = kinds.get(kinds.DEFAULT)
    obj = kinds.saved_options(rows, ModelSettings(), tie_threshold=cfg.tie_threshold)
    examples = load_examples(data, tokenizer, cfg.skip_bad_rows, tell, cfg.allow_empty, chat=chat,
                             columns=cfg.columns.mapping(), parse=rows.parser(obj))
    return rows, obj, examples


def eval_ensemble(cfg: EvalConfig, rm, data, tell) -> EvalResult:
    """An ensemble (a folder, or --heads N) on pairs or groups: the ensemble beside each member
    and aggregation, and whether the spread predicts mistakes (eval/uncertainty.py)."""
    from .preference import format_metrics
    from .uncertainty import ensemble_metrics, format_ensemble, write_ensemble_report

    rows, _, examples = _preference_rows(cfg, rm.tokenizer, rm.chat, data, tell)
    rm = rm.with_options(rm.options, members=True)
    details, truncated = score_rows(cfg, rm, [rows.texts(e) for e in examples], tell)
    how = rm.reading
    metrics = ensemble_metrics(examples, details, cfg.tie_threshold, how["uncertainty_coef"])
    warnings = lift_warnings(metrics)
    metrics.update(kind="ensemble", members_n=rm.ensemble_size, aggregate=how["aggregate"], truncated=truncated,
                   rows_scored=len(examples), skipped_rows=len(read_rows(data, keep_bad=True)) - len(examples))
    if metrics["truncated"]:
        tell(f"note: {metrics['truncated']} examples had their prompt cut from the left to fit a member's max_length")
    name, where = name_of(rm), source_name(data)
    return EvalResult(metrics, warned(format_metrics(metrics) + "\n" + format_ensemble(metrics), warnings),
                      "ensemble", "ensemble",
                      details, examples, headline_key="accuracy",
                      writer=lambda path: write_ensemble_report(path, metrics, examples, details, name, where))


def eval_compare(cfg: EvalConfig, models: list, data, tell) -> EvalResult:
    """Several models on the same rows: each one's metrics, and for every pair of models the
    difference in pairwise accuracy with a paired bootstrap interval (resampling the pairs)."""
    from .diagnostics import paired_bootstrap

    if cfg.format not in ("auto", "pairs", "groups"):
        raise ConfigError(f"several --model with --format {cfg.format}: models are compared on rewardlab's pairs or "
                          "groups, and on benchmark files as a leaderboard")
    results, right, names = {}, {}, []
    for model in models:
        rm = load(model, cfg, tell)
        name = name_of(rm) if not isinstance(model, str) else model
        names.append(name)
        rows, obj, examples = _preference_rows(cfg, rm.tokenizer, rm.chat, data, None)
        details, _ = rm.group_details([rows.texts(e) for e in examples], cfg.batch_size)
        results[name] = rows.metrics(examples, details, obj)
        rewards = [[d["reward"] for d in g] for g in details]
        right[name] = [r[i] > r[j] for e, r in zip(examples, rewards) for i, j in e.strict_pairs()]
        if examples and all(e.is_pair for e in examples):  # the bias numbers, each with its interval
            results[name]["bias"] = bias_intervals([e.chosen for e in examples], [e.rejected for e in examples],
                                                   [r[0] for r in rewards], [r[1] for r in rewards],
                                                   samples=cfg.bootstrap_samples)
    comparisons = [{"a": a, "b": b, **paired_bootstrap(right[a], right[b])}
                   for k, a in enumerate(names) for b in names[k + 1:]]
    lines = [f"{results[n]['accuracy']:.4f}  {n}" for n in sorted(names, key=lambda m: -results[m]["accuracy"])]
    lines += [f"{c['a']} - {c['b']}: {c['difference']:+.4f}  ({c['level']:.0%} interval {c['low']:+.4f} .. "
              f"{c['high']:+.4f})" for c in comparisons]
    lines += [line for n in names if "bias" in results[n] for line in _bias_lines(n, results[n]["bias"])]

    def writer(path: str) -> str:
        from .report_kinds import write_comparison_report

        return write_comparison_report(path, results, comparisons, source_name(data))
    return EvalResult({"models": results, "comparisons": comparisons}, "\n".join(lines), "compare", "compare",
                      writer=writer)


def _bias_lines(name: str, bias: dict) -> list[str]:
    """A model's bias numbers with their 95% intervals, one line each."""
    def cell(v):
        return "n/a" if v["value"] is None else (f"{v['value']:+.4f} [{v['low']:+.4f}, {v['high']:+.4f}]"
                                                  if v["low"] is not None else f"{v['value']:+.4f}")
    return [f"  {name}: {key.replace('_', ' ')} {cell(v)}" for key, v in bias.items()]


def examples_details(rm, kind, examples: list, batch_size: int = 16) -> list:
    """Every example's details (its texts through the one scorer), without a cache or progress
    bar: training's evaluation scores its share of the held-out rows with this."""
    if not examples:
        return []
    details, _ = rm.group_details([kind.texts(e) for e in examples], batch_size)
    return details


__all__ = ["EvalResult", "evaluate", "examples_details", "need_matplotlib", "run"]
