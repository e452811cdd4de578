"""Prompt + completion as text: implicit prompts (a shared prefix), chat messages rendered with
the tokenizer's chat template, and the checks every completion goes through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import DataError


@dataclass
class Text:
    """One prompt + completion to score, already rendered to text.

    ``templated`` is True when a chat template produced the text: the template already
    holds its special tokens, so the tokenizer must not add its own.
    """

    prompt: str
    completion: str
    templated: bool = False
    ends: list[int] | None = None  # a process reward model's steps: where each ends in ``completion``
    reference: str = ""  # a reference answer the completion is judged against (reference-guided judges)


def split_shared_prefix(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two whole texts at their shared prefix: (prompt, chosen_tail, rejected_tail).

    In the HH-RLHF dialogue format the prompt ends with the last shared "\\n\\nAssistant:",
    so "...Assistant: I can" / "...Assistant: I won't" gives the prompt "...Assistant:" and
    the replies " I can" / " I won't". Otherwise the cut moves back to the start of the word
    (and the whitespace before it) where the texts diverge.
    """
    n = 0
    limit = min(len(chosen), len(rejected))
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    turn = chosen.rfind("\n\nAssistant:", 0, n)
    if turn >= 0:  # the HH-RLHF dialogue format: the prompt ends with the last shared "Assistant:"
        n = turn + len("\n\nAssistant:")
    else:
        if any(n < len(t) and not t[n].isspace() for t in (chosen, rejected)):
            while n > 0 and not chosen[n - 1].isspace():  # back to the start of the diverging word
                n -= 1
        while n > 0 and chosen[n - 1].isspace():
            n -= 1
    return chosen[:n], chosen[n:], rejected[n:]


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)


PLAIN_ROLES = {"system": "System", "user": "Human", "assistant": "Assistant"}
PLAIN_TEMPLATE = "each turn as '\\n\\nHuman: ...' / '\\n\\nAssistant: ...' / '\\n\\nSystem: ...' (HH-RLHF's layout)"


def has_chat_template(tokenizer) -> bool:
    return bool(tokenizer is not None and getattr(tokenizer, "chat_template", None))


def chat_rendering(tokenizer) -> str:
    """How conversations are rendered for this tokenizer, said on a command's first lines."""
    if has_chat_template(tokenizer):
        return "conversations rendered with the model's chat template"
    return f"conversations rendered with the plain template (the model has no chat template): {PLAIN_TEMPLATE}"


def is_conversation(row: dict) -> bool:
    """True when a row holds a message list (prompt, chosen, rejected, completion, completions)."""
    values = [row.get(k) for k in ("prompt", "chosen", "rejected", "completion")]
    if isinstance(row.get("completions"), list):
        values += row["completions"]
    return any(isinstance(v, list) and v and _is_messages(v) for v in values)


def render_plain(prompt_msgs: list[dict], completion_msgs: list[dict], where: str) -> tuple[str, str]:
    """A conversation as plain text for a backbone without a chat template (an encoder such as
    MiniLM): HH-RLHF's own layout, the one the bundled HH recipe trains on, so a model trained
    on HH reads a conversation as it read its training data. The prompt ends with the
    generation cue '\\n\\nAssistant:' and the completion starts with a space, as HH's replies do."""
    def turn(m: dict) -> str:
        role = PLAIN_ROLES.get(str(m["role"]))
        if role is None:
            raise DataError(f"{where}: message role {m['role']!r} has no place in the plain template "
                            f"(system, user, assistant)")
        return f"\n\n{role}: {m['content']}"

    prompt = "".join(turn(m) for m in prompt_msgs)
    body = "".join(turn(m) for m in completion_msgs)
    cue = "\n\nAssistant:"
    if body.startswith(cue):  # the reply's own role marker becomes the prompt's generation cue
        return prompt + cue, body[len(cue):]
    return prompt, body


def render_chat(prompt_msgs: list[dict], completion_msgs: list[dict], tokenizer, where: str) -> tuple[str, str]:
    """Render a conversation with the tokenizer's chat template, or the plain template
    (:func:`render_plain`) when it has none; return (prompt, completion) text."""
    if not has_chat_template(tokenizer):
        return render_plain(prompt_msgs, completion_msgs, where)
    try:
        prompt = tokenizer.apply_chat_template(prompt_msgs, tokenize=False, add_generation_prompt=bool(prompt_msgs))
        full = tokenizer.apply_chat_template(prompt_msgs + completion_msgs, tokenize=False)
    except Exception as e:  # jinja raises TemplateError and others from inside the template
        raise DataError(f"{where}: the chat template failed on this conversation: {e}") from None
    if not full.startswith(prompt):
        # Some templates render the generation prompt differently; fall back to the common prefix.
        prompt, _, _ = split_shared_prefix(prompt, full)
    # Drop the template's trailing newline so the sequence ends on its end-of-turn token.
    return prompt, full[len(prompt):].rstrip()


def check_unicode(text: str, where: str, name: str) -> None:
    """A lone surrogate (JSON's "\\ud800" escape) is not a character: the tokenizer fails on it
    with a TypeError, so it is refused here with the row's name (found by the fuzz suite)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DataError(f"{where}: {name} holds a lone surrogate (\\u{ord(text[e.start]):04x} at character "
                        f"{e.start}), which is not valid Unicode") from None


def template_opening(tokenizer) -> str | None:
    """The special token a chat template's rendering starts with (SmolLM2 and Qwen:
    ``<|im_start|>``; Llama 3: ``<|begin_of_text|>``), or the BOS token; None when neither."""
    cached = getattr(tokenizer, "_rewardlab_opening", False)
    if cached is not False:
        return cached
    opening = getattr(tokenizer, "bos_token", None) or None
    if getattr(tokenizer, "chat_template", None):
        try:
            rendered = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
        except Exception:  # a template that needs more than one user turn: BOS only
            rendered = ""
        specials = sorted((t for t in tokenizer.all_special_tokens + list(tokenizer.get_added_vocab())
                           if t and rendered.startswith(t)), key=len)
        opening = specials[-1] if specials else opening
    try:
        tokenizer._rewardlab_opening = opening
    except AttributeError:
        pass
    return opening


def plain_text(prompt: str, completion: str, tokenizer) -> Text:
    """A prompt + completion given as plain strings. A text that starts with the chat template's
    opening token (or BOS) was rendered by a chat template, as RL frameworks render queries
    (``apply_chat_template(messages, tokenize=False)``): it already holds its special tokens, and
    the whitespace the template leaves after its last end-of-turn marker (SmolLM2's
    ``<|im_end|>\n``) is dropped, as :func:`render_chat` drops it in training, so the reward is
    read at the end-of-turn token either way (no train/serve skew)."""
    opening = template_opening(tokenizer) if tokenizer is not None else None
    if opening and (prompt + completion).startswith(opening):
        if completion.strip():
            completion = completion.rstrip()
        return Text(prompt, completion, templated=True)
    return Text(prompt, completion)


def to_text(prompt: Any, completion: Any, tokenizer, where: str, name: str = "completion",
            allow_empty: bool = False, chat: bool = False) -> Text:
    """Check one prompt/completion and render it to text.

    An empty (or whitespace) completion is real data in HH-RLHF (silence preferred over a
    harmful reply): with ``allow_empty`` it is kept, and its reward is read at the end marker
    right after the prompt; otherwise it is an error. ``chat``: plain strings too are rendered
    as a user turn and an assistant turn with the chat template."""
    if prompt is None:
        prompt = [] if _is_messages(completion) else ""
    for value, what in ((prompt, "'prompt'"), (completion, name)):
        for part in ([value] if isinstance(value, str) else
                     [m.get("content") for m in value if isinstance(m, dict)] if isinstance(value, list) else []):
            if isinstance(part, str):
                check_unicode(part, where, what)
    if isinstance(completion, str) and isinstance(prompt, str) and not chat:
        if not completion.strip() and not allow_empty:
            raise DataError(f"{where}: empty {name} (accepted unless --no-allow-empty)")
        return plain_text(prompt, completion, tokenizer)
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}] if prompt else []
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    if not _is_messages(prompt):
        raise DataError(f"{where}: 'prompt' must be a string or a list of {{role, content}} messages, "
                        f"got {_type(prompt)}")
    if not _is_messages(completion):
        raise DataError(f"{where}: '{name}' must be a string or a list of {{role, content}} messages, "
                        f"got {_type(completion)}")
    if not completion or (not any(str(m["content"]).strip() for m in completion) and not allow_empty):
        raise DataError(f"{where}: empty {name} (accepted unless --no-allow-empty)")
    if not completion:
        completion = [{"role": "assistant", "content": ""}]
    p, c = render_chat(prompt, completion, tokenizer, where)
    return Text(p, c, templated=has_chat_template(tokenizer))


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# Column names other datasets use for rewardlab's, for the hint of a missing column.
SYNONYMS = {
    "prompt": ("question", "instruction", "input", "query", "problem", "context", "history", "conversation"),
    "chosen": ("good", "preferred", "better", "accepted", "winner", "positive", "chosen_response", "response_chosen"),
    "rejected": ("bad", "dispreferred", "worse", "loser", "negative", "rejected_response", "response_rejected"),
    "completion": ("response", "answer", "output", "solution", "generation", "text"),
    "completions": ("responses", "answers", "outputs", "solutions", "generations", "candidates"),
    "label": ("correct", "is_correct", "target", "y"),
    "steps": ("solution_steps", "process", "reasoning_steps"),
    "reward": ("return", "score"),
    "ratings": ("attributes", "scores"),
}


def mapping_hint(row: dict, keys: tuple[str, ...]) -> str:
    """The ``--*-key`` flags that would map this row's columns onto ``keys`` (and the prompt),
    from their usual other names; empty when none is recognised."""
    found = [k for k in row if row[k] is not None]
    flags = []
    for key in ("prompt", *keys):
        if key in row and row[key] is not None:
            continue
        match = next((c for c in found if c.lower() in SYNONYMS.get(key, ())), None)
        if match is not None:
            flags.append(f"--{key}-key {match}")
    return f"; to map your columns: {' '.join(flags)}" if flags else ""


def _require(row: dict, keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if key not in row or row[key] is None:
            found = ", ".join(sorted(k for k, v in row.items() if v is not None)) or "nothing"
            raise DataError(f"{where}: missing column '{key}' (found: {found}){mapping_hint(row, keys)}")


