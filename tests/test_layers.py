"""The layering of calibgate's packages: imports point down (or sideways), never up, and no two packages need each other.

Every module under ``calibgate/`` is parsed with :mod:`ast`; every import it
makes, at module level, inside a function or under ``TYPE_CHECKING``, with
relative imports resolved, is an edge from its unit (the first name below
``calibgate``: ``calibgate.policy.api`` -> ``policy``) to the unit it names.
A module may import units on its own floor or lower; the package graph has
no circle. A new top-level module or package must be given a floor here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "calibgate"

FLOORS: dict[str, int] = {
    # 0: the foundation every floor may use: version, errors, paths, YAML reading, settings, progress lines, lazy heavy
    #    imports, and the cross-boundary pydantic records (plan, evaluation, export, decision, monitor) with the strategy catalogue
    "calibgate": 0, "errors": 0, "paths": 0, "yamlio": 0, "_lazy": 0, "progress": 0, "settings": 0, "records": 0,
    "_arguments": 0,  # the Python API's argument checks by name
    # 1: data in: JSONL and DVC data sets, frozen-encoder embeddings, the run directory's layout and manifest
    "data": 1, "embeddings": 1, "runs": 1,
    # 2: the steps, each on records: the serving graph, signals, training, evaluation, export, GitHub, the policy and
    #    its pure gate
    "modeling": 2, "signals": 2, "training": 2, "evaluation": 2, "export": 2, "github": 2, "policy": 2,
    # 3: the planner: signals (+ the hidden-state view from training) -> a plan, under the policy's planner section
    "planner": 3,
    # 4: state and service: the git-tag registry (which reads the policy, never the other way), the HTTP server
    "registry": 4, "serving": 4,
    # 5: presentation and the drift loop's parts: PR report rendering; drift measures, records and retraining
    "report": 5, "drift": 5,
    # 6: orchestration: ci, drift and gate_run wire the steps, the registry and the report together
    "pipeline": 6,
    # 7: entry points: the typed facade, the command line, benchmarks, published JSON Schemas
    "api": 7, "cli": 7, "bench": 7, "schemas": 7, "__main__": 7,
}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool, known: set[str]) -> set[str]:
    """Every calibgate module ``source`` (the text of ``module``) imports, anywhere in it, relative imports resolved.

    ``from A import b`` counts as ``A.b`` when that is a module, else ``A``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known)
    return {name for name in found if name == "calibgate" or name.startswith("calibgate.")}


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "calibgate"


def _edges() -> dict[str, set[str]]:
    """module -> the calibgate modules it imports."""
    files = sorted(ROOT.rglob("*.py"))
    known = {module_name(f) for f in files}
    return {
        module_name(f): imported_modules(f.read_text(encoding="utf-8"), module_name(f), is_package=f.name == "__init__.py", known=known)
        for f in files
    }


EDGES = _edges()


def test_every_unit_has_a_floor():
    units = {unit(m) for m in EDGES}
    assert units - set(FLOORS) == set(), "give the new module or package a floor in tests/test_layers.py"
    assert set(FLOORS) - units == set(), "a floor names a unit that no longer exists"


def test_no_import_points_up():
    upward = sorted(
        f"{module} (floor {FLOORS[unit(module)]}) imports {target} (floor {FLOORS[unit(target)]})"
        for module, targets in EDGES.items()
        for target in targets
        if FLOORS[unit(target)] > FLOORS[unit(module)]
    )
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in EDGES.items():
        graph[unit(module)].update(unit(t) for t in targets if unit(t) != unit(module))
    return graph


def test_no_circle_between_packages():
    graph = package_graph()
    circles = _cycles(graph)
    detail = [{a: sorted(graph[a] & set(c)) for a in c} for c in circles]
    assert circles == [], detail


def test_records_import_only_themselves_and_errors():
    outside = sorted(
        f"{module} imports {target}"
        for module, targets in EDGES.items()
        if unit(module) == "records"
        for target in targets
        if unit(target) not in ("records", "errors")
    )
    assert outside == []


# -- the checker itself --------------------------------------------------------------------------

_SAMPLE = """
from __future__ import annotations
from typing import TYPE_CHECKING
from . import sibling
from .. import errors
from ..registry.api import production_baseline
if TYPE_CHECKING:
    from calibgate.records.plan import Plan
def later():
    import calibgate.pipeline.ci
    from calibgate import api
"""


def test_the_checker_sees_relative_function_level_and_type_checking_imports():
    known = {"calibgate.policy.sibling", "calibgate.errors", "calibgate.registry.api", "calibgate.api"}
    found = imported_modules(_SAMPLE, "calibgate.policy.api", is_package=False, known=known)
    assert found == {
        "calibgate.policy", "calibgate.policy.sibling", "calibgate", "calibgate.errors", "calibgate.registry.api",
        "calibgate.records.plan", "calibgate.pipeline.ci", "calibgate.api",
    }
    assert imported_modules("from . import x", "calibgate.policy", is_package=True, known={"calibgate.policy.x"}) == {
        "calibgate.policy", "calibgate.policy.x"
    }


@pytest.mark.parametrize(
    "graph,expected",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_circle_finder(graph, expected):
    assert _cycles(graph) == expected
