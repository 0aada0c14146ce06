"""The ``models`` package imports one way: no module imports one that imports it back (directly
or through others), and no module takes another module's underscore-private names.

The graph is read with ``ast`` from the source files, imports inside functions and under
``TYPE_CHECKING`` included: a cycle hidden in a function body is still a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = "models"
#: project code (outside tests) that may not reach into ``models``' private names either
CALLERS = ("credit", "api", "features", "benchmarks", "scripts")


def _modules() -> dict[str, Path]:
    return {
        f"{PACKAGE}.{p.stem}": p
        for p in sorted((ROOT / PACKAGE).glob("*.py"))
        if p.stem != "__init__"
    }


def _resolve(node: ast.ImportFrom, here: str) -> str:
    """The absolute module a ``from ... import`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = here.split(".")[: -node.level]
    return ".".join([*base, node.module] if node.module else base)


def _imports(path: Path, here: str, known: set[str]) -> Iterator[tuple[str, str, int]]:
    """``(module, name, line)`` for every import in the file; ``name`` is ``""`` for a plain
    ``import`` and for a submodule taken with ``from package import submodule``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(node, here)
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                if sub in known:
                    yield sub, "", node.lineno
                else:
                    yield mod, alias.name, node.lineno


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for target, _name, _line in _imports(path, mod, known):
            if target in known and target != mod:
                graph[mod].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _private_uses(source: str, where: str, here: str, known: set[str]) -> Iterator[str]:
    """``from models.x import _name`` and ``x._name`` (``x`` bound to a models module) where
    ``models.x`` is not the module ``here`` itself; ``where`` names the file in messages."""
    tree = ast.parse(source, where)
    bound: dict[str, str] = {}  # local name -> models module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = _resolve(node, here)
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                if sub in known:
                    bound[alias.asname or alias.name] = sub
                elif mod in known and mod != here and alias.name.startswith("_"):
                    yield f"{where}:{node.lineno}: from {mod} import {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known and alias.asname:
                    bound[alias.asname] = alias.name
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__"):
            continue
        target = None
        if isinstance(node.value, ast.Name) and node.value.id in bound:
            target = bound[node.value.id]
        elif isinstance(node.value, ast.Attribute):  # models.x._name
            dotted = ast.unparse(node.value)
            target = dotted if dotted in known else None
        if target is not None and target != here:
            yield f"{where}:{node.lineno}: {ast.unparse(node)} ({target})"


def test_the_graph_is_read() -> None:
    graph = _graph()
    # a few edges that must be seen, one of them from inside a function body
    assert "models.train" in graph["models.registry"]
    assert "models.train" in graph["models.backtest"]
    assert "models.pyfunc" in graph["models.registry"]  # imported inside log_training
    assert "models.htmlkit" in graph["models.monitor"]  # `from models import htmlkit`


def test_models_imports_have_no_cycle() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles in models/: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_nothing_below_imports_the_registry() -> None:
    """The registry is the top: it logs what the other modules produce."""
    graph = _graph()
    users = sorted(m for m, deps in graph.items() if "models.registry" in deps)
    assert users == [], f"modules importing models.registry: {users}"


def _private_uses_in(path: Path, here: str, known: set[str]) -> list[str]:
    source = path.read_text(encoding="utf-8")
    return list(_private_uses(source, str(path.relative_to(ROOT)), here, known))


def test_models_modules_use_no_private_name_of_another() -> None:
    mods = _modules()
    known = set(mods)
    found = [hit for mod, path in mods.items() for hit in _private_uses_in(path, mod, known)]
    assert not found, "private names used across models/ modules:\n" + "\n".join(found)


def test_project_code_uses_no_private_name_of_models() -> None:
    known = set(_modules())
    found = []
    for top in CALLERS:
        for path in sorted((ROOT / top).rglob("*.py")):
            here = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found.extend(_private_uses_in(path, here, known))
    assert not found, "private names of models/ used elsewhere:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "from models.report import _limitations\n",
        "from .report import _limitations\n",
        "from models import report\nreport._limitations\n",
        "from models import report as r\nr._clean({})\n",
        "import models.report\nmodels.report._clean({})\n",
        "def f():\n    from models.report import _clean\n",
    ],
)
def test_the_private_rule_catches(source: str) -> None:
    assert list(_private_uses(source, "probe.py", "models.probe", set(_modules())))


def test_the_private_rule_allows_own_and_public_names() -> None:
    source = (
        "from models.report import build_report\nimport models.report\nmodels.report.SECTIONS\n"
    )
    assert not list(_private_uses(source, "probe.py", "models.probe", set(_modules())))
    assert not list(
        _private_uses(
            "from models.report import _clean\n", "r.py", "models.report", set(_modules())
        )
    )


def test_the_cycle_finder_catches() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(g) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
