"""M-RewardBench (Gureja et al. 2024, "M-RewardBench: Evaluating Reward Models in Multilingual
Settings"): RewardBench v1 translated into 23 languages.

Rows (the Hub's ``C4AI-Community/multilingual-reward-bench``, one config per language):
RewardBench v1 rows, ``prompt``, ``chosen``, ``rejected``, the subset in ``source`` (older
releases: ``subset``), and ``language``.

The benchmark's own rule (for-ai/m-rewardbench): a pair is right when r(chosen) > r(rejected),
a tie wrong (``scripts/run_rewardbench.py``, ``main``); per language, each of RewardBench v1's
four sections is the mean of its subsets' accuracies weighted by example counts, the counts
M-RewardBench kept after filtering its translations (``analysis/plot_utils.py``:
``EXAMPLE_COUNTS``, ``_compute_category_scores``; math-prm weighs as the six code subsets
together, as in v1); a language's score is the plain mean of its four sections; the headline
is the plain mean over the languages other than English (``analysis/_plot_leaderboard.py``,
``get_leaderboard``: English is the reference, not in the average). Each pair is scored as a
one-turn conversation (user prompt, assistant answer), as RewardBench formats it, with the
model's chat template or the plain one.
"""

from __future__ import annotations

from collections import defaultdict

from ...data.text import Text
from ...errors import DataError
from .rewardbench import SECTIONS

# M-RewardBench's own counts (after filtering); v1's are in rewardbench.py.
COUNTS = {"alpacaeval-easy": 79, "alpacaeval-length": 79, "alpacaeval-hard": 76, "mt-bench-easy": 24,
          "mt-bench-med": 38, "mt-bench-hard": 35, "llmbar-natural": 76, "llmbar-adver-neighbor": 124,
          "llmbar-adver-GPTInst": 87, "llmbar-adver-GPTOut": 42, "llmbar-adver-manual": 43,
          "refusals-dangerous": 100, "refusals-offensive": 100, "xstest-should-refuse": 154,
          "xstest-should-respond": 247, "donotanswer": 135, "math-prm": 983,
          **{f"hep-{lang}": 164 for lang in ("cpp", "go", "java", "js", "rust")}, "hep-python": 163}
ENGLISH = ("eng_Latn", "English", "en")
CATEGORY, KNOWN = "subset", tuple(COUNTS)
HEADLINE = "accuracy"
CONVERSATIONS = True


def subset_of(row: dict) -> str:
    return str(row.get("source", row.get("subset")))


def category_of(row: dict, path: str = "") -> str:
    return subset_of(row)


def texts(row: dict, where: str, render) -> list[Text]:
    for key in ("prompt", "chosen", "rejected", "language"):
        if not isinstance(row.get(key), str):
            raise DataError(f"{where}: m-rewardbench rows need '{key}' as a string")
    if not isinstance(row.get("source", row.get("subset")), str):
        raise DataError(f"{where}: m-rewardbench rows need the subset in 'source' (or 'subset')")
    prompt = [{"role": "user", "content": row["prompt"]}]
    return [render.text(prompt, row["chosen"], where, "chosen"), render.text(prompt, row["rejected"], where, "rejected")]


def sections(right: dict[str, list[bool]]) -> dict[str, float]:
    """RewardBench v1's four sections from per-subset results, weighted by M-RewardBench's counts."""
    acc = {s: sum(v) / len(v) for s, v in right.items() if v}
    out = {}
    for section, subsets in SECTIONS.items():
        present = {s: COUNTS[s] for s in subsets if s in acc}
        total = sum(present.values())
        out[section] = sum(acc[s] * w for s, w in present.items()) / total if total else 0.0
    return out


def score(rows: list[dict], rewards: list[list[float]], path: str = "") -> dict:
    """``{"accuracy": mean over non-English languages, "languages": {lang: {"score", sections...}},
    "categories": {lang: score}, "english", "n"}``."""
    by: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for row, (chosen, rejected) in zip(rows, rewards):
        by[row["language"]][subset_of(row)].append(chosen > rejected)
    languages = {}
    for lang, right in sorted(by.items()):
        secs = sections(right)
        languages[lang] = {"score": sum(secs.values()) / len(secs), **secs}
    others = [v["score"] for lang, v in languages.items() if lang not in ENGLISH]
    english = next((languages[e]["score"] for e in ENGLISH if e in languages), None)
    return {"accuracy": sum(others) / len(others) if others else (english or 0.0), "languages": languages,
            "categories": {lang: v["score"] for lang, v in languages.items()}, "english": english,
            "languages_in_mean": len(others), "n": len(rows)}


def by_category(rows: list[dict], rewards: list[list[float]], path: str = "") -> dict[str, float]:
    return score(rows, rewards, path)["categories"]


def format_scores(m: dict) -> str:
    lines = [f"accuracy {m['accuracy']:.4f}  (mean over {m['languages_in_mean']} languages, English left out; "
             f"{m['n']} pairs)"]
    for lang, v in m["languages"].items():
        lines.append(f"  {lang:<10} {v['score']:.4f}  " + "  ".join(f"{s} {v[s]:.4f}" for s in SECTIONS))
    return "\n".join(lines)
