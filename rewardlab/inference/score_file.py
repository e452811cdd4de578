"""A file of rows scored as ``rewardlab score`` scores it: every row checked first (so bad input
stops every process with the same message, or with ``skip_bad_rows`` is written back with an
``error`` field), scored through the one scorer in growing chunks (under ``accelerate launch``
each process scores every N-th row), and written back in input order with all its fields."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

from ..data.rows import read_rows, source_name
from ..data.text import chat_rendering, has_chat_template, is_conversation
from ..eval.cache import in_chunks
from .rows import SKIP_HINT, add_rewards, build_groups, score_groups


def score_file(rm, data, output: str, batch_size: int = 16, max_batch_tokens: int = 16384,
               skip_bad_rows: bool = False, allow_empty: bool = True, columns: dict[str, str] | None = None,
               say: Callable[[str], None] | None = None) -> dict:
    """Score every row of ``data`` with ``rm`` (a loaded model, read with its score-time options)
    and write them to ``output`` (main process). Returns what was done: rows, invalid rows,
    empty completions, truncated rows, processes."""
    from accelerate import PartialState
    from accelerate.utils import gather_object

    say = say or (lambda msg: print(msg, file=sys.stderr))
    state = PartialState()
    rows = read_rows(data, keep_bad=True)  # unreadable lines: an error, or written back with it
    groups, fields = build_groups(rows, rm.tokenizer, source_name(data), allow_empty, skip_bad_rows, SKIP_HINT,
                                  columns, rm.chat, rm.step_marker or "\n")
    if state.is_main_process and not has_chat_template(rm.tokenizer) and any(map(is_conversation, rows)):
        say(f"note: {chat_rendering(rm.tokenizer)}")  # the first thing said, before scoring
    mine = list(range(state.process_index, len(rows), state.num_processes))
    results, truncated = _in_chunks(rm, groups, mine, batch_size, max_batch_tokens, state.is_main_process)
    if state.num_processes > 1:
        results = gather_object(results)
        truncated = sum(gather_object([truncated]))
    summary = {"rows": len(rows), "invalid": sum(f.startswith("error: ") for f in fields),
               "empty": sum(not t.completion.strip() for g in groups for t in g), "truncated": truncated,
               "processes": state.num_processes}
    if state.is_main_process:
        by_index = dict(results)
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        with open(output, "w", encoding="utf-8") as f:
            for i, row in enumerate(rows):
                scored, details = by_index[i]
                f.write(json.dumps(add_rewards(row, fields[i], scored, details), ensure_ascii=False, default=str)
                        + "\n")
    return summary


def _in_chunks(rm, groups: list, mine: list[int], batch_size: int, max_tokens: int, show: bool) -> tuple[list, int]:
    """(row index, scored) for this process's rows, in growing chunks (a progress bar moves after
    a few rows; from 4 x batch_size rows up to 4,096, so batches stay full and prompts are
    shared across many rows); and how many rows were truncated."""
    from tqdm.auto import tqdm

    results, truncated = [], []

    def work(part: list[int]) -> None:
        scored, counts = score_groups(rm, [groups[i] for i in part], batch_size, max_tokens)
        results.extend(zip(part, scored))
        truncated.append(counts.truncated if counts else 0)

    bar = tqdm(total=len(mine), desc="score", file=sys.stderr, delay=2, disable=not show, dynamic_ncols=True)
    in_chunks(mine, work, bar, first=4 * batch_size, most=4096)
    bar.close()
    return results, sum(truncated)
