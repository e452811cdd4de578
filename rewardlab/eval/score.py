"""Scoring rows as ``rewardlab score`` and ``POST /score`` read them; every row is written back.

Row forms: prompt + completion -> ``reward``; prompt + completions (a list) -> ``rewards``;
chosen + rejected -> ``chosen_reward``, ``rejected_reward``. Rows are written back in input
order with all their fields. With ``skip_bad`` an invalid row is written back too, with an
``error`` field instead of rewards, and counted: nothing the user wrote is lost.
"""

from __future__ import annotations

from ..data.preference import check_pair, rename_columns
from ..data.text import Text, to_text
from ..errors import DataError


def row_texts(row: dict, tokenizer, at: str, allow_empty: bool = True,
              columns: dict[str, str] | None = None, chat: bool = False) -> tuple[list[Text], str]:
    """One row -> the texts to score (sharing a prompt) and the field their rewards go to."""
    if columns:
        row = rename_columns(row, columns)
    if "completions" in row and row["completions"] is not None:
        if not isinstance(row["completions"], list) or not row["completions"]:
            raise DataError(f"{at}: 'completions' must be a non-empty list")
        return [to_text(row.get("prompt"), c, tokenizer, at, f"completion {k}", allow_empty, chat)
                for k, c in enumerate(row["completions"])], "rewards"
    if "completion" in row and row["completion"] is not None:
        return [to_text(row.get("prompt"), row["completion"], tokenizer, at, "completion", allow_empty, chat)], "reward"
    if isinstance(row.get("chosen"), list) and isinstance(row.get("rejected"), list) and \
            all(isinstance(c, str) for c in row["chosen"] + row["rejected"]):  # RewardBench 2, RM-Bench rows
        return [to_text(row.get("prompt"), c, tokenizer, at, "completion", allow_empty, chat)
                for c in row["chosen"] + row["rejected"]], f"lists:{len(row['chosen'])}"
    if "chosen" in row or "rejected" in row:
        pair = check_pair(row, tokenizer, at, 0, allow_empty, chat)
        return [Text(pair.prompt, c, pair.templated) for c in pair.completions], "pair"
    raise DataError(f"{at}: expected 'prompt' + 'completion', 'prompt' + 'completions' (a list), "
                    f"or 'chosen' + 'rejected'; found columns: {', '.join(row) or 'none'}")


SKIP_HINT = " (--skip-bad-rows writes such rows back with an 'error' field)"


def build_groups(rows, tokenizer, where: str, allow_empty: bool = True, skip_bad: bool = False,
                 hint: str = "", columns: dict[str, str] | None = None,
                 chat: bool = False) -> tuple[list[list[Text]], list[str]]:
    """Check every row: a group of texts per row and the field its rewards go to. With
    ``skip_bad`` a bad row gets an empty group and the field ``error: MESSAGE``; without it,
    the first bad row raises, its message ending with ``hint``."""
    groups: list[list[Text]] = []
    fields: list[str] = []
    number = getattr(rows, "number", lambda i: i + 1)  # plain lists are numbered from 1
    for n, row in enumerate(rows):
        at = f"{where}: row {number(n)}"
        try:
            texts, field = row_texts(row, tokenizer, at, allow_empty, columns, chat)
        except DataError as e:
            if not skip_bad:
                raise DataError(str(e) + hint) from None
            texts, field = [], "error: " + str(e).split(": ", 1)[-1]
        groups.append(texts)
        fields.append(field)
    return groups, fields


def add_rewards(row: dict, field: str, rewards: list[float]) -> dict:
    """A copy of the row with its rewards; the user's fields are never changed."""
    out = dict(row)
    if field.startswith("error: "):
        out["error"] = field[len("error: "):]
    elif field == "rewards":
        out["rewards"] = rewards
    elif field == "reward":
        out["reward"] = rewards[0]
    elif field.startswith("lists:"):
        k = int(field.split(":")[1])
        out["chosen_rewards"], out["rejected_rewards"] = rewards[:k], rewards[k:]
    else:
        out["chosen_reward"], out["rejected_reward"] = rewards
    return out


def score_groups(rm, groups: list[list[Text]], batch_size: int, max_tokens: int):
    """Rewards per group (empty groups, bad rows, get none) and the truncation counts."""
    todo = [i for i, g in enumerate(groups) if g]
    rewards, counts = rm.score_groups([groups[i] for i in todo], batch_size, max_tokens) if todo else ([], None)
    out: list[list[float]] = [[] for _ in groups]
    for i, r in zip(todo, rewards):
        out[i] = r
    return out, counts


def score_rows(rm, rows, where: str, batch_size: int = 16, max_tokens: int = 16384,
               allow_empty: bool = True) -> tuple[list[dict], object]:
    """Score every row (see :func:`build_groups`) in one process."""
    groups, fields = build_groups(rows, rm.tokenizer, where, allow_empty, chat=rm.chat)
    rewards, counts = rm.score_groups(groups, batch_size, max_tokens)
    return [add_rewards(row, f, r) for row, f, r in zip(rows, fields, rewards)], counts
