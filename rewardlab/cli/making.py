"""``rewardlab train``, ``prm-data`` (process-supervision rows) and ``judge`` (LLM-as-a-judge)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..config import JudgeConfig, PrmDataConfig, TrainConfig
from ..errors import ConfigError
from .common import need


def cmd_train(cfg: TrainConfig) -> int:
    from ..training import train

    result = train(cfg)
    out = cfg.run.output
    print(f"model saved to {out}  ({result['steps']} steps, {result['wall_s']:.0f} s, "
          f"{result['examples_per_s']:.1f} examples/s)")
    print(f"score with:  rewardlab score --model {out} --data ROWS.jsonl --output scored.jsonl")
    return 0


def cmd_prm_data(cfg: PrmDataConfig) -> int:
    from ..data.steps import prm_rows

    need(cfg.output, "--output")
    if cfg.format != "champ":
        need(cfg.input, "--input")
    rows, summary = prm_rows(cfg.input, cfg.format, cfg.seed, cfg.corrupt_share, cfg.limit or None)
    try:
        with open(cfg.output, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    except OSError as e:
        raise ConfigError(f"{cfg.output}: cannot write: {e.strerror or e}") from None
    print(f"wrote {len(rows)} rows to {cfg.output}: {summary}", file=sys.stderr)
    return 0


def cmd_judge(cfg: JudgeConfig) -> int:
    from ..judge.backends import LocalJudge, OpenAIJudge
    from ..judge.data import output_rows, read_items
    from ..judge.prompts import load_template, trained_template
    from ..judge.run import Cache, Runner, agreement, judge_items

    need(cfg.data, "--data"), need(cfg.output, "--output")
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
