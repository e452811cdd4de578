"""Benchmark formats, one module each: how a row becomes texts to score, and the benchmark's
own scoring rule on the rewards. Every completion is scored once (a row's completions share
their prompt). ``FORMATS`` is the plain list; :func:`detect` tells a file's format from its
columns.
"""

from . import judgebench, rewardbench, rewardbench2, rmbench

FORMATS = {"rewardbench": rewardbench, "rewardbench2": rewardbench2, "rm-bench": rmbench, "judgebench": judgebench}


def detect(rows: list[dict], path: str = "") -> str | None:
    """The benchmark format of ``rows`` from their columns, or None for plain pairs/groups."""
    first = rows[0] if rows else {}
    if "response_A" in first and "response_B" in first:
        return "judgebench"
    if isinstance(first.get("chosen"), list) and isinstance(first.get("rejected"), list) \
            and all(isinstance(x, str) for x in first["chosen"] + first["rejected"]):
        return "rewardbench2" if "num_correct" in first or len(first["chosen"]) != 3 else "rm-bench"
    if "subset" in first and isinstance(first.get("chosen"), str) and \
            any(str(r.get("subset")) in rewardbench.SECTIONS_OF for r in rows):
        return "rewardbench"
    return None
