"""The package's shape: imports point one way (no circles), modules stay readable in size."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rewardlab"

# Lower layers never import higher ones; equal layers never import each other. The evaluation
# runner (eval/runner.py, run_benchmarks.py, evaluate.py) loads models: it sits above inference,
# while the rest of eval/ (metrics, benchmark rules) sits below the kinds that use it.
LAYERS = {"errors": 0, "config": 1, "data": 2, "models": 3, "losses": 3, "eval": 4, "judge": 4, "kinds": 5,
          "inference": 6, "eval.runner": 6.1, "eval.run_benchmarks": 6.2, "eval.evaluate": 6.3, "training": 7,
          "serve": 8, "cli": 9, "__init__": 10, "__main__": 10}


def _part(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and ".".join(parts[1:3]) in LAYERS:
        return ".".join(parts[1:3])
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[str]:
    """Every rewardlab module imported by a file, at the top or inside functions."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
    here = parts if rel.name == "__init__" else parts[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [f"{target}.{a.name}" for a in node.names] if not node.module else [target]
                out += names
            elif node.module and node.module.startswith("rewardlab"):
                out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("rewardlab")]
    return out


def test_imports_point_one_way():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        mine = _part(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        for target in _imports(path):
            theirs = _part(target)
            if theirs == mine or theirs not in LAYERS:
                continue
            if LAYERS[theirs] >= LAYERS[mine]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_modules():
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = {t for t in _imports(path) if t != name}
    modules = set(graph)
    graph = {k: {t if t in modules else t.rsplit(".", 1)[0] for t in v} & modules for k, v in graph.items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join(trail + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in graph[node]:
            if not nxt.startswith(node + ".") and not node.startswith(nxt + "."):  # a package and its own modules
                visit(nxt, trail + [node])
        state[node] = 2

    for node in sorted(graph):
        visit(node, [])


def test_modules_stay_readable():
    sizes = {str(p.relative_to(PACKAGE.parent)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert not {k: v for k, v in sizes.items() if v > 600}, "split modules before 600 lines"


def test_functions_stay_short():
    """No function over 60 lines, its docstring not counted (the formulas live there)."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) else node.body
                if body and body[-1].end_lineno - body[0].lineno + 1 > 60:
                    long.append(f"{path.relative_to(PACKAGE.parent)}: {node.name}")
    assert not long, "split functions over 60 lines: " + ", ".join(long)
