"""Per-text features a reward can ride instead of quality: the length of a completion, its
markdown, its list items. Evaluation measures how a model's rewards follow them
(eval/diagnostics.py); ``--disentangle`` trains a head per feature so the reward does not
(losses/robust.py)."""

from __future__ import annotations

import re

MARKDOWN = re.compile(r"(^#{1,6}\s|^\s*[-*+]\s|^\s*\d+\.\s|\*\*|`)", re.M)
LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s", re.M)


def markdown_count(text: str) -> int:
    """Headings, list markers, bold and code marks."""
    return len(MARKDOWN.findall(text))


def list_items(text: str) -> int:
    """Lines that start a bulleted or numbered list item."""
    return len(LIST_ITEM.findall(text))


FEATURES = {"length": lambda text: float(len(text.strip())),  # characters: tracks tokens closely, needs no tokenizer
            "markdown": lambda text: float(markdown_count(text)),
            "lists": lambda text: float(list_items(text))}


def feature_names(spec: str) -> list[str]:
    """'length,markdown' -> ['length', 'markdown']; an unknown name is a ValueError naming the known ones."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(f"unknown feature {unknown[0]!r} (known: {', '.join(FEATURES)})")
    if len(set(names)) != len(names):
        raise ValueError(f"a feature is named twice in {spec!r}")
    return names


def feature_values(texts: list[str], names: list[str]) -> list[list[float]]:
    """Per text, each named feature's value."""
    return [[FEATURES[n](t) for n in names] for t in texts]
