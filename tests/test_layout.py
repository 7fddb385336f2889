"""Kiln's modules import each other in one direction only: no import cycles.

A cycle means neither module can be read (or loaded) without the other, and
Python hides it by letting a module be half-initialised while the other one
runs; a later edit that moves an import to the top of a file then fails at
start-up. Tasks are thin wrappers over the engine, views over services, never
the reverse. This test reads every ``.py`` file of Kiln's packages with ``ast``
and fails naming each cycle and the lines that make it.

What counts as an edge: every ``import`` and ``from … import`` of a Kiln module,
at module level and inside functions (an import inside a function is the usual
way a cycle is hidden, not removed), except under ``if TYPE_CHECKING:`` (never
run). Granularity is the module: ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg``; a package's ``__init__``
is the module ``pkg``. Only import statements count: a module named in a
string (settings, the provider registry's ``import_string``) is not an edge.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, order=True)
class Edge:
    """One import statement of ``target`` in ``source`` (at ``path``, line ``line``)."""

    source: str
    target: str
    line: int
    path: str


def kiln_packages(root: Path) -> list[str]:
    """Every top-level package of the checkout (project, accounts, generations, bench, tests…)."""
    return sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file() and not p.name.startswith("."))


def module_files(root: Path, packages: list[str]) -> dict[str, Path]:
    """Dotted module name → file, for every .py file under the packages."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree: ast.AST):
    """Every Import / ImportFrom node, at any depth, except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the else branch does run
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_edges(root: Path, packages: list[str]) -> tuple[set[str], list[Edge]]:
    modules = module_files(root, packages)
    edges = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        where = path.relative_to(root)
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from . / .. / .x import y
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if submodule in modules else base)
            for target in targets:
                # ``import a.b.c`` where only ``a.b`` is Kiln's (or ``c`` is a name): the nearest module.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.append(Edge(name, target, node.lineno, str(where)))
    # One edge per statement and target (``from m import a, b`` is one).
    return set(modules), sorted(set(edges))


def find_cycles(modules: set[str], edges: list[Edge]) -> list[list[Edge]]:
    """Cycles of the import graph, each as the import statements that make it, in order.
    graphlib names one cycle; its first step is then set aside and the search repeated,
    until none is left."""
    steps: dict[tuple[str, str], list[Edge]] = {}
    for edge in edges:
        steps.setdefault((edge.source, edge.target), []).append(edge)
    cycles = []
    while True:
        graph: dict[str, set[str]] = {m: set() for m in modules}
        for source, target in steps:
            graph[source].add(target)
        try:
            TopologicalSorter(graph).prepare()
        except CycleError as exc:
            # exc.args[1] is [a, …, a], each node a predecessor of the next (imported by it):
            # reversed, each module imports the next.
            hops = list(pairwise(exc.args[1][::-1]))
            cycles.append([edge for hop in hops for edge in steps[hop]])
            del steps[hops[0]]
            continue
        return cycles


def describe(cycle: list[Edge]) -> str:
    modules = list(dict.fromkeys(edge.source for edge in cycle))
    lines = "\n".join(f"    {edge.path}:{edge.line}  {edge.source} imports {edge.target}" for edge in cycle)
    return f"  {' → '.join([*modules, modules[0]])}\n{lines}"


def test_kiln_modules_import_each_other_without_a_cycle():
    packages = kiln_packages(ROOT)
    modules, edges = import_edges(ROOT, packages)
    # The scan reads the real tree (a broken scan would find no cycle in nothing).
    assert {"project", "accounts", "generations", "tests"} <= set(packages)
    assert len(modules) > 50 and len(edges) > 100

    cycles = find_cycles(modules, edges)

    assert not cycles, ("Kiln's modules import each other in a circle (tasks import the engine, views import "
                        "services, never the reverse):\n" + "\n".join(describe(c) for c in cycles))


def test_the_scan_finds_a_cycle_hidden_in_a_function(tmp_path):
    """What the check above relies on: an import inside a function and ``from pkg import module``
    are edges; an import under ``if TYPE_CHECKING:`` is not."""
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "orders.py").write_text("from shop import payments\n")
    (package / "payments.py").write_text("def refund():\n    from shop.orders import Order\n")
    (package / "report.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                       "    from shop.orders import Order\n")
    (package / "ledger.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\n"
                                       "else:\n    from shop import report\n")

    modules, edges = import_edges(tmp_path, kiln_packages(tmp_path))
    cycles = find_cycles(modules, edges)

    assert [sorted(e.source for e in cycle) for cycle in cycles] == [["shop.orders", "shop.payments"]]
    assert {(e.source, e.target) for e in edges} == {
        ("shop.orders", "shop.payments"), ("shop.payments", "shop.orders"), ("shop.ledger", "shop.report")}
    assert "shop/payments.py:2  shop.payments imports shop.orders" in describe(cycles[0])
