"""The documentation cannot rot: every shell and Python block in README.md and docs/ is run, or
checked and marked with why it is not run (tests/docblocks.py); the generated pages are current;
the site builds with strict checks; the README stays a front page."""

from __future__ import annotations

import importlib
import runpy
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests import docblocks
from tests.conftest import make_tiny_llama

ROOT = docblocks.ROOT
BLOCKS = docblocks.code_blocks()
TINY = [b for b in BLOCKS if b.marker == "run" and b.value == "tiny"]
TINY_PAGES = sorted({b.page for b in TINY})
CHECKED = [b for b in BLOCKS if b.marker == "checked"]


def commands(code: str) -> list[list[str]]:
    """A shell block's commands: continuations joined, comments and blank lines dropped."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            out.append(argv)
    return out


def test_every_code_block_is_run_or_marked():
    # A file block of code (a module a page's tiny blocks import) runs with them.
    unmarked = [b.where() for b in BLOCKS if b.marker not in ("run", "checked", "not run")
                and not (b.marker == "file" and b.page in TINY_PAGES)]
    assert not unmarked, f"code blocks neither run by a test nor marked with why not (tests/docblocks.py): {unmarked}"
    assert all(b.value for b in BLOCKS), "a marker without its id or reason"


def test_every_run_id_is_run_by_a_test():
    ids = {b.value for b in BLOCKS if b.marker == "run" and b.value != "tiny"}
    tests = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    missing = sorted(i for i in ids if f'block("{i}")' not in tests)
    assert not missing, f"blocks marked run: ID that no test reads with block(ID): {missing}"


def test_block_counts_are_reported(capsys):
    """Not a check: the counts the documentation issue's closing note quotes (pytest -s shows them)."""
    count = Counter(b.marker if b.marker != "run" else ("run (tiny)" if b.value == "tiny" else "run (own test)")
                    for b in BLOCKS)
    reasons = Counter(b.value for b in BLOCKS if b.marker in ("checked", "not run"))
    with capsys.disabled():
        print(f"\ndoc code blocks: {len(BLOCKS)}: {dict(count)}; reasons: {dict(reasons)}")


@pytest.fixture(scope="module")
def tiny_models(smol_tokenizer_dir, tiny_bert, tmp_path_factory) -> dict[str, str]:
    """The bundled names a block uses -> tiny models (a judge's prompt needs 1,024 positions)."""
    llama = make_tiny_llama(smol_tokenizer_dir, tmp_path_factory.mktemp("docs") / "llama", max_position_embeddings=1024)
    return {"smollm2": llama, "minilm": tiny_bert}


@pytest.mark.parametrize("page", TINY_PAGES)
def test_tiny_blocks_run_as_written(page, tiny_models, tmp_path, monkeypatch, capsys):
    """A page's tiny blocks, in order, in one fresh folder holding its file blocks: shell lines
    through the CLI, Python blocks executed (a later block reads what an earlier one trained)."""
    from rewardlab import kinds
    from rewardlab.config.groups import KIND_OPTIONS

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # a page's own modules (adding-a-kind.md) import from here
    # A kind a page registers (adding-a-kind.md) is the page's only: the registry is restored.
    saved = dict(kinds.KINDS), dict(KIND_OPTIONS)
    try:
        _run_page(page, tiny_models, monkeypatch)
    finally:
        for registry, before in zip((kinds.KINDS, KIND_OPTIONS), saved):
            registry.clear()
            registry.update(before)
        for name in [m for m, mod in sys.modules.items() if str(tmp_path) in str(getattr(mod, "__file__", "") or "")]:
            del sys.modules[name]


def _run_page(page, tiny_models, monkeypatch):
    from rewardlab.cli import main

    for name, text in docblocks.files_of(page).items():
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text(text)
    for block in (b for b in TINY if b.page == page):
        if block.language in ("python", "py"):
            code = block.code
            for name, path in tiny_models.items():
                code = code.replace(f'"{name}"', repr(path))
            exec(compile(code, block.where(), "exec"), {"__name__": "__main__"})
            continue
        for argv in commands(block.code):
            argv = [tiny_models.get(a, a) for a in argv]
            if argv[0] == "rewardlab":
                assert main(argv[1:]) == 0, f"{block.where()}: {shlex.join(argv)}"
            elif argv[:2] == ["python", "-m"]:
                monkeypatch.setattr(sys, "argv", argv[2:])
                try:
                    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
                except SystemExit as e:
                    assert not e.code, f"{block.where()}: {shlex.join(argv)} exited {e.code}"
            else:
                pytest.fail(f"{block.where()}: a tiny block runs rewardlab and python -m only, not {argv[0]}")


def _parse_rewardlab(argv: list[str], where: str) -> None:
    from rewardlab.cli import COMMANDS, build_parser
    from rewardlab.config import load_config

    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: rewardlab {shlex.join(argv)} does not parse")
    cls, _ = COMMANDS[args.command]
    load_config(cls, args.config, args)


def _check_python(code: str, where: str) -> None:
    compile(code, where, "exec")
    import ast

    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rewardlab"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{where}: {node.module} has no {alias.name}"


@pytest.mark.parametrize("block", CHECKED, ids=[b.where() for b in CHECKED])
def test_checked_block_parses(block, monkeypatch, capsys):
    """A block that is not run (real data, a GPU, a server) still names real flags, values,
    scripts, make targets and imports."""
    monkeypatch.chdir(ROOT)
    if block.language in ("python", "py"):
        _check_python(block.code, block.where())
        return
    makefile = (ROOT / "Makefile").read_text()
    for argv in commands(block.code):
        if "rewardlab" in argv[:4] or argv[:3] == ["python", "-m", "rewardlab"]:
            at = argv.index("rewardlab")
            _parse_rewardlab(argv[at + 1:], block.where())
        elif argv[0] == "python" and argv[1].endswith(".py"):
            assert (ROOT / argv[1]).exists(), f"{block.where()}: no script {argv[1]}"
        elif argv[:2] == ["python", "-m"] and argv[2].startswith("rewardlab"):
            importlib.import_module(argv[2])
        elif argv[0] == "make":
            for target in argv[1:]:
                if "=" not in target:
                    assert f"\n{target}:" in "\n" + makefile, f"{block.where()}: no make target {target}"


def test_generated_pages_are_current():
    for script in ("tools/options_reference.py", "bench/report.py"):
        done = subprocess.run([sys.executable, script, "--check"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_the_site_builds_with_strict_checks(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra (pip install -e '.[docs]') builds the site")
    pytest.importorskip("mkdocstrings")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", **__import__("os").environ})
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 250, f"README.md has {len(lines)} lines; reference belongs in docs/"
