"""The gate: a policy applied to a candidate's records, against a baseline (production) or none.

* :func:`gate` is pure: records in, :class:`GateDecision` out, nothing printed or read.
* :func:`read_run_records` reads a run directory's ``evaluation.json``,
  ``export/export.json`` and ``plan.json``; :func:`calibgate.pipeline.gate.gate_run`
  is the loader around :func:`gate`, with the baseline from the registry.
* :func:`check_policy` / :func:`load_policy` validate policy files.

Decision: any FAIL -> ``block`` (exit 1); otherwise any ERROR -> ``error``
(exit 3: the gate could not evaluate, which never passes); otherwise
``promote`` (exit 0). WARN and SKIPPED do not block.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from calibgate.records.evaluation import EvaluationResult
from calibgate.records.export import ExportResult
from calibgate.records.plan import Plan
from calibgate.policy.checks import CHECKS, GateInputs
from calibgate.records.decision import CheckResult, GateDecision, decide
from calibgate.policy.loader import PolicyProblem, check_policy, load_policy
from calibgate.policy.schema import Policy
from calibgate.runs import RunManifest, load_run, read_evaluation, read_export, read_plan, read_record

__all__ = ["gate", "read_run_evidence", "read_run_records", "RunEvidence", "check_policy", "load_policy", "read_record", "PolicyProblem", "NO_BASELINE_NOTE"]

NO_BASELINE_NOTE = "No baseline: the first model is judged on absolute thresholds only."
BASELINE_CHECK = "baseline_integrity"


def gate(
    policy: Policy,
    candidate: EvaluationResult,
    *,
    candidate_export: ExportResult | None = None,
    plan: Plan | None = None,
    baseline: EvaluationResult | None = None,
    baseline_export: ExportResult | None = None,
    candidate_id: str | None = None,
    baseline_id: str | None = None,
    baseline_problem: str | None = None,
    extra_checks: Sequence[CheckResult] = (),
) -> GateDecision:
    """Run every check the policy enables and decide promote / block / error.

    ``baseline`` is the production model's evaluation on (ideally) the same
    test set; ``None`` judges the first model on absolute thresholds only.
    Checks that need what is missing return ERROR (never a pass).
    ``baseline_problem``: why the baseline could not be trusted (tampered
    evidence or artifact); recorded as an ERROR check, so the gate never passes.
    ``extra_checks``: checks the policy does not configure, decided by the caller
    (``policy_change``: the policy against the base branch's, see :mod:`calibgate.policy.compare`).
    """
    inputs = GateInputs(candidate, candidate_export, plan, baseline, baseline_export)
    checks: list[CheckResult] = []
    if baseline_problem is not None:
        checks.append(CheckResult(id=BASELINE_CHECK, status="ERROR", message=f"the baseline cannot be trusted: {baseline_problem}"))
    if baseline is not None and baseline.run_id == candidate.run_id:  # a run against itself passes every relative check
        checks.append(CheckResult(id=BASELINE_CHECK, status="ERROR", message=f"the baseline is the candidate's own run "
                                  f"{candidate.run_id}: a model compared with itself says nothing"))
    checks += extra_checks
    for name, config in policy.enabled_checks().items():
        checks += CHECKS[name]().run(config, inputs)
    return GateDecision(
        decision=decide(checks),
        candidate=candidate_id or candidate.run_id,
        baseline=(baseline_id or baseline.run_id) if baseline is not None else baseline_id,
        policy=policy.source,
        policy_sha256=policy.sha256,
        checks=checks,
        summary=_summary(checks, baseline is not None or baseline_problem is not None),
    )


def _summary(checks: list[CheckResult], has_baseline: bool) -> str:
    by = {s: [c.id for c in checks if c.status == s] for s in ("PASS", "WARN", "FAIL", "ERROR", "SKIPPED")}
    parts = []
    if by["FAIL"]:
        parts.append(f"blocked: {len(by['FAIL'])} check(s) failed ({', '.join(by['FAIL'])})")
    if by["ERROR"]:
        parts.append(f"{len(by['ERROR'])} check(s) could not be evaluated ({', '.join(by['ERROR'])}), which blocks")
    if not parts:
        parts.append(f"may promote: {len(by['PASS'])} check(s) passed" if checks else "cannot decide: no check ran, which blocks")
    if by["WARN"]:
        parts.append(f"{len(by['WARN'])} warning(s) ({', '.join(by['WARN'])})")
    if by["SKIPPED"]:
        parts.append(f"{len(by['SKIPPED'])} skipped")
    text = "; ".join(parts) + "."
    return text if has_baseline else f"{text} {NO_BASELINE_NOTE}"


class RunEvidence(NamedTuple):
    """A verified run's records, with the manifest they were checked against (read once, so they cannot disagree)."""

    manifest: RunManifest
    evaluation: EvaluationResult
    export: ExportResult | None
    plan: Plan | None


def read_run_evidence(run_dir: str | Path) -> RunEvidence:
    """A run's manifest and its evaluation (required), export and plan (when present), verified against it."""
    run_dir = Path(run_dir)
    manifest = load_run(run_dir)  # IntegrityError on a tampered run: never gate what is not what was trained
    return RunEvidence(manifest, read_evaluation(run_dir, manifest=manifest), read_export(run_dir, manifest=manifest),
                       read_plan(run_dir, manifest=manifest))


def read_run_records(run_dir: str | Path) -> tuple[EvaluationResult, ExportResult | None, Plan | None]:
    """A run's evaluation (required), export and plan (when present); the run is verified against its manifest."""
    _, evaluation, export, plan = read_run_evidence(run_dir)
    return evaluation, export, plan
