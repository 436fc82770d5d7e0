"""The structure the architecture promises, checked on the code as it is.

import-linter (``lint-imports`` in .ci/run, contracts in pyproject.toml) guards the layers; these
tests add what its contracts cannot say: no import cycle anywhere among product modules (with
function-local and ``TYPE_CHECKING`` imports counted: a lazy import hides a cycle, it does not remove
it), and units a person can hold.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import networkx
import pytest

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("planner", "backends")
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 100


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PRODUCT, include_external_packages=False)


def _edges(graph: grimp.ImportGraph) -> networkx.DiGraph:
    edges = networkx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            edges.add_edge(module, imported)
    return edges


def test_no_import_cycles_among_product_modules(graph: grimp.ImportGraph) -> None:
    cycles = sorted(sorted(c) for c in networkx.strongly_connected_components(_edges(graph)) if len(c) > 1)
    assert cycles == []


def test_the_core_imports_neither_a_backend_nor_the_cli(graph: grimp.ImportGraph) -> None:
    core = [m for m in graph.modules if m.startswith("planner") and not m.startswith("planner.cli")]
    wrong = sorted(
        f"{m} -> {i}"
        for m in core
        for i in graph.find_modules_directly_imported_by(m)
        if i.startswith(("backends", "planner.cli"))
    )
    assert wrong == []


def _product_files() -> list[Path]:
    return sorted(p for package in PRODUCT for p in (REPO / package).rglob("*.py"))


def test_no_product_module_is_over_the_size_a_person_can_hold() -> None:
    big = {str(p.relative_to(REPO)): n for p in _product_files() if (n := p.read_text().count("\n")) > MAX_MODULE_LINES}
    assert big == {}


def test_no_product_function_is_over_a_screenful_or_two() -> None:
    long = {}
    for path in _product_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO)}:{node.lineno} {node.name}"] = length
    assert long == {}
