"""Benchmark files evaluated by their own rules (eval/benchmarks/), and a leaderboard of several
models on several benchmark files (models x benchmarks, each with its own headline number and a
bootstrap interval). ``rewardlab.evaluate`` dispatches here (evaluate.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import EvalConfig
from ..data.rows import read_rows, source_name
from ..data.text import chat_rendering
from ..errors import ConfigError, DataError
from .benchmarks import FORMATS, Benchmark, Render, detect, interval, options
from .diagnostics import degenerate, warned
from .runner import EvalResult, load, name_of, score_rows


def is_benchmark(cfg: EvalConfig, data) -> bool:
    """Whether ``data`` is a benchmark file (several models on it make a leaderboard)."""
    rows = read_rows(data, keep_bad=True) if cfg.format == "auto" else None  # a broken line: counted later
    return cfg.format in FORMATS or (rows is not None and detect(rows, source_name(data)) is not None)


def benchmark_format(cfg: EvalConfig, kind, data, tell) -> Benchmark | None:
    """The benchmark for --format (or the one detected from ``data``'s columns), None for the
    kind's own rows. The detected format is said on the first line."""
    if cfg.format not in FORMATS and cfg.format != "auto":
        return None
    name = cfg.format if cfg.format != "auto" else detect(read_rows(data, keep_bad=True), source_name(data))
    if cfg.format == "auto":
        own = "pairs/groups" if "pairs" in kind.FORMATS else f"the {kind.NAME} kind's own rows"
        tell(f"format: {name or own} (detected from the columns; --format sets it)")
    return FORMATS[name] if name else None


def check_categories(cfg: EvalConfig, benchmark: Benchmark, rows, data: str) -> list[int]:
    """The rows in the benchmark's own categories. Another one (a misspelled subset would
    silently leave its section) is an error naming it and the known ones, before any scoring;
    with --outside-categories such rows are scored apart."""
    names = [benchmark.category_of(row, data) for row in rows]
    outside = [i for i, name in enumerate(names) if name is not None and name not in benchmark.KNOWN]
    if outside and len(outside) == len(rows) and cfg.outside_categories:
        raise DataError(f"{data}: no row is in one of the benchmark's {benchmark.CATEGORY}s "
                        f"({', '.join(benchmark.KNOWN)}); nothing to score by its rule")
    if outside and not cfg.outside_categories:
        i = outside[0]
        others = sorted({names[j] for j in outside})
        raise DataError(f"{rows.where(i, data)}: {benchmark.CATEGORY} {names[i]!r} is not one of the "
                        f"benchmark's ({', '.join(benchmark.KNOWN)}); {len(outside)} rows in {len(others)} such "
                        f"{benchmark.CATEGORY}s ({', '.join(others[:5])}); --outside-categories scores them apart")
    apart = set(outside)
    return [i for i in range(len(rows)) if i not in apart]


def run_benchmark(cfg: EvalConfig, rm, benchmark: Benchmark, data, tell) -> tuple[dict, list, list]:
    """Score every completion of every row once (a row's completions share their prompt), then
    the benchmark's own rule: its metrics, and the rows and what was read of them (for intervals)."""
    where = source_name(data)
    if cfg.threshold and benchmark.THRESHOLD is None:
        raise ConfigError(f"--threshold: {benchmark.NAME} has no step threshold (it applies to PRMBench and to a "
                          "process reward model's own rows)")
    if benchmark.STEPS and rm.step_marker is None:
        raise ConfigError(f"{where}: {benchmark.NAME} scores each step: it needs a process reward model "
                          f"(one with step scores), and {name_of(rm)} is a model of kind {rm.kind}")
    if benchmark.CONVERSATIONS:
        tell(f"{benchmark.NAME}: {chat_rendering(rm.tokenizer)}")
    rows = read_rows(data)
    render = Render(rm.tokenizer, rm.step_marker)
    groups = [benchmark.texts(row, rows.where(i, where), render) for i, row in enumerate(rows)]
    inside = check_categories(cfg, benchmark, rows, where)

    def read(details: list) -> list:
        # A benchmark that counts a judge's votes over both orders (JudgeBench) gets them from a kind that votes.
        if benchmark.VOTES and all("votes" in d for g in details for d in g):
            return [[d["votes"] for d in g] for g in details]
        return [[benchmark.read(d) for d in g] for g in details]

    rewards, truncated = score_rows(cfg, rm, groups, tell, read)
    kept_rows, kept = [rows[i] for i in inside], [rewards[i] for i in inside]
    metrics = benchmark.score(kept_rows, kept, where, **options(benchmark, cfg.threshold))
    metrics["truncated"], metrics["rows_scored"] = truncated, len(rows)
    if flat := [x for r in rewards for x in (r if isinstance(r, list) else [r]) if isinstance(x, (int, float))]:
        if warnings := degenerate(flat):  # the same reward for every text: nothing the rule measures
            metrics["warnings"] = warnings
    apart = sorted(set(range(len(rows))) - set(inside))
    if apart:
        metrics["outside"] = benchmark.by_category([rows[i] for i in apart], [rewards[i] for i in apart], where)
        metrics["outside_rows"] = len(apart)
    return metrics, kept_rows, kept


def eval_benchmark(cfg: EvalConfig, rm, benchmark: Benchmark, data, tell) -> EvalResult:
    """One model on one benchmark file: the benchmark's numbers (its headline at the top under
    its own name, per-category numbers under ``categories``) and its report."""
    metrics, rows, rewards = run_benchmark(cfg, rm, benchmark, data, tell)
    text = warned(benchmark.format_scores(metrics), metrics.get("warnings", []))
    if metrics.get("outside"):  # said on the first line: these rows are in no section and not in the headline
        first, _, rest = text.partition("\n")
        text = "\n".join([f"{first}  [+ {metrics['outside_rows']} rows in {benchmark.CATEGORY}s outside the "
                          "benchmark, scored apart, not in the overall]", rest]
                         + [f"  outside: {name:<19} {value:.4f}" for name, value in metrics["outside"].items()])
    name, where = name_of(rm), source_name(data)

    def writer(path: str) -> str:
        from .report_kinds import write_benchmark_report

        return write_benchmark_report(path, benchmark.NAME, metrics, name, where)
    return EvalResult(metrics, text, rm.kind, benchmark.NAME, rewards, rows, writer=writer,
                      headline_key=benchmark.HEADLINE)


def eval_leaderboard(cfg: EvalConfig, models: list, datas: list, tell) -> EvalResult:
    """Several models on several benchmark files: each file by its own rule, each model loaded
    once; a table of models x benchmarks with each benchmark's headline and a bootstrap interval
    (rows resampled, the benchmark's rule applied again: eval/benchmarks/__init__.py)."""
    files = []
    for data in datas:
        name = cfg.format if cfg.format in FORMATS else detect(read_rows(data), data)
        if name is None or cfg.format in ("pairs", "groups"):
            raise ConfigError(f"{data}: not a benchmark file (several --data make a leaderboard of benchmark "
                              f"files; formats: {', '.join(FORMATS)}); to compare models on pairs give one --data")
        files.append((data, FORMATS[name], f"{name}: {Path(data.split('[')[0]).name}"))
        tell(f"format: {data}: {name}" + (" (detected from the columns)" if cfg.format == "auto" else ""))
    board: dict[str, dict[str, dict]] = {}
    for model in models:
        rm = load(model, cfg, tell)
        key = model if isinstance(model, str) else name_of(rm)
        board[key] = {}
        for data, benchmark, column in files:
            metrics, rows, rewards = run_benchmark(dataclasses.replace(cfg, data=data), rm, benchmark, data, tell)
            ci = interval(benchmark, rows, rewards, data, samples=cfg.bootstrap_samples,
                          **options(benchmark, cfg.threshold))
            board[key][column] = {"headline": benchmark.HEADLINE, "number": metrics[benchmark.HEADLINE],
                                  "low": ci[0] if ci else None, "high": ci[1] if ci else None, "metrics": metrics}
    columns = [c for _, _, c in files]

    def writer(path: str) -> str:
        from .report_kinds import write_leaderboard_report

        return write_leaderboard_report(path, board, columns)
    return EvalResult({"leaderboard": board, "benchmarks": columns}, format_leaderboard(board, columns),
                      "leaderboard", "leaderboard", writer=writer)


def format_leaderboard(board: dict, columns: list[str]) -> str:
    lines = []
    for column in columns:
        lines.append(column)
        for model, cells in board.items():
            c = cells[column]
            ci = f"  [{c['low']:.4f}, {c['high']:.4f}]" if c["low"] is not None else ""
            lines.append(f"  {c['headline']:<10} {c['number']:.4f}{ci}  {model}")
    return "\n".join(lines)
