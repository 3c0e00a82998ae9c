"""``gate_run``: the gate on a run directory, with its baseline from the registry, a run directory or none.

:func:`calibgate.policy.api.gate` is the pure decision (records in, decision
out); this module is the loader around it that needs the registry as well, so
the policy package never imports the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from calibgate.records.decision import GateDecision
from calibgate.records.evaluation import EvaluationResult
from calibgate.records.export import ExportResult
from calibgate.policy.schema import Policy

__all__ = ["gate_run", "production_for_gate", "UntrustedBaseline", "FIRST_MODEL_FIX"]

FIRST_MODEL_FIX = "to gate the first model on absolute thresholds, declare it: --baseline none"


def gate_run(
    candidate: str | Path,
    *,
    baseline: str | Path | None = "production",
    policy: str | Path | Policy | None = None,
    plan: str | Path | None = None,
    repo: str | Path | None = None,
    name: str | None = None,
    policy_base: str | None = None,
) -> GateDecision:
    """Gate a run directory: the loader around :func:`calibgate.policy.api.gate`.

    ``baseline``: ``"production"`` (the version in production in the git
    registry at ``repo``, verified), a run directory, or ``"none"``/``None``
    (first-model mode, which must be asked for: a registry that cannot be read
    or has no production version is :class:`RegistryError`, exit 2, never an
    implicit first model). A production baseline whose evidence or stored
    artifact fails verification gives an ERROR check (the gate never passes).
    ``policy`` and ``name`` default to ``calibgate.yaml``'s. ``plan``
    overrides ``<candidate>/plan.json``. ``policy_base``: a git revision (the
    branch the change merges into) whose policy the one applied must not be
    weaker than (the ``policy_change`` check); default ``origin/$GITHUB_BASE_REF``
    in a pull request's workflow, else no comparison.
    """
    from calibgate.policy.api import gate, read_record, read_run_evidence
    from calibgate.policy.loader import resolve_policy
    from calibgate.records.plan import Plan
    from calibgate.settings import load_config

    config = load_config()
    _check_baseline_word(baseline)
    policy = resolve_policy(policy, config)
    manifest, evaluation, export, run_plan = read_run_evidence(candidate)
    if plan is not None:
        run_plan = read_record(plan, Plan, what="plan", fix="pass a file written by 'calibgate plan --json'")
        _plan_of_run(run_plan, manifest, plan)
    base_eval = base_export = None
    base_id = problem = None
    if baseline not in (None, "none"):
        if str(baseline) == "production":
            found = production_for_gate(repo or config.root, name or config.name)
            if isinstance(found, tuple):
                base_id, base_eval, base_export = found
                _not_itself(manifest.run_id, base_eval.run_id, f"{base_id}, the version in production")
            else:
                base_id, problem = found.ref, found.problem
        else:
            base_manifest, base_eval, base_export, _ = read_run_evidence(baseline)
            base_id = base_eval.run_id
            _not_itself(manifest.run_id, base_manifest.run_id, f"the baseline {baseline}")
    extra = []
    base_ref = policy_base if policy_base is not None else default_policy_base()
    if base_ref:
        from calibgate.registry.policybase import compare_with_base

        extra.append(compare_with_base(policy, base_ref, config, repo or config.root))
    decision = gate(
        policy, evaluation, candidate_export=export, plan=run_plan, baseline=base_eval, baseline_export=base_export,
        candidate_id=evaluation.run_id, baseline_id=base_id, baseline_problem=problem, extra_checks=extra,
    )
    # the records above were verified against this manifest, read once: the decision names it, so it is only ever
    # about these files, and names the plan its signal checks read, so no report shows it beside another
    return decision.model_copy(update={
        "candidate_manifest_sha256": manifest.manifest_sha256,
        "plan_sha256": None if run_plan is None else run_plan.content_sha256(),
    })


def _plan_of_run(plan, manifest, path) -> None:
    """A plan passed with --plan describes the candidate's data: its signal checks (label noise, shift, class counts)
    judged the candidate on another data version's figures, or another task's. Refused (exit 2)."""
    from calibgate.errors import ConfigError

    fix = "pass the plan of the candidate's data (calibgate plan --json on the data version the run was trained on), or leave --plan out to use the run's own plan.json"
    planned, trained = plan.dataset.dvc_md5, manifest.data.get("dvc_md5")
    if planned and trained and planned != trained:
        raise ConfigError(f"{path} is a plan of data version {planned}, the candidate {manifest.run_id} was trained on "
                          f"{trained}", fix=fix)
    unknown = sorted(set(plan.dataset.label_names) - set(manifest.label_names))
    if unknown:
        raise ConfigError(f"{path} is a plan of data with label(s) the candidate {manifest.run_id} does not have: "
                          f"{', '.join(unknown[:5])}", fix=fix)


def _not_itself(candidate_run: str, baseline_run: str, what: str) -> None:
    """A run compared with itself (the same directory, a copy of it, or the version in production) passes every
    check relative to the baseline by construction: no drop, no regression, a latency ratio of 1. Refused (exit 2)."""
    from calibgate.errors import ConfigError

    if candidate_run == baseline_run:
        raise ConfigError(f"the candidate is run {candidate_run}, and so is {what}: a model compared with itself passes "
                          "every check against the baseline", fix="gate another run against it; or judge this one on "
                          "absolute thresholds only: --baseline none")


def default_policy_base(env=None) -> str | None:
    """``origin/<base branch>`` in a pull request's workflow (``GITHUB_BASE_REF``), else None."""
    import os

    env = os.environ if env is None else env
    base = env.get("GITHUB_BASE_REF", "").strip()
    return f"origin/{base}" if base else None


def _check_baseline_word(baseline: str | Path | None) -> None:
    """``--baseline Production`` or ``prod`` names no run directory: say which keyword was meant, before any reading."""
    import difflib

    from calibgate.errors import ConfigError

    if baseline is None or str(baseline) in ("production", "none") or Path(baseline).exists():
        return
    close = difflib.get_close_matches(str(baseline).strip().casefold(), ["production", "none"], n=1, cutoff=0.5)
    if close:
        raise ConfigError(f"--baseline {str(baseline)!r} is neither a keyword nor a run directory",
                          fix=f"did you mean '{close[0]}'? (the keywords are lower-case: production, none)")


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
    from calibgate.errors import IntegrityError, RegistryError, StoreUnreadable
    from calibgate.registry.api import production_baseline

    try:
        found = production_baseline(repo, name, verify_store=verify_store)
    except (IntegrityError, StoreUnreadable) as exc:  # what cannot be verified is not trusted: an ERROR check
        return UntrustedBaseline(f"{name} (production)", exc.message)
    except RegistryError as exc:
        raise RegistryError(f"cannot read the production baseline from the git registry: {exc.message}",
                            fix=f"{exc.fix}; or compare with a run: --baseline runs/<id> "
                                "(--baseline none is only for a project with no model in production yet)") from None
    if found is None:
        raise RegistryError(f"no version of {name} is in production in the git registry at {Path(repo).resolve()} "
                            "(or its tags were not fetched)", fix=f"git fetch --tags; {FIRST_MODEL_FIX}")
    return found
