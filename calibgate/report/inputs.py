"""Reading the records a report is made of from JSON files and run directories.

One place validates them: a missing file, bad JSON or a record of the wrong
shape is an :class:`InputError` naming the file and the fix (exit code 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from calibgate.errors import InputError
from calibgate.records.evaluation import EvaluationResult
from calibgate.records.export import ExportResult
from calibgate.records.plan import Plan
from calibgate.records.decision import GateDecision

_M = TypeVar("_M", bound=BaseModel)

# where 'calibgate train/evaluate/export' leave their records inside a run directory
RUN_FILES = {"plan": "plan.json", "candidate_eval": "evaluation.json", "export": "export/export.json"}
# what 'calibgate ci --out DIR' writes (the gate's artifact)
CI_FILES = {
    "decision": "decision.json",
    "plan": "plan.json",
    "candidate_eval": "evaluation.json",
    "baseline_eval": "baseline-evaluation.json",
    "export": "export.json",
}
RECORD_TYPES: dict[str, type[BaseModel]] = {
    "decision": GateDecision,
    "plan": Plan,
    "candidate_eval": EvaluationResult,
    "baseline_eval": EvaluationResult,
    "export": ExportResult,
}


def load_record(path: str | Path, model: type[_M]) -> _M:
    """Parse and validate one JSON record file."""
    from calibgate.report.api import coerce

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file", fix=f"pass the {model.__name__} JSON the producing command wrote")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})", fix="regenerate the file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text", fix="regenerate the file") from None
    return coerce(model, raw, str(path))


def load_records(
    paths: dict[str, str | Path | None], *, run: str | Path | None = None, records: str | Path | None = None
) -> dict[str, BaseModel | None]:
    """Records by role (decision, plan, candidate_eval, baseline_eval, export).

    Roles not given explicitly are filled from a run directory (``run``) and
    then from a ``calibgate ci --out`` directory (``records``). A decision is required.
    """
    paths = dict(paths)
    for directory, files, what in ((run, RUN_FILES, "run directory"), (records, CI_FILES, "records directory")):
        if directory is None:
            continue
        directory = Path(directory)
        if not directory.is_dir():
            raise InputError(f"{directory}: no such {what}", fix="pass an existing directory")
        for role, rel in files.items():
            if paths.get(role) is None and (directory / rel).is_file():
                paths[role] = directory / rel
    if paths.get("decision") is None:
        raise InputError(
            "no gate decision to report", fix="pass --decision decision.json or --records DIR holding decision.json"
        )
    return {role: (None if p is None else load_record(p, RECORD_TYPES[role])) for role, p in paths.items()}
