"""Render docs/benchmarks.md from bench/results/*.json and nothing else, so no number on the page is
copied by hand: each section names the command, the commit, the date and the machine.

    python bench/report.py            # rewrite docs/benchmarks.md and README.md's headline lines
    python bench/report.py --check    # exit 1 when either is not what the result files give
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "benchmarks.md"
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "results"
REGION = re.compile(r"(<!-- headline -->\n).*?(<!-- /headline -->)", re.S)

HEADER = """# Benchmarks

Every number here comes from a result file in the repository's `bench/results/`, written by the
script named under it (`bench/harness.py` records the numbers with the arguments, the commit, the
library versions and the machine); `python bench/report.py` writes this page from those files.
Speed is measured against the peer in the same run, on the same model, data and settings; quality
beside random, majority or the simplest baseline on held-out data. To add or refresh a number, run
the command shown and commit its result file with this page.
"""


def _cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def section(data: dict, source: str) -> str:
    env = data["environment"]
    versions = ", ".join(f"{k} {env[k]}" for k in ("torch", "transformers", "trl", "vllm") if k in env)
    commit = env.get("commit", "")[:10] + (" (uncommitted changes)" if env.get("dirty") else "")
    lines = [f"## {data['title']}", "", "```bash", data["command"], "```", "",
             f"`{source}`: commit `{commit}`, {env.get('date', '')[:10]}, {env.get('device', '')}, "
             f"{env.get('threads', '?')} threads; {versions}.", ""]
    table = data.get("table")
    if table:
        lines += ["| " + " | ".join(map(_cell, table["columns"])) + " |",
                  "| " + " | ".join("---" for _ in table["columns"]) + " |"]
        lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in table["rows"]]
        lines.append("")
    lines += [f"- {note}" for note in data.get("notes", [])]
    return "\n".join(lines).rstrip() + "\n"


def render(folder: Path = RESULTS) -> str:
    parts = [HEADER]
    files = sorted(folder.glob("*.json"))
    if not files:
        parts.append("\nNo result files yet.\n")
    for path in files:
        data = json.loads(path.read_text())
        parts.append("\n" + section(data, f"bench/results/{path.name}"))
    return "".join(parts)


def headlines(folder: Path = RESULTS) -> str:
    """The README's headline lines: each result file's ``headline``, with its date and commit."""
    lines = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("headline"):
            env = data["environment"]
            lines.append(f"- {data['headline']}: `{path.name}`, {env.get('date', '')[:10]}, "
                         f"commit `{env.get('commit', '')[:10]}`.")
    return "\n".join(lines) + ("\n" if lines else "")


def readme(text: str, folder: Path = RESULTS) -> str:
    """README.md with its headline region rewritten from the result files."""
    return REGION.sub(lambda m: m.group(1) + headlines(folder) + m.group(2), text)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare only; exit 1 when the page is stale")
    args = p.parse_args()
    text, front = render(), README.read_text()
    if args.check:
        stale = [p.name for p, want in ((PAGE, text), (README, readme(front))) if not p.exists() or p.read_text() != want]
        if stale:
            print(f"{', '.join(stale)} stale: run python bench/report.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    README.write_text(readme(front))
    print(f"-> {PAGE.relative_to(ROOT)}, README.md's headlines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
