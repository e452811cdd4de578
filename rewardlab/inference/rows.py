"""Scoring rows as ``rewardlab score`` and ``POST /score`` read them; every row is written back.

Row forms: prompt + completion -> ``reward``; prompt + completions (a list) -> ``rewards``;
chosen + rejected -> ``chosen_reward``, ``rejected_reward``; prompt + steps (process reward
models) -> ``reward`` and ``step_rewards``. A model's kind adds what it reads
(``step_rewards``, ``values``, ``attributes``, ``token_rewards``; as lists for ``completions``). Rows are written back in input
order with all their fields. With ``skip_bad`` an invalid row is written back too, with an
``error`` field instead of rewards, and counted: nothing the user wrote is lost.
"""

from __future__ import annotations

from ..data.pointwise import steps_text
from ..data.loader import checked_rows
from ..data.preference import _number, check_pair, tiers_from_ranking
from ..data.rows import BadRow, rename_columns
from ..data.text import Text, to_text
from ..errors import DataError


def row_texts(row: dict, tokenizer, at: str, allow_empty: bool = True,
              columns: dict[str, str] | None = None, chat: bool = False, marker: str = "\n") -> tuple[list[Text], str]:
    """One row -> the texts to score (sharing a prompt) and the field their rewards go to.
    ``marker``: what follows every step of a ``steps`` row (the PRM's saved step marker)."""
    if isinstance(row, BadRow):
        raise DataError(row.problem)  # a line that could not be read: written back with its text and the error
    if columns:
        row = rename_columns(row, columns)
    if "steps" in row and row["steps"] is not None:
        steps = row["steps"]
        if not isinstance(steps, list) or not steps or not all(isinstance(x, str) and x.strip() for x in steps):
            raise DataError(f"{at}: 'steps' must be a non-empty list of non-empty strings")
        return [steps_text(row, steps, marker, tokenizer, at, allow_empty, chat)], "reward"
    if "completions" in row and row["completions"] is not None:
        if not isinstance(row["completions"], list) or not row["completions"]:
            raise DataError(f"{at}: 'completions' must be a non-empty list")
        _check_order(row, len(row["completions"]), at)
        return [to_text(row.get("prompt"), c, tokenizer, at, f"completion {k}", allow_empty, chat)
                for k, c in enumerate(row["completions"])], "rewards"
    if "completion" in row and row["completion"] is not None:
        return [to_text(row.get("prompt"), row["completion"], tokenizer, at, "completion", allow_empty, chat)], "reward"
    if isinstance(row.get("chosen"), list) and isinstance(row.get("rejected"), list) and \
            all(isinstance(c, str) for c in row["chosen"] + row["rejected"]):  # RewardBench 2, RM-Bench rows
        if not row["chosen"] or not row["rejected"]:  # found by the fuzz suite: nothing was scored, silently
            raise DataError(f"{at}: 'chosen' and 'rejected' lists must each hold at least one completion")
        return [to_text(row.get("prompt"), c, tokenizer, at, "completion", allow_empty, chat)
                for c in row["chosen"] + row["rejected"]], f"lists:{len(row['chosen'])}"
    if "chosen" in row or "rejected" in row:
        pair = check_pair(row, tokenizer, at, 0, allow_empty, chat)
        return [Text(pair.prompt, c, pair.templated) for c in pair.completions], "pair"
    raise DataError(f"{at}: expected 'prompt' + 'completion', 'prompt' + 'completions' (a list), 'prompt' + "
                    f"'steps', or 'chosen' + 'rejected'; found columns: {', '.join(row) or 'none'}")


def _check_order(row: dict, k: int, at: str) -> None:
    """A group row's ``ranking`` or ``scores``, checked as training checks them (an index out of
    range or repeated, a ranking that leaves completions out without ``partial``, scores of the
    wrong length or not numbers); the rules of a loss (two distinct completions...) do not apply
    to scoring."""
    if row.get("ranking") is not None:
        tiers_from_ranking(row["ranking"], k, bool(row.get("partial")), at)
    if row.get("scores") is not None:
        scores = row["scores"]
        if not isinstance(scores, list) or len(scores) != k:
            raise DataError(f"{at}: 'scores' must be a list of {k} numbers, one per completion")
        for s in scores:
            _number(s, at, "each of 'scores'")


SKIP_HINT = " (--skip-bad-rows writes such rows back with an 'error' field)"


def build_groups(rows, tokenizer, where: str, allow_empty: bool = True, skip_bad: bool = False,
                 hint: str = "", columns: dict[str, str] | None = None,
                 chat: bool = False, marker: str = "\n") -> tuple[list[list[Text]], list[str]]:
    """Check every row: a group of texts per row and the field its rewards go to. With
    ``skip_bad`` a bad row gets an empty group and the field ``error: MESSAGE``; without it,
    the first bad row raises, its message ending with ``hint``."""
    groups: list[list[Text]] = []
    fields: list[str] = []
    number = getattr(rows, "number", lambda i: i + 1)  # plain lists are numbered from 1
    numbered = ((number(i), row) for i, row in enumerate(rows))
    parse = lambda row, at, n: row_texts(row, tokenizer, at, allow_empty, columns, chat, marker)  # noqa: E731
    for _, parsed, problem in checked_rows(numbered, where, parse, skip_bad, hint=hint):
        texts, field = parsed if problem is None else ([], "error: " + problem.split(": ", 1)[-1])
        groups.append(texts)
        fields.append(field)
    return groups, fields


def add_rewards(row: dict, field: str, rewards: list, details: list[dict] | None = None) -> dict:
    """A copy of the row with its rewards; the user's fields are never changed. ``details``:
    what the model's kind read from each text (its ``readout``), reward included."""
    out = dict(row)
    if details and not field.startswith("error: "):
        extra = [{k: v for k, v in d.items() if k != "reward"} for d in details]
        if field == "reward":
            out.update(extra[0])
        elif field == "rewards":
            out.update({k: [e[k] for e in extra] for k in extra[0]})
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
        for k in (extra[0] if details else {}):  # e.g. an ensemble's reward_std: chosen_reward_std, ...
            out[f"chosen_{k}"], out[f"rejected_{k}"] = extra[0][k], extra[1][k]
    return out


def score_groups(rm, groups: list[list[Text]], batch_size: int, max_tokens: int):
    """(rewards, what the kind read) per group (empty groups, bad rows, get none) and the
    truncation counts."""
    todo = [i for i, g in enumerate(groups) if g]
    details, counts = rm.group_details([groups[i] for i in todo], batch_size, max_tokens) if todo else ([], None)
    out: list = [([], []) for _ in groups]
    for i, part in zip(todo, details):
        out[i] = ([d["reward"] for d in part], part)
    return out, counts


def score_rows(rm, rows, where: str, batch_size: int = 16, max_tokens: int = 16384,
               allow_empty: bool = True) -> tuple[list[dict], object]:
    """Score every row (see :func:`build_groups`) in one process."""
    groups, fields = build_groups(rows, rm.tokenizer, where, allow_empty, chat=rm.chat, marker=rm.step_marker or "\n")
    scored, counts = score_groups(rm, groups, batch_size, max_tokens)
    return [add_rewards(row, f, r, d) for row, f, (r, d) in zip(rows, fields, scored)], counts
