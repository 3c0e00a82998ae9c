"""The gate: a policy applied to a candidate's records, against a baseline (production) or none.

* :func:`gate` is pure: records in, :class:`GateDecision` out, nothing printed or read.
* :func:`gate_run` is the loader around it: reads a run directory's
  ``evaluation.json``, ``export/export.json`` and ``plan.json``, the policy
  file, and the baseline from the registry's production version or a run dir.
* :func:`check_policy` / :func:`load_policy` validate policy files.

Decision: any FAIL -> ``block`` (exit 1); otherwise any ERROR -> ``error``
(exit 3: the gate could not evaluate, which never passes); otherwise
``promote`` (exit 0). WARN and SKIPPED do not block.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from calibgate.records.evaluation import EvaluationResult
from calibgate.records.export import ExportResult
from calibgate.records.plan import Plan
from calibgate.policy.checks import CHECKS, GateInputs
from calibgate.records.decision import CheckResult, GateDecision
from calibgate.policy.loader import PolicyProblem, check_policy, load_policy, resolve_policy
from calibgate.policy.schema import Policy
from calibgate.runs import load_run, read_evaluation, read_export, read_plan, read_record

__all__ = ["gate", "gate_run", "production_for_gate", "UntrustedBaseline", "check_policy", "load_policy", "read_record", "PolicyProblem", "NO_BASELINE_NOTE"]

NO_BASELINE_NOTE = "No baseline: the first model is judged on absolute thresholds only."
BASELINE_CHECK = "baseline_integrity"
FIRST_MODEL_FIX = "to gate the first model on absolute thresholds, declare it: --baseline none"


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
) -> GateDecision:
    """Run every check the policy enables and decide promote / block / error.

    ``baseline`` is the production model's evaluation on (ideally) the same
    test set; ``None`` judges the first model on absolute thresholds only.
    Checks that need what is missing return ERROR (never a pass).
    ``baseline_problem``: why the baseline could not be trusted (tampered
    evidence or artifact); recorded as an ERROR check, so the gate never passes.
    """
    inputs = GateInputs(candidate, candidate_export, plan, baseline, baseline_export)
    checks: list[CheckResult] = []
    if baseline_problem is not None:
        checks.append(CheckResult(id=BASELINE_CHECK, status="ERROR", message=f"the baseline cannot be trusted: {baseline_problem}"))
    for name, config in policy.enabled_checks().items():
        checks += CHECKS[name]().run(config, inputs)
    return GateDecision(
        decision=_decide(checks),
        candidate=candidate_id or candidate.run_id,
        baseline=(baseline_id or baseline.run_id) if baseline is not None else baseline_id,
        policy=policy.source,
        policy_sha256=policy.sha256,
        checks=checks,
        summary=_summary(checks, baseline is not None or baseline_problem is not None),
    )


def _decide(checks: list[CheckResult]) -> str:
    statuses = {c.status for c in checks}
    if "FAIL" in statuses:
        return "block"
    if "ERROR" in statuses:
        return "error"
    return "promote"


def _summary(checks: list[CheckResult], has_baseline: bool) -> str:
    by = {s: [c.id for c in checks if c.status == s] for s in ("PASS", "WARN", "FAIL", "ERROR", "SKIPPED")}
    parts = []
    if by["FAIL"]:
        parts.append(f"blocked: {len(by['FAIL'])} check(s) failed ({', '.join(by['FAIL'])})")
    if by["ERROR"]:
        parts.append(f"{len(by['ERROR'])} check(s) could not be evaluated ({', '.join(by['ERROR'])}), which blocks")
    if not parts:
        parts.append(f"may promote: {len(by['PASS'])} check(s) passed" if checks else "may promote: the policy enables no checks")
    if by["WARN"]:
        parts.append(f"{len(by['WARN'])} warning(s) ({', '.join(by['WARN'])})")
    if by["SKIPPED"]:
        parts.append(f"{len(by['SKIPPED'])} skipped")
    text = "; ".join(parts) + "."
    return text if has_baseline else f"{text} {NO_BASELINE_NOTE}"


def read_run_records(run_dir: str | Path) -> tuple[EvaluationResult, ExportResult | None, Plan | None]:
    """A run's evaluation (required), export and plan (when present); the run is verified against its manifest."""
    run_dir = Path(run_dir)
    manifest = load_run(run_dir)  # IntegrityError on a tampered run: never gate what is not what was trained
    return (read_evaluation(run_dir, manifest=manifest), read_export(run_dir, manifest=manifest),
            read_plan(run_dir, manifest=manifest))


def gate_run(
    candidate: str | Path,
    *,
    baseline: str | Path | None = "production",
    policy: str | Path | Policy | None = None,
    plan: str | Path | None = None,
    repo: str | Path | None = None,
    name: str | None = None,
) -> GateDecision:
    """Gate a run directory: the loader around :func:`gate`.

    ``baseline``: ``"production"`` (the version in production in the git
    registry at ``repo``, verified), a run directory, or ``"none"``/``None``
    (first-model mode, which must be asked for: a registry that cannot be read
    or has no production version is :class:`RegistryError`, exit 2, never an
    implicit first model). A production baseline whose evidence or stored
    artifact fails verification gives an ERROR check (the gate never passes).
    ``policy`` and ``name`` default to ``calibgate.yaml``'s. ``plan``
    overrides ``<candidate>/plan.json``.
    """
    from calibgate.settings import load_config

    config = load_config()
    policy = resolve_policy(policy, config)
    evaluation, export, run_plan = read_run_records(candidate)
    if plan is not None:
        run_plan = read_record(plan, Plan, what="plan", fix="pass a file written by 'calibgate plan --json'")
    base_eval = base_export = None
    base_id = problem = None
    if baseline not in (None, "none"):
        if str(baseline) == "production":
            found = production_for_gate(repo or config.root, name or config.name)
            if isinstance(found, tuple):
                base_id, base_eval, base_export = found
            else:
                base_id, problem = found.ref, found.problem
        else:
            base_eval, base_export, _ = read_run_records(baseline)
            base_id = base_eval.run_id
    return gate(
        policy, evaluation, candidate_export=export, plan=run_plan, baseline=base_eval, baseline_export=base_export,
        candidate_id=evaluation.run_id, baseline_id=base_id, baseline_problem=problem,
    )


@dataclass(frozen=True)
class UntrustedBaseline:
    """The production version exists but failed verification: ``problem`` says how."""

    ref: str
    problem: str


def production_for_gate(
    repo: str | Path, name: str, *, verify_store: bool = True
) -> tuple[str, EvaluationResult, ExportResult | None] | UntrustedBaseline:
    """The verified production baseline of ``name``, or :class:`UntrustedBaseline` when verification failed.

    Raises :class:`RegistryError` (exit 2) when the registry cannot be read or
    nothing is in production: the first model must be declared, not inferred
    (a shallow CI checkout without tags would otherwise look like one).
    """
    from calibgate.errors import IntegrityError, RegistryError
    from calibgate.registry.api import production_baseline

    try:
        found = production_baseline(repo, name, verify_store=verify_store)
    except IntegrityError as exc:
        return UntrustedBaseline(f"{name} (production)", exc.message)
    except RegistryError as exc:
        raise RegistryError(f"cannot read the production baseline from the git registry: {exc.message}",
                            fix=f"run in the project's clone with its tags (git fetch --tags), pass --baseline runs/<id>, or "
                                f"{FIRST_MODEL_FIX}") from None
    if found is None:
        raise RegistryError(f"no version of {name} is in production in the git registry at {Path(repo).resolve()} "
                            "(or its tags were not fetched)", fix=f"git fetch --tags; {FIRST_MODEL_FIX}")
    return found
