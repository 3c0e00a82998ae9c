"""Reading the records a report is made of from JSON files and run directories.

One place validates them: a missing file, bad JSON or a record of the wrong
shape is an :class:`InputError` naming the file and the fix (exit code 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from calibgate.errors import InputError
from calibgate.evaluation.schema import EvaluationResult
from calibgate.export.schema import ExportResult
from calibgate.planner.schema import Plan
from calibgate.policy.decision import GateDecision
from calibgate.settings import describe_validation_error

_M = TypeVar("_M", bound=BaseModel)

# where 'calibgate train/evaluate/export' leave their records inside a run directory
RUN_FILES = {"plan": "plan.json", "candidate_eval": "evaluation.json", "export": "export/export.json"}
RECORD_TYPES: dict[str, type[BaseModel]] = {
    "decision": GateDecision, "plan": Plan, "candidate_eval": EvaluationResult,
    "baseline_eval": EvaluationResult, "export": ExportResult,
}


def load_record(path: str | Path, model: type[_M]) -> _M:
    """Parse and validate one JSON record file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file", fix=f"pass the {model.__name__} JSON the producing command wrote")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})", fix="regenerate the file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text", fix="regenerate the file") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(raw).__name__}", fix="regenerate the file")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InputError(
            f"{path}: not a {model.__name__} record: {describe_validation_error(exc, model)}", fix="regenerate the file"
        ) from None


def load_records(paths: dict[str, str | Path | None], *, run: str | Path | None = None) -> dict[str, BaseModel | None]:
    """Records by role (decision, plan, candidate_eval, baseline_eval, export).

    A run directory fills the roles not given explicitly from the files it holds.
    """
    paths = dict(paths)
    if run is not None:
        run = Path(run)
        if not run.is_dir():
            raise InputError(f"{run}: no such run directory", fix="pass --run runs/<id>")
        for role, rel in RUN_FILES.items():
            if paths.get(role) is None and (run / rel).is_file():
                paths[role] = run / rel
    return {role: (None if p is None else load_record(p, RECORD_TYPES[role])) for role, p in paths.items()}
