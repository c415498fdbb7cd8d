"""The package's import structure: no import cycles, no reaching into other modules' privates.

Module-level imports (outside functions and ``if TYPE_CHECKING:``) form a graph that must be
acyclic. An import inside a function that would close a cycle is a deliberate deferred import and
must carry a comment saying why (on its line or the line above). No module imports another
module's underscore names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest_themis

PACKAGE_DIR = Path(pytest_themis.__file__).parent
ROOT = "pytest_themis"

#: Private names still imported across modules: none. A new cross-module private import fails.
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    names: tuple[str, ...]
    line: int
    deferred: bool
    commented: bool


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(source: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = source if path.name == "__init__.py" else source.rsplit(".", 1)[0]
    for _ in range(node.level - 1):
        package = package.rsplit(".", 1)[0]
    return f"{package}.{node.module}" if node.module else package


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _walk(node: ast.AST, deferred: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        if _type_checking(child):
            continue
        inner = deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield child, inner
        yield from _walk(child, inner)


def _says_why(line: str) -> bool:
    """A trailing comment that is prose, not a tool directive (``noqa``, ``type: ignore``)."""
    _, hash_, comment = line.partition("#")
    comment = comment.strip()
    return bool(hash_) and not comment.startswith(("noqa", "type:", "pragma"))


def _imports(source: str, path: Path) -> Iterator[Import]:
    text = path.read_text()
    lines = text.splitlines()
    for node, deferred in _walk(ast.parse(text), False):
        line = getattr(node, "lineno", 0)
        commented = _says_why(lines[line - 1]) or lines[line - 2].strip().startswith("# ")
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(ROOT):
                    yield Import(source, alias.name, (), line, deferred, commented)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(source, path, node)
            if not target.startswith(ROOT):
                continue
            names = tuple(a.name for a in node.names)
            yield Import(source, target, names, line, deferred, commented)
            for name in names:  # ``from package import submodule``
                if f"{target}.{name}" in MODULES:
                    yield Import(source, f"{target}.{name}", (), line, deferred, commented)


IMPORTS = [imp for name, path in MODULES.items() for imp in _imports(name, path)]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for imp in IMPORTS:
        if not imp.deferred and imp.target in MODULES and imp.target != imp.source:
            graph[imp.source].add(imp.target)
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return False


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_the_package() -> None:
    assert "pytest_themis.experiment.builder" in MODULES
    graph = _graph()
    assert "pytest_themis.generation.plan" in graph["pytest_themis.experiment.builder"]
    # a deferred import is not an edge
    assert "pytest_themis.experiment.orchestrator" not in graph["pytest_themis.experiment.builder"]


def test_module_level_imports_have_no_cycle() -> None:
    assert _cycles(_graph()) == []


def test_cycle_detection_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_deferred_imports_that_would_close_a_cycle_say_why() -> None:
    graph = _graph()
    silent = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in IMPORTS
        if imp.deferred
        and imp.target in MODULES
        and imp.target != imp.source
        and _reaches(graph, imp.target, imp.source)
        and not imp.commented
    ]
    assert silent == []


def test_no_module_imports_another_modules_private_names() -> None:
    private = {
        (imp.source, imp.target, name)
        for imp in IMPORTS
        for name in imp.names
        if name.startswith("_")
        and not name.startswith("__")
        and imp.target != imp.source
        and f"{imp.target}.{name}" not in MODULES  # a private module, imported as a module
    }
    assert sorted(private - KNOWN_PRIVATE_IMPORTS) == []
