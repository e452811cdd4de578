"""Write docs/reference/options.md from the config dataclasses: every command's flags and YAML keys
with their defaults, choices and help, each kind's options under it. The page is generated so it
cannot drift from the code (tests/test_docs.py fails when it is stale).

    python tools/options_reference.py            # rewrite the page
    python tools/options_reference.py --check    # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAGE = ROOT / "docs" / "reference" / "options.md"

from rewardlab import kinds  # noqa: E402
from rewardlab.cli import COMMANDS  # noqa: E402
from rewardlab.config.flags import _groups, _leaves  # noqa: E402


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(f, kind) -> str:
    import dataclasses

    if f.default is dataclasses.MISSING:
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else ""
    else:
        value = f.default
    if kind is bool:
        return "on" if value else "off"
    if value in ("", None, [], {}):
        return ""
    return f"`{value!r}`" if isinstance(value, str) and not value.isprintable() else f"`{value}`"


def command_section(name: str, cls: type) -> list[str]:
    doc = " ".join((cls.__doc__ or "").split())
    lines = [f"## rewardlab {name}", "", doc, ""]
    leaves = _leaves(cls)
    groups = {None: "", **{g: " ".join((c.__doc__ or "").split()) for g, c in _groups(cls).items()}}
    order = [None] + [g for g in _groups(cls)]
    for group in order:
        rows = [(n, leaf) for n, leaf in leaves.items() if leaf.group == group and leaf.sub is None]
        if not rows:
            continue
        if group:
            lines += [f"### {group}", "", groups[group], ""]
        lines += ["| flag / YAML key | default | choices | what it does |", "| --- | --- | --- | --- |"]
        for n, leaf in rows:
            choices = leaf.field.metadata.get("choices") or (tuple(kinds.KINDS) if n == "kind" else ())
            lines.append(f"| `--{n.replace('_', '-')}` / `{n}` | {_default(leaf.field, leaf.type)} | "
                         f"{_cell(', '.join(map(str, choices)))} | {_cell(leaf.field.metadata.get('help', ''))} |")
        lines.append("")
    subs = sorted({leaf.sub for leaf in leaves.values() if leaf.sub})
    for sub in subs:
        lines += [f"### kind {sub}", "", f"Options of `--kind {sub}` ([the kind's page](../kinds/{sub}.md)).", "",
                  "| flag / YAML key | default | choices | what it does |", "| --- | --- | --- | --- |"]
        for n, leaf in leaves.items():
            if leaf.sub == sub:
                choices = leaf.field.metadata.get("choices") or ()
                lines.append(f"| `--{n.replace('_', '-')}` / `{n}` | {_default(leaf.field, leaf.type)} | "
                             f"{_cell(', '.join(map(str, choices)))} | {_cell(leaf.field.metadata.get('help', ''))} |")
        lines.append("")
    return lines


def render() -> str:
    lines = ["# Options", "",
             "Every flag of every command, generated from the config dataclasses by `python tools/options_reference.py`.",
             "A flag `--foo-bar` is the YAML key `foo_bar` (in a file given as the command's first argument;",
             "flags override the file) and the keyword `foo_bar=` of the Python call (`rewardlab.train(foo_bar=...)`).",
             "Unknown keys are errors, with the closest name (or the rewardlab name of a TRL / OpenRLHF option).", ""]
    for name, (cls, _) in COMMANDS.items():
        lines += command_section(name, cls)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true")
    text = render()
    if p.parse_args().check:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE.relative_to(ROOT)} is stale: run python tools/options_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(f"-> {PAGE.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
