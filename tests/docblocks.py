"""The code blocks of README.md and docs/, and what each is marked with.

Every ```bash / ```python block carries a marker on the line right above its fence:

- ``<!-- run: tiny -->``: tests/test_docs.py runs it as written, the bundled model names swapped
  for tiny models, in a fresh folder holding the page's ``<!-- file: NAME -->`` blocks;
- ``<!-- run: ID -->``: a test runs it by that id (``block("ID")``; tests/test_readme.py);
- ``<!-- checked: REASON -->``: not run for REASON (needs the real data, a GPU, a server), but
  every ``rewardlab`` command in it is parsed into its config (the flags and their values exist)
  and a Python block compiles and its rewardlab imports resolve;
- ``<!-- not run: REASON -->``: neither (a machine set-up step, a block of another program).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = ("bash", "sh", "shell", "console", "python", "py")
MARKER = re.compile(r"<!--\s*(run|checked|not run|file):\s*(.*?)\s*-->")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


@dataclass
class Block:
    page: str        # path relative to the repository root
    line: int        # 1-based line of the opening fence
    language: str
    code: str
    marker: str      # run, checked, not run, file, or "" (unmarked)
    value: str       # the id, the reason or the file name

    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(page: Path) -> list[Block]:
    lines, out, i = page.read_text().splitlines(), [], 0
    rel = str(page.relative_to(ROOT))
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, language, start = m.group(1), m.group(2).lower(), i
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        code = "\n".join(x[len(indent):] if x.startswith(indent) else x for x in lines[i + 1:j]) + "\n"
        above = lines[start - 1] if start else ""
        mark = MARKER.search(above)
        out.append(Block(rel, start + 1, language, code, mark.group(1) if mark else "", mark.group(2) if mark else ""))
        i = j + 1
    return out


def all_blocks() -> list[Block]:
    return [b for p in pages() for b in blocks(p)]


def code_blocks() -> list[Block]:
    """The shell and Python blocks, the ones that must be run or marked."""
    return [b for b in all_blocks() if b.language in CODE]


def block(block_id: str) -> str:
    """The code of the block marked ``<!-- run: ID -->``."""
    found = [b for b in code_blocks() if b.marker == "run" and b.value == block_id]
    assert len(found) == 1, f"expected one block marked run: {block_id}, found {len(found)}"
    return found[0].code


def files_of(page: str) -> dict[str, str]:
    """A page's ``<!-- file: NAME -->`` blocks: the files its tiny blocks read."""
    return {b.value: b.code for b in blocks(ROOT / page) if b.marker == "file"}
