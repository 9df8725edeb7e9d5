"""The server package's modules import each other one way: no import cycles.

A cycle (``app`` ↔ ``cli``, ``handlers`` ↔ ``openapi`` were two) works only while
every module in it defers one of its imports into a function; the first
top-level import added in the wrong place breaks start-up with a partially
initialised module. The graph is read from the source (``ast``), so a cycle
fails here even when it is hidden inside functions, and the modules of each
former cycle are imported first, each in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess  # nosec B404 - runs this interpreter on a fixed snippet
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "orchestrator_ext"


def modules(package_dir: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Every module of the package: dotted name -> (file, whether it is a package's __init__)."""
    found = {}
    for path in package_dir.rglob("*.py"):
        parts = [package, *path.relative_to(package_dir).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(tree: ast.AST, package: str) -> Iterator[str]:
    """Dotted names a module imports, at any depth (functions too), but not under ``if TYPE_CHECKING``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                yield from imported_names(ast.Module(body=[child], type_ignores=[]), package)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)
        else:
            yield from imported_names(node, package)


def import_graph(package_dir: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (and, through them, their packages' __init__).

    Importing ``a.b.c`` runs ``a.b``'s ``__init__`` first, so that is an edge too, except
    towards the importer's own enclosing packages (always initialised before it) and the
    top package (its ``__init__`` only declares the extension's entry point).
    """
    found = modules(package_dir, package)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in found.items():
        if name == package:
            continue
        here = name if is_package else name.rpartition(".")[0]
        edges = set()
        for target in imported_names(ast.parse(path.read_text(), str(path)), here):
            while target:
                if target in found and target not in (package, name) and not name.startswith(f"{target}."):
                    edges.add(target)
                target = target.rpartition(".")[0]
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_server_package_has_no_import_cycle() -> None:
    graph = import_graph(ROOT / PACKAGE, PACKAGE)
    assert "orchestrator_ext.cli" in graph["orchestrator_ext.engine.commands"]  # the walk sees real edges
    assert cycles(graph) == []
    # the two cycles this replaced, named so a return says which one
    assert "orchestrator_ext.app" not in graph["orchestrator_ext.cli"]
    assert not {"orchestrator_ext.handlers", "orchestrator_ext.handlers.openapi"} & graph["orchestrator_ext.openapi"]


def test_the_check_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import two\n")
    (package / "one.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import three\n")
    (package / "sub" / "two.py").write_text("from .. import one\n\ndef later():\n    from ..three import x\n")
    (package / "three.py").write_text("from .sub.two import later\nx = 1\n")
    graph = import_graph(package, "pkg")
    assert cycles(graph) == [["pkg.sub", "pkg.sub.two", "pkg.three"]]
    assert graph["pkg.one"] == set()  # an import for type checking only is no edge


@pytest.mark.parametrize(
    "first",
    # the leaf of each former cycle first (the other order is what the server does); a fresh
    # interpreter each (importing the app takes a few seconds)
    [
        ("orchestrator_ext.cli", "orchestrator_ext.engine.commands", "orchestrator_ext.app"),
        ("orchestrator_ext.openapi", "orchestrator_ext.handlers.openapi", "orchestrator_ext.handlers"),
    ],
    ids="-then-".join,
)
def test_modules_of_the_former_cycles_import_in_either_order(first: tuple[str, ...]) -> None:
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run(  # nosec B603 - this interpreter, a fixed snippet
        [sys.executable, "-c", code, *first], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
