"""One typed reader per record a run directory holds, and one way a record file fails to read.

* :func:`~calibgate.runs.parsing.parse_record` is the single bytes -> record
  step (the manifest's too). Every reader ends in it, whatever the bytes came from: a file, a file verified against the
  run manifest (:func:`verified_bytes`, used by serving), or a blob in the
  registry's evidence commit.
* :func:`read_record` reads a record file named by the user (``--plan``,
  ``--decision``, ``--evaluation``).
* :func:`read_evaluation` (required), :func:`read_export` and
  :func:`read_plan` (optional: ``None`` when the run has none) read a run's
  own records. Given the run's ``manifest`` they read only what it lists, and
  only bytes whose sha256 it records.

Every failure is a :class:`~calibgate.errors.ModelError` (exit code 2) naming
the file and the fix: no such file, not UTF-8, not valid JSON (with its
line), or not a valid record (the first field that is wrong).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from calibgate.errors import IntegrityError, ModelError
from calibgate.paths import safe_join
from calibgate.records.evaluation import EvaluationResult
from calibgate.records.export import ExportResult
from calibgate.records.plan import Plan
from calibgate.runs.layout import EVALUATION, EXPORT_RECORD, PLAN
from calibgate.runs.manifest import RunManifest
from calibgate.runs.parsing import parse_record

R = TypeVar("R", bound=BaseModel)

RESTORE_FIX = "restore the run from the registry (calibgate registry pull) or retrain"


def read_record(path: str | Path, model: type[R], *, what: str, fix: str) -> R:
    """The record file ``path`` as a ``model`` record; :class:`ModelError` when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file (the {what})", fix=fix)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot be read ({exc.strerror})", fix="check the file's permissions") from None
    return parse_record(data, model, source=str(path), what=what, fix=fix)


def verified_bytes(run_dir: str | Path, rel: str, manifest: RunManifest, *, fix: str = RESTORE_FIX) -> bytes:
    """The bytes of run file ``rel``, read once and checked against the sha256 ``manifest`` records for it.

    The bytes hashed are the bytes returned, so a file swapped after the check
    is never used. :class:`IntegrityError` when the manifest does not list
    ``rel``, the file is gone or a symlink, or its content changed.
    """
    run_dir = Path(run_dir)
    expected = manifest.files.get(rel)
    if expected is None:
        raise IntegrityError(f"{run_dir}: {rel} is not recorded in the run manifest", fix=fix)
    path = safe_join(run_dir, rel, what="run file")  # never a symlink, never outside the run
    try:
        data = path.read_bytes()
    except OSError:
        raise IntegrityError(f"{run_dir}: file {rel} is missing", fix=fix) from None
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise IntegrityError(
            f"{run_dir}: {rel} has sha256 {got[:12]}..., the manifest records {expected[:12]}..."
            " (tampered or corrupted)",
            fix=fix,
        )
    return data


def _read_run_record(run_dir: str | Path, rel: str, model: type[R], *, what: str, fix: str,
                     manifest: RunManifest | None, required: bool) -> R | None:
    run_dir = Path(run_dir)
    source = str(run_dir / rel)
    if manifest is not None:
        if rel not in manifest.files:
            if required:
                raise ModelError(f"{source}: the run has no {what}", fix=fix)
            return None
        data = verified_bytes(run_dir, rel, manifest, fix=RESTORE_FIX)
        return parse_record(data, model, source=source, what=what, fix=fix)
    if not required and not (run_dir / rel).exists():
        return None
    return read_record(run_dir / rel, model, what=what, fix=fix)


def read_evaluation(run_dir: str | Path, *, manifest: RunManifest | None = None) -> EvaluationResult:
    """The run's ``evaluation.json`` (required: :class:`ModelError` when the run was never evaluated)."""
    return _read_run_record(run_dir, EVALUATION, EvaluationResult, what="evaluation record",
                            fix=f"run 'calibgate evaluate --run {run_dir}'", manifest=manifest, required=True)


def read_export(run_dir: str | Path, *, manifest: RunManifest | None = None) -> ExportResult | None:
    """The run's ``export/export.json``, or None when the run was not exported."""
    return _read_run_record(run_dir, EXPORT_RECORD, ExportResult, what="export record",
                            fix=f"re-run 'calibgate export --run {run_dir}'", manifest=manifest, required=False)


def read_plan(run_dir: str | Path, *, manifest: RunManifest | None = None) -> Plan | None:
    """The plan the run was trained from (``plan.json``), or None when it was trained without one."""
    return _read_run_record(run_dir, PLAN, Plan, what="plan", manifest=manifest, required=False,
                            fix="retrain from a plan written by 'calibgate plan --json'")
