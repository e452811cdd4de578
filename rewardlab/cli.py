"""Command line: ``rewardlab train | eval | score | export`` (also ``python -m rewardlab``).

Each command is a plain function of its config dataclass. Bad input of any kind ends with
one line ``rewardlab: error: FILE: row N: problem`` and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import ConfigError, EvalConfig, ExportConfig, ScoreConfig, TrainConfig, add_arguments, load_config
from .data import DataError, Text, check_pair, read_rows, to_text
from .models import ModelError


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def cmd_train(cfg: TrainConfig) -> int:
    from .train import train

    result = train(cfg)
    print(f"model saved to {cfg.output}  ({result['steps']} steps, {result['wall_s']:.0f} s, "
          f"{result['pairs_per_s']:.1f} pairs/s)")
    print(f"score with:  rewardlab score --model {cfg.output} --data ROWS.jsonl --output scored.jsonl")
    return 0


def cmd_eval(cfg: EvalConfig) -> int:
    from .data import load_pairs
    from .evaluate import evaluate_pairs, format_metrics
    from .models import RewardModel

    _need(cfg.model, "--model"), _need(cfg.data, "--data")
    rm = RewardModel.from_pretrained(cfg.model, max_length=cfg.max_length)
    pairs = load_pairs(cfg.data, rm.tokenizer, cfg.skip_bad_rows, lambda m: print(m, file=sys.stderr))
    metrics, counts = evaluate_pairs(rm.model, rm.tokenizer, pairs, rm.max_length, cfg.batch_size)
    metrics["truncated"] = counts.truncated
    metrics["skipped_rows"] = len(read_rows(cfg.data)) - len(pairs)
    if cfg.json:
        print(json.dumps(metrics))
    else:
        print(format_metrics(metrics))
    if (msg := counts.report("pairs", rm.max_length)):
        print(f"note: {msg}", file=sys.stderr)
    return 0


def score_rows(rm, rows: list[dict], where: str, batch_size: int = 16,
               max_tokens: int = 16384) -> tuple[list[dict], object]:
    """Add rewards to rows: prompt+completion -> reward; prompt+completions -> rewards;
    chosen+rejected -> chosen_reward, rejected_reward. Rows are copied, never changed."""
    groups: list[list[Text]] = []  # one group per row: its completions share the prompt
    fields: list[str] = []
    for n, row in enumerate(rows):
        at = f"{where}: row {rows.number(n)}"
        if "completions" in row and row["completions"] is not None:
            if not isinstance(row["completions"], list) or not row["completions"]:
                raise DataError(f"{at}: 'completions' must be a non-empty list")
            groups.append([to_text(row.get("prompt"), c, rm.tokenizer, at, f"completion {k}")
                           for k, c in enumerate(row["completions"])])
            fields.append("rewards")
        elif "completion" in row and row["completion"] is not None:
            groups.append([to_text(row.get("prompt"), row["completion"], rm.tokenizer, at)])
            fields.append("reward")
        elif "chosen" in row or "rejected" in row:
            pair = check_pair(row, rm.tokenizer, at, rows.number(n))
            groups.append([Text(pair.prompt, pair.chosen, pair.templated),
                           Text(pair.prompt, pair.rejected, pair.templated)])
            fields.append("pair")
        else:
            raise DataError(f"{at}: expected 'prompt' + 'completion', 'prompt' + 'completions' (a list), "
                            f"or 'chosen' + 'rejected'; found columns: {', '.join(row) or 'none'}")
    rewards, counts = rm.score_groups(groups, batch_size, max_tokens)
    out = [dict(row) for row in rows]
    for row, field, r in zip(out, fields, rewards):
        if field == "rewards":
            row["rewards"] = r
        elif field == "reward":
            row["reward"] = r[0]
        else:
            row["chosen_reward"], row["rejected_reward"] = r
    return out, counts


def cmd_score(cfg: ScoreConfig) -> int:
    from .models import RewardModel

    _need(cfg.model, "--model"), _need(cfg.data, "--data"), _need(cfg.output, "--output")
    rm = RewardModel.from_pretrained(cfg.model, max_length=cfg.max_length)
    rows = read_rows(cfg.data)
    scored, counts = score_rows(rm, rows, cfg.data, cfg.batch_size, cfg.max_batch_tokens)
    Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
    with open(cfg.output, "w", encoding="utf-8") as f:
        for row in scored:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    print(f"scored {len(scored)} rows -> {cfg.output}")
    if counts.truncated:
        print(f"note: {counts.truncated} sequences were longer than max_length={rm.max_length} and were cut "
              "from the left (the end of the completion is kept)", file=sys.stderr)
    return 0


def cmd_export(cfg: ExportConfig) -> int:
    from .lora import load_adapter
    from .models import RewardModel

    _need(cfg.model, "--model"), _need(cfg.output, "--output")
    if not Path(cfg.model, "adapter_config.json").exists():
        raise ModelError(f"{cfg.model}: not a LoRA adapter folder (no adapter_config.json)")
    model, tokenizer, max_length = load_adapter(cfg.model)
    RewardModel(model.merge_and_unload(), tokenizer, max_length).save_pretrained(cfg.output)
    print(f"merged reward model saved to {cfg.output}")
    return 0


def _need(value: str, flag: str) -> None:
    if not value:
        raise ConfigError(f"missing {flag}")


COMMANDS = {
    "train": (TrainConfig, cmd_train),
    "eval": (EvalConfig, cmd_eval),
    "score": (ScoreConfig, cmd_score),
    "export": (ExportConfig, cmd_export),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rewardlab", description="Train, evaluate and serve reward models.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (cls, _) in COMMANDS.items():
        p = sub.add_parser(name, help=cls.__doc__, description=cls.__doc__)
        p.add_argument("config", nargs="?", default=None, help="optional YAML file; flags override its values")
        add_arguments(p, cls)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cls, fn = COMMANDS[args.command]
    try:
        _quiet_libraries()
        return fn(load_config(cls, args.config, args))
    except (ConfigError, DataError, ModelError) as e:
        print(f"rewardlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
