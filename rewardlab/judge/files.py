"""``rewardlab judge``'s work as a call: a file of rows judged (every row checked before the first
judgment, judgments cached), preference rows written out, and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..config import JudgeConfig
from ..errors import ConfigError


def judge_file(cfg: JudgeConfig, say: Callable[[str], None] = print) -> dict:
    """Judge ``cfg.data`` and write ``cfg.output`` (decided pairs) and ``OUTPUT.undecided.jsonl``
    (ties and errors); returns the report (counts, agreement with ``--eval``, timings) with the
    two paths under ``written_to``."""
    from .backends import LocalJudge, OpenAIJudge
    from .data import output_rows, read_items
    from .prompts import load_template, trained_template
    from .run import Cache, Runner, agreement, judge_items

    if cfg.soft and (cfg.backend != "local" or cfg.mode != "pairwise"):
        raise ConfigError("--soft needs --backend local and --mode pairwise (it reads next-token probabilities)")
    template = trained_template(cfg.model) if cfg.backend == "local" and cfg.mode == "pairwise" and not cfg.template \
        else None
    template = template or load_template(cfg.template, cfg.mode, cfg.reference)
    items = read_items(cfg.data, cfg.mode, template.needs_reference)  # every row checked before any call
    if cfg.eval and not all(i.labelled for i in items):
        raise ConfigError("--eval needs human labels: chosen/rejected rows")
    if cfg.backend == "local" and cfg.model == "smollm2":
        say("note: the bundled 135M judge shows the pipeline working, its verdicts are not usable (it prefers "
            "whichever answer comes first); judge with a real model: --backend openai --base-url "
            "http://HOST:8000/v1 --model NAME, or --model /path/to/a/local/instruct/model")
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
    return {**report, "written_to": [str(out), str(rest)], "undecided": len(undecided)}
