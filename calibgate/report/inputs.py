"""Reading the records a report is made of from JSON files and run directories.

One place validates them (:func:`calibgate.runs.read_record`, the reader of
every record file): a missing file, bad JSON or a record of the wrong shape
is a :class:`~calibgate.errors.ModelError` (an :class:`InputError`) naming
the file and the fix (exit code 2).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from calibgate.errors import InputError
from calibgate.records.decision import GateDecision
from calibgate.records.evaluation import EvaluationResult
from calibgate.records.export import ExportResult
from calibgate.records.plan import Plan
from calibgate.runs import EVALUATION, EXPORT_RECORD, PLAN, file_name, load_run, read_record

# where 'calibgate train/evaluate/export' leave their records inside a run directory
RUN_FILES = {"plan": PLAN, "candidate_eval": EVALUATION, "export": EXPORT_RECORD}
# what 'calibgate ci --out DIR' writes (the gate's artifact): the run's records under their own names
CI_FILES = {
    "decision": "decision.json",
    "plan": file_name(PLAN),
    "candidate_eval": file_name(EVALUATION),
    "baseline_eval": "baseline-evaluation.json",
    "export": file_name(EXPORT_RECORD),
}
RECORD_TYPES: dict[str, type[BaseModel]] = {
    "decision": GateDecision,
    "plan": Plan,
    "candidate_eval": EvaluationResult,
    "baseline_eval": EvaluationResult,
    "export": ExportResult,
}


def load_record(path: str | Path, model: type[BaseModel]) -> BaseModel:
    """Parse and validate one JSON record file (:func:`calibgate.runs.read_record`: one error for every record file)."""
    name = model.__name__
    return read_record(path, model, what=f"{name} record", fix=f"pass the {name} JSON the producing command wrote")


def load_records(
    paths: dict[str, str | Path | None], *, run: str | Path | None = None, records: str | Path | None = None
) -> dict[str, BaseModel | None]:
    """Records by role (decision, plan, candidate_eval, baseline_eval, export).

    Roles not given explicitly are filled from a run directory (``run``) and
    then from a ``calibgate ci --out`` directory (``records``). A decision is required.
    """
    paths = dict(paths)
    manifest = None
    for directory, files, what in ((run, RUN_FILES, "run directory"), (records, CI_FILES, "records directory")):
        if directory is None:
            continue
        directory = Path(directory)
        if not directory.is_dir():
            raise InputError(f"{directory}: no such {what}", fix="pass an existing directory")
        if files is RUN_FILES:
            manifest = load_run(directory)  # whole and untampered, or ModelError / IntegrityError: a report vouches for it
        for role, rel in files.items():
            if paths.get(role) is None and (directory / rel).is_file():
                paths[role] = directory / rel
    if paths.get("decision") is None:
        raise InputError(
            "no gate decision to report", fix="pass --decision decision.json or --records DIR holding decision.json"
        )
    loaded = {role: (None if p is None else load_record(p, RECORD_TYPES[role])) for role, p in paths.items()}
    _check_one_candidate(loaded, manifest, paths)
    return loaded


def _check_one_candidate(loaded: dict[str, BaseModel | None], manifest, paths: dict) -> None:
    """The records describe one candidate: a report that put one run's decision over another run's metrics told a
    reviewer the checks had passed on figures they were never run on."""
    decision = loaded["decision"]
    fix = "pass the records of one candidate: the decision, evaluation and export 'calibgate gate' / 'ci' judged"
    if manifest is not None and decision.candidate_manifest_sha256 not in (None, manifest.manifest_sha256):
        raise InputError(f"the decision in {paths['decision']} is about another run than {manifest.run_id} "
                         "(its candidate_manifest_sha256 is not that run's manifest)", fix=fix)
    plan = loaded.get("plan")
    if plan is not None and decision.plan_sha256 is None:
        raise InputError(f"the decision in {paths['decision']} names no plan (its gate read none, or an older calibgate "
                         f"made it), so {paths['plan']} cannot be shown as its plan", fix=fix + "; or leave the plan out")
    if plan is not None and plan.content_sha256() != decision.plan_sha256:
        raise InputError(f"{paths['plan']} is not the plan the decision's checks read (its content digest is not the "
                         "decision's plan_sha256)", fix=fix)
    if loaded.get("baseline_eval") is not None and decision.baseline is None:  # a stale file beside a first-model gate
        raise InputError(f"the decision in {paths['decision']} was made against no baseline (first model), so "
                         f"{paths['baseline_eval']} cannot be shown as its baseline", fix=fix + "; or leave the baseline out")
    named = {decision.candidate} if "@" not in decision.candidate else set()  # a registry version names no run id
    for role in ("candidate_eval", "export"):
        record = loaded.get(role)
        if record is not None:
            named.add(record.run_id)
            if len(named) > 1:
                raise InputError(f"{paths[role]} is about run {record.run_id}, the other records about "
                                 f"{', '.join(sorted(named - {record.run_id}))}", fix=fix)
    baseline = loaded.get("baseline_eval")
    if baseline is not None:
        if baseline.run_id in named:  # the candidate's evaluation shown as production's: every delta reads 0
            raise InputError(f"{paths['baseline_eval']} is the candidate's own evaluation (run {baseline.run_id}), not "
                             "the baseline's", fix=fix + "; the baseline's evaluation is baseline-evaluation.json in ci --out")
        if "@" not in decision.baseline and baseline.run_id != decision.baseline:
            raise InputError(f"{paths['baseline_eval']} is about run {baseline.run_id}, the decision's baseline is run "
                             f"{decision.baseline}", fix=fix)
    for role, side in (("candidate_eval", "value"), ("baseline_eval", "baseline")):
        if loaded.get(role) is not None:
            _figures_agree(decision, loaded[role], side, paths, role, fix)


def _measured(evaluation, check_id: str) -> float | None:
    """The figure of ``evaluation`` that check ``check_id`` reads, for the checks that read one evaluation figure."""
    name, _, part = check_id.partition(":")
    if name in _METRIC_OF_CHECK:
        return evaluation.metrics.get(_METRIC_OF_CHECK[name])
    if name == "metric" and part:
        return evaluation.metrics.get(part)
    if name == "class_recall_floor" and part:
        per_class = evaluation.per_class.get(part)
        return None if per_class is None else per_class.recall
    return None


_METRIC_OF_CHECK = {"accuracy_floor": "accuracy", "macro_f1_floor": "macro_f1", "label_validity_floor": "label_validity_rate"}


def _figures_agree(decision, evaluation, side: str, paths: dict, role: str, fix: str) -> None:
    """Each figure the decision's checks show for the candidate (``value``) or the baseline (``baseline``) is the one
    ``evaluation`` gives: an evaluation written after the gate (re-evaluated on another test set), or another model's,
    rendered a metrics table that contradicted the check list above it."""
    import math

    for check in decision.checks:
        shown = getattr(check, side)
        if shown is None:
            continue
        measured = _measured(evaluation, check.id)
        if measured is not None and not math.isclose(measured, shown, rel_tol=1e-9, abs_tol=1e-9):
            raise InputError(f"{paths[role]} gives {check.id} {measured:.6g}, but the decision's check shows "
                             f"{'the candidate' if side == 'value' else 'the baseline'} at {shown:.6g}: it is not the "
                             "evaluation the gate read", fix=fix)
