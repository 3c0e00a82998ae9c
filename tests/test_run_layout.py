"""The run directory has one owner: no module but calibgate.runs spells a run file or folder name.

A copy of a name drifts (a reader that looks for ``export.json`` beside a
writer that moved it); every module asks :mod:`calibgate.runs.layout` instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import calibgate
from calibgate.runs import layout

PACKAGE = Path(calibgate.__file__).parent
OWNER = PACKAGE / "runs"
FILE_NAMES = set(layout.FILES) | {layout.file_name(rel) for rel in layout.FILES}


def _strings(tree: ast.AST):
    """(node, text, is a path-join operand) for every string constant, f-string parts included."""
    joined = {id(side) for node in ast.walk(tree) if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
              for side in (node.left, node.right)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node, node.value, id(node) in joined


def layout_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string constant in ``source`` that spells a run file or folder name."""
    found = []
    for node, text, in_join in _strings(ast.parse(source)):
        bare = text.strip("/")
        if (bare in FILE_NAMES or any(bare.startswith(f"{folder}/") for folder in layout.FOLDERS)
                or (in_join and bare in layout.FOLDERS)):
            found.append((node.lineno, text))
    return sorted(found)


def test_the_checker_sees_each_way_a_name_is_spelled():
    source = (
        'a = "evaluation.json"\n'
        'b = run / "encoder"\n'
        'c = f"{evidence}/export.json"\n'
        'd = "export/model.onnx"\n'
        'e = {"latency_class": "encoder", "x": "baseline"}\n'  # the same words, not as paths: allowed
        'f = "no evaluation.json in the run"\n'  # prose naming a file: allowed
    )
    assert [line for line, _ in layout_literals(source)] == [1, 2, 3, 4]


def test_no_module_outside_runs_spells_a_run_file_name():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if OWNER in path.parents:
            continue
        for line, text in layout_literals(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}")
    assert not offenders, "run file names belong to calibgate.runs.layout:\n" + "\n".join(offenders)


def test_every_name_the_layout_defines_is_checked():
    # a name added to the layout but left out of FILES / FOLDERS would escape the walk above
    names = {v for k, v in vars(layout).items() if k.isupper() and isinstance(v, str)} | set(layout.ONNX_FILES.values())
    assert names == set(layout.FILES) | set(layout.FOLDERS)
