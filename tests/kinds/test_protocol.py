"""The kind seam: every registered kind provides the whole interface (rewardlab/kinds/protocol.py:
what it writes, and the defaults for the rest), no module outside rewardlab/kinds/ chooses
behaviour by a kind's name or reads a flag of one, and benchmarks are read through their one
declaration."""

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from rewardlab import kinds
from rewardlab.kinds.protocol import REQUIRED, ROLES, members

PACKAGE = Path(__file__).resolve().parents[2] / "rewardlab"
BUILT_IN = ("preference", "orm", "prm", "value", "regression", "genrm", "judge", "implicit_prm")


def test_the_list_above_is_every_built_in_kind():
    assert set(BUILT_IN) == set(kinds.KINDS) - {"toy_mean"}


def _toy():
    from tests.kinds import test_toy_kind  # registers itself

    return test_toy_kind


def _protocol_function(name: str):
    return next(vars(role)[name] for role in ROLES if name in vars(role))


@pytest.mark.parametrize("name", BUILT_IN + ("toy_mean",))
def test_every_kind_provides_the_whole_interface(name):
    if name == "toy_mean":
        _toy()
    kind = kinds.get(name)
    assert isinstance(kind, kinds.Kind) and kind.NAME == name
    wrong = []
    for member, is_function in members().items():
        value = getattr(kind, member)
        if member == "readout" and value is None:  # a kind that writes its own score_texts
            assert kind.module.score_texts is kind.score_texts
            continue
        if is_function:
            want = list(inspect.signature(_protocol_function(member)).parameters)[1:]  # without self
            try:  # callable as the seam calls it: every parameter of the protocol, positionally
                inspect.signature(value).bind(*want)
            except TypeError as e:
                wrong.append(f"{member}: {e}")
    assert not wrong, f"kind {name}: other parameters: {wrong}"
    assert dataclasses.is_dataclass(kind.Options) and isinstance(kind.STATS, tuple) and isinstance(kind.FORMATS, tuple)
    kind.Options()  # the defaults are valid
    assert isinstance(kind.PER_TOKEN, bool) and callable(kind.forward_module)


def test_a_new_pointwise_kind_writes_five_members():
    toy = _toy()
    assert REQUIRED == ("NAME", "parser", "loss", "readout", "metrics")
    written = {m for m in members() if m in vars(toy)}
    assert written == set(REQUIRED) | {"read_mode", "format_eval", "report"}


def test_a_module_without_a_required_member_is_refused_by_name():
    import types

    module = types.ModuleType("half_kind")
    module.NAME, module.parser, module.loss = "half", lambda obj: None, lambda outputs, items, obj: None
    with pytest.raises(TypeError, match="half_kind lacks readout, metrics"):
        kinds.build(module)


def test_each_option_belongs_to_one_kind_and_another_kinds_option_is_refused():
    from rewardlab.config import ConfigError, TrainConfig, _leaves

    owners = [f.name for k in kinds.KINDS.values() for f in dataclasses.fields(k.Options)]
    assert len(owners) == len(set(owners))
    flags = _leaves(TrainConfig)  # each kind's options are flat flags of train, in the kind's group
    assert all(flags[name].sub is not None for name in owners)
    with pytest.raises(ConfigError, match="--gamma applies to kind value; kind orm does not use it"):
        kinds.options(kinds.get("orm"), TrainConfig.flat(kind="orm", gamma=0.5).objective)
    with pytest.raises(ConfigError, match="--loss applies to kind preference"):
        kinds.options(kinds.get("prm"), TrainConfig.flat(kind="prm", loss="davidson").objective)
    assert kinds.options(kinds.get("value"), TrainConfig.flat(kind="value", gamma=0.5).objective).gamma == 0.5


def _kind_name_uses(tree: ast.AST) -> list[int]:
    """Lines where a kind's name is compared with something, or keys a table."""
    def is_name(node):
        return isinstance(node, ast.Constant) and node.value in BUILT_IN

    def names_in(node):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(is_name(e) for e in node.elts)
        return is_name(node)

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(names_in(n) for n in [node.left, *node.comparators]):
            lines.append(node.lineno)
        elif isinstance(node, ast.Dict) and any(k is not None and is_name(k) for k in node.keys):
            lines.append(node.lineno)
    return lines


# Dicts with a key that spells a kind but keys no table of kinds: the CLI's commands (``judge``),
# the judge command's records of which judge answered, and a bootstrap interval's value, low, high.
NOT_KIND_TABLES = {("cli/__init__.py", "COMMANDS"), ("judge/data.py", "extra"), ("judge/run.py", "settings"),
                   ("eval/diagnostics.py", "out")}


def _assigned_to(tree: ast.AST, line: int) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and node.lineno <= line <= node.end_lineno and isinstance(node.value, ast.Dict):
            names = [t.value if isinstance(t, ast.Subscript) else t for t in node.targets]  # out[key] = {...}
            return next((t.id for t in names if isinstance(t, ast.Name)), None)
    return None


def test_no_module_outside_kinds_chooses_by_a_kind_name():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "kinds":
            continue
        tree = ast.parse(path.read_text())
        found += [f"{rel}:{line}" for line in _kind_name_uses(tree)
                  if (rel.as_posix(), _assigned_to(tree, line)) not in NOT_KIND_TABLES]
    assert not found, "kind names compared outside rewardlab/kinds/: " + ", ".join(found)


def test_the_issue_grep_prints_nothing():
    pattern = re.compile(r"kind ?(==|!=|in) ?[\"'(]")
    hits = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py") if "kinds" not in p.parts
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


def test_kind_names_appear_as_literals_only_in_kinds_and_config_defaults():
    """Outside kinds/ and the config's documented defaults, a kind's name is never a string
    literal (a literal that happens to spell one, e.g. a table header, is listed here)."""
    allowed = {("eval", "report.py", "value"), ("eval", "report_kinds.py", "value"), ("eval", "uncertainty.py", "value"),
               ("models", "backbone.py", "regression"),  # a column header; transformers' problem_type
               ("cli", "__init__.py", "judge"), ("judge", "data.py", "judge"), ("judge", "run.py", "judge"),  # the command, a field
               ("eval", "diagnostics.py", "value"), ("eval", "evaluate.py", "value")}  # a bootstrap interval's value
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in ("kinds", "config"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in BUILT_IN and (*rel.parts, node.value) not in allowed:
                found.append(f"{rel}:{node.lineno} {node.value!r}")
    assert not found, found


def test_no_module_outside_kinds_reads_a_flag_of_a_kind_or_a_benchmark_through_getattr():
    """The scorer decides how a kind scores (its score_texts), not flags read elsewhere; benchmarks
    are read through their declaration (eval/benchmarks/__init__.py: Benchmark)."""
    flags = re.compile(r"\.(ONE_REWARD_HEAD|COMPARES|PER_TOKEN)\b")
    attrs = re.compile(r"(getattr|hasattr)\([a-z_]*(benchmark|bench)\b")
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if rel.parts[0] != "kinds" and flags.search(line):
                found.append(f"{rel}:{i}: {line.strip()}")
            if attrs.search(line):
                found.append(f"{rel}:{i}: {line.strip()}")
    assert not found, found


def test_every_benchmark_provides_the_whole_declaration():
    from rewardlab.eval.benchmarks import FORMATS, Benchmark

    for name, b in FORMATS.items():
        assert isinstance(b, Benchmark) and b.NAME == name
        assert isinstance(b.KNOWN, tuple) and isinstance(b.HEADLINE, str) and isinstance(b.CATEGORY, str)
        for member in ("category_of", "by_category", "texts", "score", "format_scores", "read", "unit_of"):
            assert callable(getattr(b, member)), (name, member)
        assert b.THRESHOLD is None or isinstance(b.THRESHOLD, float)
