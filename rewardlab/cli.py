"""Command line: ``rewardlab train | eval | score | export | judge | serve | prm-data | ensemble | merge``
(also ``python -m rewardlab``).

Each command is a plain function of its config dataclass. Bad input of any kind ends with
one line ``rewardlab: error: FILE: row N: problem`` and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from .config import (EnsembleConfig, EvalConfig, ExportConfig, JudgeConfig, MergeConfig, PrmDataConfig, ScoreConfig,
                     ServeConfig, TrainConfig, add_arguments, load_config)
from .data.rows import read_rows
from .errors import ConfigError, DataError, ModelError, RewardlabError
from .inference.ensemble import apply_options
from .inference.rows import SKIP_HINT, add_rewards, build_groups, score_groups


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def cmd_train(cfg: TrainConfig) -> int:
    from .training import train

    result = train(cfg)
    out = cfg.run.output
    print(f"model saved to {out}  ({result['steps']} steps, {result['wall_s']:.0f} s, "
          f"{result['examples_per_s']:.1f} examples/s)")
    print(f"score with:  rewardlab score --model {out} --data ROWS.jsonl --output scored.jsonl")
    return 0


def cmd_eval(cfg: EvalConfig) -> int:
    """Evaluate with the model's kind: its rows, its scoring, its metrics, summary and report;
    benchmark formats by their own rules (kinds that score them list them in ``FORMATS``)."""
    from . import kinds
    from .data.encode import Counts
    from .data.loader import load_examples
    from .inference import RewardModel

    models = [m for m in (cfg.model if isinstance(cfg.model, list) else [cfg.model]) if m]
    _need(models[0] if models else "", "--model"), _need(cfg.data, "--data")
    if cfg.report:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:  # before hours of scoring, not after
            raise ConfigError("--report draws with matplotlib: pip install 'rewardlab[report]'")
    if len(models) > 1:
        return _eval_compare(cfg, models)
    cfg = dataclasses.replace(cfg, model=models[0])
    rm = RewardModel.from_pretrained(cfg.model, max_length=cfg.max_length, device=cfg.device or None,
                                     dtype=_dtype(cfg.bf16))
    apply_options(rm, cfg.ensemble_aggregate, cfg.uncertainty_coef, name=cfg.model)
    kind = rm.rules
    if rm.ensemble_size > 1 and cfg.format in ("auto", "pairs", "groups"):  # benchmarks: the aggregate, below
        if (benchmark := _benchmark_format(cfg, kinds.get(kinds.DEFAULT))) is None:
            return _eval_ensemble(cfg, rm)
        return _eval_benchmark(cfg, rm, benchmark)
    if cfg.format not in ("auto", *kind.FORMATS):
        raise ConfigError(f"--format {cfg.format} does not apply to {cfg.model}, a model of kind {rm.kind} "
                          f"(its formats: {', '.join(('auto',) + kind.FORMATS)})")
    if (benchmark := _benchmark_format(cfg, kind)) is not None:
        return _eval_benchmark(cfg, rm, benchmark)
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
    from . import kinds
    from .data.loader import load_examples
    from .eval.preference import format_metrics
    from .eval.uncertainty import ensemble_metrics, format_ensemble, write_ensemble_report

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
    return 0


def _score_rows(cfg: EvalConfig, rm, groups: list, score_chunk) -> list[list[float]]:
    """Score in chunks with a progress bar, through --scores-cache when given (resumable)."""
    from .eval.cache import ScoresCache, model_identity, score_cached

    cache = ScoresCache(cfg.scores_cache)
    rewards, reused = score_cached(groups, score_chunk, model_identity(cfg.model, rm.max_length), cache)
    if reused:
        print(f"note: {reused} of {len(groups)} rows taken from {cfg.scores_cache}", file=sys.stderr)
    return rewards


def _eval_compare(cfg: EvalConfig, models: list[str]) -> int:
    """Several models on the same rows: each one's metrics, and for every pair of models the
    difference in pairwise accuracy with a paired bootstrap interval (resampling the pairs)."""
    from . import kinds
    from .data.loader import load_examples
    from .eval.diagnostics import paired_bootstrap
    from .inference import RewardModel

    if cfg.format not in ("auto", "pairs", "groups"):
        raise ConfigError("several --model: give rewardlab's pairs or groups (benchmark formats: one model each)")
    results, right = {}, {}
    for name in models:
        rm = RewardModel.from_pretrained(name, max_length=cfg.max_length, device=cfg.device or None,
                                         dtype=_dtype(cfg.bf16))
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
        from .eval.report_kinds import write_comparison_report

        print(f"report: {write_comparison_report(cfg.report, results, comparisons, cfg.data)}", file=sys.stderr)
    if cfg.json:
        print(json.dumps({"models": results, "comparisons": comparisons}))
        return 0
    for name in sorted(models, key=lambda m: -results[m]["accuracy"]):
        print(f"{results[name]['accuracy']:.4f}  {name}")
    for c in comparisons:
        print(f"{c['a']} - {c['b']}: {c['difference']:+.4f}  ({c['level']:.0%} interval {c['low']:+.4f} .. {c['high']:+.4f})")
    return 0


def _benchmark_format(cfg: EvalConfig, kind):
    """The benchmark module for --format (or the detected one), None for the kind's own rows."""
    from .eval.benchmarks import FORMATS, detect

    if cfg.format not in FORMATS and (cfg.format != "auto" or not set(FORMATS) & set(kind.FORMATS)):
        return None
    name = cfg.format if cfg.format != "auto" else detect(read_rows(cfg.data), cfg.data)
    if cfg.format == "auto":
        own = "pairs/groups" if "pairs" in kind.FORMATS else f"the {kind.NAME} kind's own rows"
        print(f"format: {name or own} (detected from the columns; --format sets it)", file=sys.stderr)
    return FORMATS[name] if name else None


def _check_categories(cfg: EvalConfig, benchmark, rows) -> list[int]:
    """The rows in the benchmark's own subsets/domains. Another one (a misspelled subset would
    silently leave its section) is an error naming it and the known ones, before any scoring;
    with --outside-categories such rows are scored apart."""
    names = [benchmark.category_of(row, cfg.data) for row in rows]
    outside = [i for i, name in enumerate(names) if name is not None and name not in benchmark.KNOWN]
    if outside and len(outside) == len(rows) and cfg.outside_categories:
        raise DataError(f"{cfg.data}: no row is in one of the benchmark's {benchmark.CATEGORY}s "
                        f"({', '.join(benchmark.KNOWN)}); nothing to score by its rule")
    if outside and not cfg.outside_categories:
        i = outside[0]
        others = sorted({names[j] for j in outside})
        raise DataError(f"{cfg.data}: row {rows.number(i)}: {benchmark.CATEGORY} {names[i]!r} is not one of the "
                        f"benchmark's ({', '.join(benchmark.KNOWN)}); {len(outside)} rows in {len(others)} such "
                        f"{benchmark.CATEGORY}s ({', '.join(others[:5])}); --outside-categories scores them apart")
    apart = set(outside)
    return [i for i in range(len(rows)) if i not in apart]


def _eval_benchmark(cfg: EvalConfig, rm, benchmark) -> int:
    """Score every completion of every row once (a row's completions share their prompt), then
    the benchmark's own rule."""
    rows = read_rows(cfg.data)
    groups = [benchmark.texts(row, f"{cfg.data}: row {rows.number(i)}") for i, row in enumerate(rows)]
    inside = _check_categories(cfg, benchmark, rows)
    truncated = []

    def score_chunk(idx):
        details, counts = rm.group_details([groups[i] for i in idx], False, cfg.batch_size)
        truncated.append(counts.truncated)
        # A benchmark that counts a judge's votes over both orders (JudgeBench) gets them from a kind that votes.
        key = "votes" if getattr(benchmark, "VOTES", False) and all("votes" in d for g in details for d in g) \
            else "reward"
        return [[d[key] for d in g] for g in details]

    rewards = _score_rows(cfg, rm, groups, score_chunk)
    metrics = benchmark.score([rows[i] for i in inside], [rewards[i] for i in inside], cfg.data)
    metrics["truncated"] = sum(truncated)
    kept = set(inside)
    apart = [i for i in range(len(rows)) if i not in kept]
    text = benchmark.format_scores(metrics)
    if apart:  # said on the first line: these rows are in no section and not in the overall
        metrics["outside"] = benchmark.by_category([rows[i] for i in apart], [rewards[i] for i in apart], cfg.data)
        metrics["outside_rows"] = len(apart)
        first, _, rest = text.partition("\n")
        text = "\n".join([f"{first}  [+ {len(apart)} rows in {benchmark.CATEGORY}s outside the benchmark, scored "
                          "apart, not in the overall]", rest]
                         + [f"  outside: {name:<19} {value:.4f}" for name, value in metrics["outside"].items()])
    print(json.dumps(metrics) if cfg.json else text)
    if cfg.report:
        from .eval.report_kinds import write_benchmark_report

        name = benchmark.__name__.rsplit(".", 1)[-1]
        print(f"report: {write_benchmark_report(cfg.report, name, metrics, cfg.model, cfg.data)}", file=sys.stderr)
    return 0


def cmd_score(cfg: ScoreConfig) -> int:
    """Under ``accelerate launch`` each process scores every N-th row; the main process
    writes all rows in input order. Every process checks every row first, so bad input
    stops all of them with the same message."""
    from accelerate import PartialState
    from accelerate.utils import gather_object

    from .inference import RewardModel

    _need(cfg.model, "--model"), _need(cfg.data, "--data"), _need(cfg.output, "--output")
    state = PartialState()
    rm = RewardModel.from_pretrained(cfg.model, max_length=cfg.max_length, device=cfg.device or str(state.device),
                                     dtype=_dtype(cfg.bf16))
    rows = read_rows(cfg.data, keep_bad=True)  # unreadable lines: an error, or written back with it
    if cfg.aggregate != "saved":  # the process reward kinds' option (prm: aggregate; implicit_prm: implicit_aggregate)
        rm.settings.setdefault("objective", {}).update(aggregate=cfg.aggregate, implicit_aggregate=cfg.aggregate)
    if cfg.samples >= 0:
        rm.settings.setdefault("objective", {})["genrm_samples"] = cfg.samples
    if cfg.sample_temperature:
        rm.settings.setdefault("objective", {})["genrm_temperature"] = cfg.sample_temperature
    apply_options(rm, cfg.ensemble_aggregate, cfg.uncertainty_coef, cfg.members, cfg.model)
    groups, fields = build_groups(rows, rm.tokenizer, cfg.data, cfg.allow_empty, cfg.skip_bad_rows, SKIP_HINT,
                                  cfg.columns.mapping(), rm.chat, rm.step_marker or "\n")
    mine = list(range(state.process_index, len(rows), state.num_processes))
    results, truncated = _score_in_chunks(rm, groups, mine, cfg, state.is_main_process)
    if state.num_processes > 1:
        results = gather_object(results)
        truncated = sum(gather_object([truncated]))
    if state.is_main_process:
        by_index = dict(results)
        Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
        with open(cfg.output, "w", encoding="utf-8") as f:
            for i, row in enumerate(rows):
                scored, details = by_index[i]
                f.write(json.dumps(add_rewards(row, fields[i], scored, details), ensure_ascii=False, default=str)
                        + "\n")
        print(f"scored {len(rows)} rows -> {cfg.output}"
              + (f" ({state.num_processes} processes)" if state.num_processes > 1 else ""))
        bad = sum(f.startswith("error: ") for f in fields)
        empty = sum(not t.completion.strip() for g in groups for t in g)
        if bad:
            print(f"note: {bad} invalid rows written back with an 'error' field (--skip-bad-rows)", file=sys.stderr)
        if empty:
            print(f"note: {empty} empty completions scored (the reward is read right after the prompt)",
                  file=sys.stderr)
        if truncated:
            print(f"note: {truncated} rows had sequences longer than max_length={rm.max_length}; they were cut "
                  "from the left (the end of the completion is kept)", file=sys.stderr)
    return 0


def _score_in_chunks(rm, groups: list, mine: list[int], cfg: ScoreConfig, show: bool) -> tuple[list, int]:
    """(row index, scored) for this process's rows, in growing chunks (a progress bar moves after
    a few rows; from 4 x --batch-size rows up to 4,096, so batches stay full and prompts are
    shared across many rows); and how many rows were truncated."""
    from tqdm.auto import tqdm

    from .eval.cache import in_chunks

    results, truncated = [], []

    def work(part: list[int]) -> None:
        scored, counts = score_groups(rm, [groups[i] for i in part], cfg.batch_size, cfg.max_batch_tokens,
                                      cfg.per_token)
        results.extend(zip(part, scored))
        truncated.append(counts.truncated if counts else 0)

    bar = tqdm(total=len(mine), desc="score", file=sys.stderr, delay=2, disable=not show, dynamic_ncols=True)
    in_chunks(mine, work, bar, first=4 * cfg.batch_size, most=4096)
    bar.close()
    return results, sum(truncated)


def cmd_export(cfg: ExportConfig) -> int:
    from .inference import RewardModel
    from .models.lora import load_adapter

    _need(cfg.model, "--model"), _need(cfg.output, "--output")
    if not Path(cfg.model, "adapter_config.json").exists():
        raise ModelError(f"{cfg.model}: not a LoRA adapter folder (no adapter_config.json)")
    model, tokenizer, max_length = load_adapter(cfg.model, full_precision=True)  # QLoRA: merge into full precision
    merged = model.merge_and_unload()
    if cfg.bf16:
        merged = merged.to(_dtype(True))
    RewardModel(merged, tokenizer, max_length, device=cfg.device or "cpu").save_pretrained(cfg.output)
    print(f"merged reward model saved to {cfg.output}")
    return 0


def cmd_prm_data(cfg: PrmDataConfig) -> int:
    from .data.steps import prm_rows

    _need(cfg.output, "--output")
    if cfg.format != "champ":
        _need(cfg.input, "--input")
    rows, summary = prm_rows(cfg.input, cfg.format, cfg.seed, cfg.corrupt_share, cfg.limit or None)
    try:
        with open(cfg.output, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    except OSError as e:
        raise ConfigError(f"{cfg.output}: cannot write: {e.strerror or e}") from None
    print(f"wrote {len(rows)} rows to {cfg.output}: {summary}", file=sys.stderr)
    return 0


def cmd_judge(cfg: JudgeConfig) -> int:
    from .judge.backends import LocalJudge, OpenAIJudge
    from .judge.data import output_rows, read_items
    from .judge.prompts import load_template, trained_template
    from .judge.run import Cache, Runner, agreement, judge_items

    _need(cfg.data, "--data"), _need(cfg.output, "--output")
    if cfg.soft and (cfg.backend != "local" or cfg.mode != "pairwise"):
        raise ConfigError("--soft needs --backend local and --mode pairwise (it reads next-token probabilities)")
    template = trained_template(cfg.model) if cfg.backend == "local" and cfg.mode == "pairwise" and not cfg.template \
        else None
    template = template or load_template(cfg.template, cfg.mode, cfg.reference)
    items = read_items(cfg.data, cfg.mode, template.needs_reference)  # every row checked before any call
    if cfg.eval and not all(i.labelled for i in items):
        raise ConfigError("--eval needs human labels: chosen/rejected rows")
    if cfg.backend == "local" and cfg.model == "smollm2":
        print("note: the bundled 135M judge shows the pipeline working, its verdicts are not usable (it prefers "
              "whichever answer comes first); judge with a real model: --backend openai --base-url "
              "http://HOST:8000/v1 --model NAME, or --model /path/to/a/local/instruct/model", file=sys.stderr)
    if cfg.backend == "local":
        backend = LocalJudge(cfg.model, cfg.device or None, cfg.batch_size, cfg.max_new_tokens)
    else:
        backend = OpenAIJudge(cfg.base_url, cfg.model, cfg.api_key_env, cfg.concurrency, cfg.timeout,
                              cfg.max_retries, cfg.backoff, cfg.max_new_tokens)
    cache = Cache(None if cfg.cache == "none" else cfg.cache or cfg.output + ".cache.jsonl")
    runner = Runner(backend, cache, cfg.temperature, cfg.seed)
    stats = judge_items(items, template, runner, cfg.position, cfg.soft, cfg.parse_retries, cfg.seed)
    decided, undecided = output_rows(items, backend.identity, template.name)
    out = Path(cfg.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    rest = out.with_name(out.name.removesuffix(".jsonl") + ".undecided.jsonl")
    for path, rows in ((out, decided), (rest, undecided)):
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
    report = {"n": len(items), "written": len(decided), "ties": sum(i.winner == -1 for i in items),
              "errors": sum(i.error for i in items)}
    if cfg.eval:
        report.update(agreement(items))
    report.update(judgments=runner.asked, fresh_calls=runner.calls,
                  cached=cache.hits, re_asked=stats["repair_asked"], re_ask_fixed=stats["repair_fixed"],
                  cut_at_max_new_tokens=stats["cut"], transport_retries=getattr(backend, "retries", 0),
                  seconds=round(runner.seconds, 2),
                  seconds_per_judgment=round(runner.seconds / runner.calls, 4) if runner.calls else None)
    if cfg.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>24}  {value:.4f}" if isinstance(value, float) else f"{key:>24}  {value}")
    print(f"{len(decided)} rows -> {out}; {len(undecided)} ties/errors -> {rest}", file=sys.stderr)
    return 0


def cmd_serve(cfg: ServeConfig) -> int:
    import importlib.util

    from .serve.app import serve

    _need(cfg.model, "--model")
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise ConfigError("serve needs fastapi and uvicorn: pip install 'rewardlab[serve]'")
    serve(cfg)
    return 0


def cmd_ensemble(cfg: EnsembleConfig) -> int:
    """Check the members, measure or read each one's reward statistics, write ensemble.json."""
    from .inference import RewardModel
    from .inference.ensemble import check_members, reward_stats, write_ensemble
    from .inference.rows import score_rows

    names = [m for m in (cfg.model if isinstance(cfg.model, list) else [cfg.model]) if m]
    _need(cfg.output, "--output")
    members = [RewardModel.from_pretrained(n, device=cfg.device or None) for n in names]
    check_members(members, names)
    rows = read_rows(cfg.calibration_data) if cfg.calibration_data else None
    stats = []
    for rm, name in zip(members, names):
        calibration = None
        if rows is not None:
            scored, _ = score_rows(rm, rows, cfg.calibration_data, cfg.batch_size)
            calibration = [r for row in scored for key in ("reward", "chosen_reward", "rejected_reward")
                           for r in ([row[key]] if key in row else [])] + \
                [r for row in scored for r in row.get("rewards", [])]
        stats.append(reward_stats(rm, name, calibration))
    for rm, name, s in zip(members, names, stats):  # after every member's check: an error comes alone
        print(f"{name}: {rm.kind}, reward mean {s['reward_mean']:+.4f} std {s['reward_std']:.4f} "
              f"({s['from']}, n={s['n']})", file=sys.stderr)
    write_ensemble(cfg.output, names, stats, cfg.aggregate, cfg.uncertainty_coef, cfg.calibration_data)
    print(f"ensemble of {len(names)} members ({cfg.aggregate}) -> {cfg.output}; use it as any --model, e.g. "
          f"rewardlab score --model {cfg.output} --data ROWS.jsonl --output scored.jsonl")
    return 0


def cmd_merge(cfg: MergeConfig) -> int:
    """Average same-base reward models' weights (WARM) into one plain folder."""
    from .inference import RewardModel
    from .inference.merge import average, check_mergeable, merged_settings, parse_weights

    names = [m for m in (cfg.model if isinstance(cfg.model, list) else [cfg.model]) if m]
    _need(cfg.output, "--output")
    weights = parse_weights(cfg.weights, len(names))
    members = [RewardModel.from_pretrained(n, device="cpu") for n in names]
    check_mergeable(members, names)
    model = average(members, weights)
    model.config.rewardlab = merged_settings(members[0].settings, names, weights)
    RewardModel(model, members[0].tokenizer, members[0].max_length, device="cpu").save_pretrained(cfg.output)
    print(f"weight average of {len(names)} models ({', '.join(f'{w:.3g}' for w in weights)}) -> {cfg.output}")
    return 0


def _dtype(bf16: bool):
    import torch

    return torch.bfloat16 if bf16 else None


def _need(value: str, flag: str) -> None:
    if not value:
        raise ConfigError(f"missing {flag}")


COMMANDS = {
    "train": (TrainConfig, cmd_train),
    "eval": (EvalConfig, cmd_eval),
    "score": (ScoreConfig, cmd_score),
    "export": (ExportConfig, cmd_export),
    "judge": (JudgeConfig, cmd_judge),
    "serve": (ServeConfig, cmd_serve),
    "prm-data": (PrmDataConfig, cmd_prm_data),
    "ensemble": (EnsembleConfig, cmd_ensemble),
    "merge": (MergeConfig, cmd_merge),
}


def build_parser() -> argparse.ArgumentParser:
    from . import kinds

    parser = argparse.ArgumentParser(prog="rewardlab", description="Train, evaluate and serve reward models.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (cls, _) in COMMANDS.items():
        p = sub.add_parser(name, help=cls.__doc__, description=cls.__doc__)
        p.add_argument("config", nargs="?", default=None, help="optional YAML file; flags override its values")
        # Training options that belong to one kind are listed under it; --kind takes the registered kinds.
        add_arguments(p, cls, {"kind": tuple(kinds.KINDS)})
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    cls, fn = COMMANDS[args.command]
    resume = getattr(args, "resume", None)
    if resume and args.config is None and resume.endswith((".yaml", ".yml")) and Path(resume).is_file():
        args.config, args.resume = resume, "latest"  # `--resume CONFIG.yaml`: the flag, then the file
    try:
        _quiet_libraries()
        return fn(load_config(cls, args.config, args))
    except RewardlabError as e:
        print(f"rewardlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
