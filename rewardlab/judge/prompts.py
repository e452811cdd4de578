"""Judge prompts and strict verdict parsing for generative reward models (LLM-as-a-judge).

Built-in templates follow MT-Bench (Zheng et al. 2023, "Judging LLM-as-a-judge"), so numbers
are comparable with FastChat's: ``pair-v2`` (pairwise, [[A]] / [[B]] / [[C]] = tie),
``pair-ref`` (pairwise with a reference answer, MT-Bench's math/reasoning variant),
``single`` (a 1-10 rating as [[rating]]) and ``single-ref``.

A user template is a YAML/JSON file with ``user`` (and optional ``system`` and ``mode``) or a
plain-text file used as the user message. Placeholders are ``{question}``, ``{answer_a}``,
``{answer_b}`` (pairwise), ``{answer}`` (single) and ``{reference}``; a required one that is
missing, or an unknown one, is an error before any call. Substitution is one pass, so an
answer that itself contains ``{answer_b}`` is inserted literally.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import JudgeError


class ParseError(ValueError):
    """The judge's answer holds no usable verdict; the message says why."""


_PAIR_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user question displayed below. You should choose the assistant that follows the user's instructions "
    "and answers the user's question better. Your evaluation should consider factors such as the helpfulness, "
    "relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your evaluation by "
    "comparing the two responses and provide a short explanation. Avoid any position biases and ensure that the "
    "order in which the responses were presented does not influence your decision. Do not allow the length of "
    "the responses to influence your evaluation. Do not favor certain names of the assistants. Be as objective "
    "as possible. After providing your explanation, output your final verdict by strictly following this "
    "format: \"[[A]]\" if assistant A is better, \"[[B]]\" if assistant B is better, and \"[[C]]\" for a tie."
)
_PAIR_REF_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user question displayed below. Your evaluation should consider correctness and helpfulness. You will "
    "be given a reference answer, assistant A's answer, and assistant B's answer. Your job is to evaluate which "
    "assistant's answer is better. Begin your evaluation by comparing both assistants' answers with the reference "
    "answer. Identify and correct any mistakes. Avoid any position biases and ensure that the order in which the "
    "responses were presented does not influence your decision. Do not allow the length of the responses to "
    "influence your evaluation. Do not favor certain names of the assistants. Be as objective as possible. After "
    "providing your explanation, output your final verdict by strictly following this format: \"[[A]]\" if "
    "assistant A is better, \"[[B]]\" if assistant B is better, and \"[[C]]\" for a tie."
)
_ANSWERS = ("[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
            "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]")
_REFERENCE = "[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]\n\n"
_SINGLE = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
    "assistant to the user question displayed below. Your evaluation should consider factors such as the "
    "helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. Begin your "
    "evaluation by providing a short explanation. Be as objective as possible. After providing your explanation, "
    "you must rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for "
    "example: \"Rating: [[5]]\".\n\n[Question]\n{question}\n\n"
    "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
)
_SINGLE_REF = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
    "assistant to the user question displayed below. Your evaluation should consider correctness and helpfulness. "
    "You will be given a reference answer and the assistant's answer. Begin your evaluation by comparing the "
    "assistant's answer with the reference answer. Identify and correct any mistakes. Be as objective as "
    "possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly "
    "following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n[Question]\n{question}\n\n"
    + _REFERENCE + "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
)

PLACEHOLDERS = {"question", "answer_a", "answer_b", "answer", "reference"}
REQUIRED = {"pairwise": {"question", "answer_a", "answer_b"}, "single": {"question", "answer"}}
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Template:
    name: str
    mode: str  # "pairwise" or "single"
    user: str
    system: str = ""

    @property
    def slots(self) -> set[str]:
        return set(_SLOT.findall(self.user + self.system))

    @property
    def needs_reference(self) -> bool:
        return "reference" in self.slots

    def messages(self, **values: str) -> list[dict]:
        """Chat messages with every placeholder filled in one pass (inserted text is never re-read)."""
        def fill(text: str) -> str:
            return _SLOT.sub(lambda m: values[m.group(1)], text)

        out = [{"role": "system", "content": fill(self.system)}] if self.system else []
        return out + [{"role": "user", "content": fill(self.user)}]


BUILTIN = {
    "pair-v2": Template("pair-v2", "pairwise", "[User Question]\n{question}\n\n" + _ANSWERS, _PAIR_SYSTEM),
    "pair-ref": Template("pair-ref", "pairwise", "[User Question]\n{question}\n\n" + _REFERENCE + _ANSWERS,
                         _PAIR_REF_SYSTEM),
    "single": Template("single", "single", _SINGLE, "You are a helpful assistant."),
    "single-ref": Template("single-ref", "single", _SINGLE_REF, "You are a helpful assistant."),
}


def check_template(t: Template, where: str) -> Template:
    if t.mode not in REQUIRED:
        raise JudgeError(f"{where}: mode must be 'pairwise' or 'single', got {t.mode!r}")
    unknown = t.slots - PLACEHOLDERS
    if unknown:
        raise JudgeError(f"{where}: unknown placeholder(s) {', '.join('{%s}' % s for s in sorted(unknown))}; "
                         f"known: {', '.join('{%s}' % s for s in sorted(PLACEHOLDERS))}")
    missing = REQUIRED[t.mode] - t.slots
    if missing:
        raise JudgeError(f"{where}: a {t.mode} template needs the placeholder(s) "
                         f"{', '.join('{%s}' % s for s in sorted(missing))}")
    wrong = t.slots & ({"answer"} if t.mode == "pairwise" else {"answer_a", "answer_b"})
    if wrong:
        raise JudgeError(f"{where}: placeholder(s) {', '.join('{%s}' % s for s in sorted(wrong))} "
                         f"do not belong in a {t.mode} template")
    return t


def template_mode(name_or_path: str) -> str:
    """'pairwise' or 'single' for a built-in name or a template file (its 'mode' key, else
    which answer placeholders it uses)."""
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path].mode
    p = Path(name_or_path)
    text = p.read_text(encoding="utf-8") if p.is_file() else ""
    if p.suffix.lower() in (".yaml", ".yml", ".json") and text:
        try:
            spec = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
            if isinstance(spec, dict) and spec.get("mode") in REQUIRED:
                return spec["mode"]
        except (ValueError, yaml.YAMLError):
            pass  # load_template reports it
    return "single" if "{answer}" in text and "{answer_a}" not in text else "pairwise"


def load_template(name_or_path: str, mode: str, reference: bool = False) -> Template:
    """A built-in template by name, the default for ``mode``, or a user's template file."""
    if not name_or_path:
        name_or_path = {"pairwise": "pair-v2", "single": "single"}[mode] + ("-ref" if reference else "")
        name_or_path = name_or_path.replace("pair-v2-ref", "pair-ref")
    if name_or_path in BUILTIN:
        t = BUILTIN[name_or_path]
    else:
        p = Path(name_or_path)
        if not p.is_file():
            raise JudgeError(f"{name_or_path}: no such template file (built-in: {', '.join(BUILTIN)})")
        text = p.read_text(encoding="utf-8")
        if p.suffix.lower() in (".yaml", ".yml", ".json"):
            try:
                spec = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
            except (ValueError, yaml.YAMLError) as e:
                raise JudgeError(f"{p}: cannot parse template: {str(e).splitlines()[0]}") from None
            if not isinstance(spec, dict) or not isinstance(spec.get("user"), str):
                raise JudgeError(f"{p}: a template file needs a 'user' string (and optional 'system', 'mode')")
            extra = set(spec) - {"user", "system", "mode"}
            if extra:
                raise JudgeError(f"{p}: unknown key(s) {', '.join(sorted(extra))} (allowed: user, system, mode)")
            t = Template(p.name, spec.get("mode", mode), spec["user"], spec.get("system") or "")
        else:
            t = Template(p.name, mode, text)
    if t.mode != mode:
        raise JudgeError(f"template {t.name} is a {t.mode} template but --mode is {mode}")
    return check_template(t, f"template {t.name}")


def trained_template(model: str) -> Template | None:
    """The pairwise template a judge was trained with (``train --kind judge`` saves it in the
    folder's ``config.json``), so ``rewardlab judge --model DIR`` asks what training asked."""
    path = Path(model) / "config.json"
    if not path.is_file():
        return None
    try:
        saved = (json.loads(path.read_text(encoding="utf-8")).get("rewardlab") or {}).get("objective") or {}
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(saved.get("judge_user"), str) or not saved["judge_user"]:
        return None
    return check_template(Template("trained", "pairwise", saved["judge_user"], saved.get("judge_system") or ""),
                          f"{path}: the trained judge's template")


# ---------------------------------------------------------------- parsing

_QUOTES = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019"}


def _markers(text: str, pattern: re.Pattern) -> tuple[list[str], list[str]]:
    """Values of the pattern's matches, split into (unquoted, quoted). A quoted match is one
    inside quotes on its line, like the judge echoing the instruction '"[[A]]" if A is better'
    or '"Rating: [[5]]"'."""
    plain, quoted = [], []
    for m in pattern.finditer(text):
        before = text[m.start() - 1] if m.start() > 0 else ""
        after = text[m.end()] if m.end() < len(text) else ""
        line = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
        inside = line.count('"') % 2 == 1 or line.count("`") % 2 == 1 or line.count("\u201c") > line.count("\u201d")
        (quoted if inside or (before in _QUOTES and after == _QUOTES[before]) else plain).append(m.group(1))
    return plain, quoted


def _one(values: list[str], what: str) -> str:
    distinct = sorted(set(values))
    if len(distinct) > 1:
        raise ParseError(f"ambiguous: several different {what}s ({', '.join(distinct)})")
    return distinct[0]


_VERDICT = re.compile(r"\[\[([ABC])\]\]")
_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")


def parse_pairwise(text: str) -> str:
    """'A', 'B' or 'C' (tie) from a judgment; ParseError when there is none or it is ambiguous.

    Unquoted markers count; quoted ones only when there is no unquoted one. Unlike FastChat,
    which takes the first of [[A]], [[B]], [[C]] found, several different markers are an error
    rather than a silent pick of A.
    """
    plain, quoted = _markers(text or "", _VERDICT)
    if not plain and not quoted:
        raise ParseError("no verdict: none of [[A]], [[B]], [[C]] in the answer")
    return _one(plain or quoted, "verdict")


def parse_rating(text: str, low: float = 1, high: float = 10) -> float:
    """The [[rating]] of a single-answer judgment (MT-Bench), falling back to [rating]."""
    plain, quoted = _markers(text or "", _RATING)
    if not plain and not quoted:
        plain, quoted = _markers(text or "", _RATING_BACKUP)
    if not plain and not quoted:
        raise ParseError("no rating: no [[number]] in the answer")
    value = float(_one([str(float(v)) for v in (plain or quoted)], "rating"))
    if not low <= value <= high:
        raise ParseError(f"rating {value:g} outside {low:g}..{high:g}")
    return value


REPAIR = {
    # Worded without the literal markers: small judges tend to echo "[[A]] if A is better, [[B]] ...".
    "pairwise": "What is your final verdict? Reply with the letter of the better assistant in double square "
                "brackets: A or B, or C for a tie.",
    "single": "What is your rating of the response, from 1 to 10? Reply with the number in double square brackets.",
}
REPAIR_PREFIX = {"pairwise": "[[", "single": "Rating: [["}
