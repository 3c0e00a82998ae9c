"""The public Python API: one function per CLI command, each returning a typed result.

This module is the facade the CLI and users call. Its functions carry the
real signatures and return types (for editors and type checkers), and stay
cheap to import: each imports its implementation on first call, so importing
``calibgate.api`` loads no torch and no subsystem. The implementation each one
calls is named in its body; ``tests/test_api_facade.py`` checks that the
signatures agree.

    >>> from calibgate import api
    >>> plan = api.plan(calibration="labeled.jsonl", target_size=4000)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from pathlib import Path
    from typing import Any, Literal

    from calibgate.bench.regret import BenchConfig
    from calibgate.data.jsonl import LabeledSet, UnlabeledSet
    from calibgate.drift.api import SuggestResult
    from calibgate.drift.retrain import RetrainResult
    from calibgate.export.serving import Precision
    from calibgate.pipeline.ci import CiResult
    from calibgate.pipeline.drift import DriftResult
    from calibgate.planner.priors import Priors
    from calibgate.policy.loader import PolicyProblem
    from calibgate.policy.schema import Policy
    from calibgate.records.decision import CheckResult, GateDecision
    from calibgate.records.evaluation import EvaluationResult
    from calibgate.records.export import ExportResult
    from calibgate.records.monitor import MonitorReport
    from calibgate.records.plan import Plan
    from calibgate.records.thresholds import PlannerThresholds
    from calibgate.registry.common import StageAssignment, VerifyResult, VersionDetail, VersionInfo
    from calibgate.registry.gitrepo import GitRepo
    from calibgate.registry.records import DeprecationRecord
    from calibgate.serving.app import ServeLimits, ServerPlan
    from calibgate.settings import ProjectConfig
    from calibgate.training.api import TrainResult

__all__ = [
    "plan", "train", "evaluate", "export", "predict", "check_policy", "load_policy", "gate", "gate_run", "register",
    "promote", "rollback", "deprecate", "list_versions", "show_version", "verify_version", "fetch_version",
    "production_baseline", "render_report", "run_ci", "drift", "suggest_labels", "retrain", "build_server", "monitor",
    "bench_regret",
]


def plan(
    *, config: str | Path | ProjectConfig | None = None, calibration: str | Path | LabeledSet | None = None,
    production: str | Path | UnlabeledSet | None = None, target_size: int | None = None, model: str | None = None,
    policy: str | Path | None = None, thresholds: PlannerThresholds | None = None, folds: int = 5,
    seed: int | None = None, cache: bool = True, progress: bool = False, fast: bool = False, priors: Priors | None = None,
) -> Plan:
    """Measure the calibration set's signals and recommend the cheapest adaptation that will do."""
    from calibgate.planner.api import plan as _plan

    return _plan(
        config=config, calibration=calibration, production=production, target_size=target_size, model=model,
        policy=policy, thresholds=thresholds, folds=folds, seed=seed, cache=cache, progress=progress, fast=fast,
        priors=priors,
    )


def train(
    *, config: str | Path | ProjectConfig | None = None, strategy: str | None = None, lora_rank: int | None = None,
    epochs: int | None = None, plan: str | Path | Plan | None = None, train_path: str | Path | None = None,
    model: str | None = None, runs_dir: str | Path | None = None, seed: int | None = None,
    batch_size: int | None = None, modifiers: Iterable[str] | None = None, run_id: str | None = None,
    progress: bool = False, reason: str | None = None,
) -> TrainResult:
    """Train per ``strategy`` or ``plan`` into a new run directory; without a plan, plan first (recorded in the run).

    Training sits below the planner, so the planner is passed in here (:func:`calibgate.training.api.train`).
    """
    from calibgate.training.api import train as _train

    planner: Callable[..., Plan] | None
    try:
        from calibgate.planner.api import plan as _plan

        planner = _plan
    except ImportError:  # a build without the planner's dependencies: training says what to pass instead
        planner = None

    return _train(
        config=config, strategy=strategy, lora_rank=lora_rank, epochs=epochs, plan=plan, train_path=train_path,
        model=model, runs_dir=runs_dir, seed=seed, batch_size=batch_size, modifiers=modifiers, run_id=run_id,
        progress=progress, reason=reason, planner=planner,
    )


def evaluate(
    *, model: str | Path, test: str | Path | None = None, slices: Sequence[str | Path | tuple[str, str | Path]] = (),
    metrics: Sequence[str | Path] = (), config: str | Path | ProjectConfig | None = None, batch_size: int = 64,
    bootstrap: int = 1000, seed: int = 0, base: bool = True, write: bool = True, unseen_labels: bool = False,
) -> EvaluationResult:
    """Evaluate the run directory ``model`` on ``test`` (default: the config's ``data.test``); ``unseen_labels``: a
    test label the model lacks counts as an error instead of refusing the test set."""
    from calibgate.evaluation.api import evaluate as _evaluate

    return _evaluate(
        model=model, test=test, slices=slices, metrics=metrics, config=config, batch_size=batch_size,
        bootstrap=bootstrap, seed=seed, base=base, write=write, unseen_labels=unseen_labels,
    )


def export(
    model: str | Path, *, quantize: str | None = None, test: str | Path | None = None,
    parity_texts: Sequence[str] | None = None, exporter: str = "dynamo", tolerance: float = 0.0001,
    latency_runs: int = 200, compare_torch: bool = False, threads: int | None = None,
) -> ExportResult:
    """Export run ``model`` to ONNX, check it against torch, optionally quantise to int8, time it."""
    from calibgate.export.api import export as _export

    return _export(
        model, quantize=quantize, test=test, parity_texts=parity_texts, exporter=exporter, tolerance=tolerance,
        latency_runs=latency_runs, compare_torch=compare_torch, threads=threads,
    )


def predict(
    model: str | Path, texts: Sequence[str], *, batch_size: int = 32, precision: Precision = "fp32",
    top_k: int | None = None, threads: int | None = None,
) -> list[dict]:
    """Predict labels for ``texts`` from the ONNX export of run ``model`` (no torch, no transformers)."""
    from calibgate.export.serving import predict as _predict

    return _predict(model, texts, batch_size=batch_size, precision=precision, top_k=top_k, threads=threads)


def check_policy(paths: list[str | Path] | str | Path, *, warnings: bool = False) -> list[PolicyProblem]:
    """Validate policy files for editors and pre-commit; returns every problem found (empty: all valid). ``warnings``
    adds problems of severity "warning" (e.g. a metric name no built-in evaluation writes)."""
    from calibgate.policy.api import check_policy as _check_policy

    return _check_policy(paths, warnings=warnings)


def load_policy(path: str | Path) -> Policy:
    """Load and validate one policy file; raise :class:`PolicyError` (exit 2) naming file:line of the first problem."""
    from calibgate.policy.loader import load_policy as _load_policy

    return _load_policy(path)


def gate(
    policy: Policy, candidate: EvaluationResult, *, candidate_export: ExportResult | None = None,
    plan: Plan | None = None, baseline: EvaluationResult | None = None, baseline_export: ExportResult | None = None,
    candidate_id: str | None = None, baseline_id: str | None = None, baseline_problem: str | None = None,
    extra_checks: Sequence[CheckResult] = (),
) -> GateDecision:
    """Run every check the policy enables and decide promote / block / error."""
    from calibgate.policy.api import gate as _gate

    return _gate(
        policy, candidate, candidate_export=candidate_export, plan=plan, baseline=baseline,
        baseline_export=baseline_export, candidate_id=candidate_id, baseline_id=baseline_id,
        baseline_problem=baseline_problem, extra_checks=extra_checks,
    )


def gate_run(
    candidate: str | Path, *, baseline: str | Path | None = "production", policy: str | Path | Policy | None = None,
    plan: str | Path | None = None, repo: str | Path | None = None, name: str | None = None,
    policy_base: str | None = None,
) -> GateDecision:
    """Gate a run directory: the loader around :func:`calibgate.policy.api.gate`."""
    from calibgate.pipeline.gate import gate_run as _gate_run

    return _gate_run(candidate, baseline=baseline, policy=policy, plan=plan, repo=repo, name=name, policy_base=policy_base)


def register(
    run_dir: str | Path, *, name: str | None = None, version: str | None = None,
    bump_part: Literal['major', 'minor', 'patch'] = "minor", repo: str | Path | GitRepo | None = None,
    remote: str | None = None, dvc_remote: str | None = None, store: str | None = None,
    policy: str | Path | None = None, message: str = "", push: bool | None = None, fetch: bool = True,
) -> VersionInfo:
    """Register a run directory as ``name@version`` with its lineage and evidence."""
    from calibgate.registry.api import register as _register

    return _register(
        run_dir, name=name, version=version, bump_part=bump_part, repo=repo, remote=remote, dvc_remote=dvc_remote,
        store=store, policy=policy, message=message, push=push, fetch=fetch,
    )


def promote(
    ref: str, *, stage: str = "production", approved_by: list[str] | tuple[str, ...] = (),
    policy: str | Path | None = None, reason: str = "", gate: GateDecision | str | Path | None = None,
    evidence: list[str | Path] | tuple[str | Path, ...] = (), override_gate: bool = False, name: str | None = None,
    repo: str | Path | GitRepo | None = None, remote: str | None = None, push: bool | None = None, fetch: bool = True,
) -> StageAssignment:
    """Assign version ``ref`` (``name@vX.Y.Z``) to ``stage``, with the approvals and passing gate the policy asks;
    each ``evidence`` report is re-measured from its own log before its figures count."""
    from calibgate.registry.api import promote as _promote

    rederive = None
    if evidence:
        from calibgate.serving.monitor import check_against_log as rederive
    return _promote(
        ref, stage=stage, approved_by=approved_by, policy=policy, reason=reason, gate=gate, evidence=evidence,
        override_gate=override_gate, name=name, repo=repo, remote=remote, push=push, fetch=fetch, rederive=rederive,
    )


def rollback(
    name: str | None = None, *, stage: str = "production", reason: str = "",
    approved_by: list[str] | tuple[str, ...] = (), repo: str | Path | GitRepo | None = None,
    remote: str | None = None, push: bool | None = None, fetch: bool = True,
) -> StageAssignment:
    """Re-assign ``stage`` to the version that held it before the current one (a new tag; history kept)."""
    from calibgate.registry.api import rollback as _rollback

    return _rollback(
        name, stage=stage, reason=reason, approved_by=approved_by, repo=repo, remote=remote, push=push, fetch=fetch,
    )


def deprecate(
    ref: str, *, reason: str = "", name: str | None = None, repo: str | Path | GitRepo | None = None,
    remote: str | None = None, push: bool | None = None, fetch: bool = True,
) -> DeprecationRecord:
    """Mark a version deprecated with gto's deregistration tag ``name@vX.Y.Z!``."""
    from calibgate.registry.api import deprecate as _deprecate

    return _deprecate(ref, reason=reason, name=name, repo=repo, remote=remote, push=push, fetch=fetch)


def list_versions(name: str | None = None, *, repo: str | Path | GitRepo | None = None) -> list[VersionInfo]:
    """Every registered version (of ``name``, or of all models), oldest first by semver."""
    from calibgate.registry.api import list_versions as _list_versions

    return _list_versions(name, repo=repo)


def show_version(ref: str, *, name: str | None = None, repo: str | Path | GitRepo | None = None) -> VersionDetail:
    """One version's record, the stages it holds and the stage history of its model."""
    from calibgate.registry.api import show_version as _show_version

    return _show_version(ref, name=name, repo=repo)


def verify_version(ref: str, *, name: str | None = None, repo: str | Path | GitRepo | None = None) -> VerifyResult:
    """Re-hash the stored artifacts of ``ref`` against its record; :class:`IntegrityError` (exit 2) on a difference."""
    from calibgate.registry.api import verify_version as _verify_version

    return _verify_version(ref, name=name, repo=repo)


def fetch_version(
    ref: str, dest: str | Path, *, name: str | None = None, repo: str | Path | GitRepo | None = None,
) -> Path:
    """Restore a version's run directory from the store into ``dest`` (verified first)."""
    from calibgate.registry.api import fetch_version as _fetch_version

    return _fetch_version(ref, dest, name=name, repo=repo)


def production_baseline(
    repo: str | Path | GitRepo | None, name: str, *, stage: str = "production", verify_store: bool = True,
) -> tuple[str, EvaluationResult, ExportResult | None] | None:
    """(``name@version``, evaluation, export) of the version in ``stage``, verified; None when no version holds it."""
    from calibgate.registry.api import production_baseline as _production_baseline

    return _production_baseline(repo, name, stage=stage, verify_store=verify_store)


def render_report(
    *, decision: GateDecision | Mapping[str, Any], plan: Plan | Mapping[str, Any] | None = None,
    candidate_eval: EvaluationResult | Mapping[str, Any] | None = None,
    baseline_eval: EvaluationResult | Mapping[str, Any] | None = None,
    export: ExportResult | Mapping[str, Any] | None = None, links: Mapping[str, str] | None = None,
    max_chars: int = 65000, name: str = "model",
) -> str:
    """The PR report: decision first, then signals and plan, metrics, per-class changes, latency, charts, suspects."""
    from calibgate.report.api import render_report as _render_report

    return _render_report(
        decision=decision, plan=plan, candidate_eval=candidate_eval, baseline_eval=baseline_eval, export=export,
        links=links, max_chars=max_chars, name=name,
    )


def run_ci(
    *, config: str | Path | None = None, policy: str | Path | None = None, out: str | Path = "calibgate-report",
    name: str | None = None, links: Mapping[str, str] | None = None, post: bool = False, repo: str | None = None,
    pr: int | None = None, client: Any = None, progress: bool = False, baseline: str = "production",
    policy_base: str | None = None,
) -> CiResult:
    """Run plan, train, evaluate, export, gate and report for the project at ``config``."""
    from calibgate.pipeline.ci import run_ci as _run_ci

    return _run_ci(
        config=config, policy=policy, out=out, name=name, links=links, post=post, repo=repo, pr=pr, client=client,
        progress=progress, baseline=baseline, policy_base=policy_base,
    )


def drift(
    *, config: str | Path | None = None, production: str | Path | None = None, reference: str | Path | None = None,
    threshold: float | None = None, policy: str | Path | None = None, model: str | Path | None = None,
    repo: str | None = None, dry_run: bool = False, seed: int = 0, out: str | Path | None = None,
    links: Mapping[str, str] | None = None, client: Any = None,
) -> DriftResult:
    """Measure drift of a production sample from the production version's training data; open an issue on drift."""
    from calibgate.pipeline.drift import drift as _drift

    return _drift(
        config=config, production=production, reference=reference, threshold=threshold, policy=policy, model=model,
        repo=repo, dry_run=dry_run, seed=seed, out=out, links=links, client=client,
    )


def suggest_labels(
    *, pool: str | Path | None = None, budget: int = 50, config: str | Path | None = None,
    policy: str | Path | None = None, model: str | Path | None = None, reference: str | Path | None = None,
    out: str | Path | None = None, seed: int = 0, repo: str | None = None, comment: bool = False, client: Any = None,
) -> SuggestResult:
    """Pick ``budget`` texts of ``pool`` (default ``data.production``): uncertain, unlike the training data, diverse."""
    from calibgate.drift.api import suggest_labels as _suggest_labels

    return _suggest_labels(
        pool=pool, budget=budget, config=config, policy=policy, model=model, reference=reference, out=out, seed=seed,
        repo=repo, comment=comment, client=client,
    )


def retrain(
    *, config: str | Path | None = None, policy: str | Path | None = None, repo: str | None = None,
    base: str = "main", drift: str | Path | None = None, dvc_remote: str | None = None,
    allow_new_labels: bool = False, dry_run: bool = False, client: Any = None,
) -> RetrainResult:
    """Merge ``data.incoming`` into ``data.train``, record it with DVC, re-plan, open (or update) the retraining PR."""
    from calibgate.drift.retrain import retrain as _retrain

    return _retrain(
        config=config, policy=policy, repo=repo, base=base, drift=drift, dvc_remote=dvc_remote,
        allow_new_labels=allow_new_labels, dry_run=dry_run, client=client,
    )


def build_server(
    ref: str, *, shadow: str | None = None, canary: str | None = None, share: float = 0.0, log: str | None = None,
    policy: str | None = None, precision: str = "fp32", limits: ServeLimits | None = None, repo: str | None = None,
) -> ServerPlan:
    """Load and verify every model (``name@vX.Y.Z`` from the registry, or a run directory), then build the app.

    ``limits``: None keeps :class:`calibgate.serving.app.ServeLimits`' defaults.
    """
    from calibgate.serving.app import build_server as _build_server

    options = {} if limits is None else {"limits": limits}
    return _build_server(
        ref, shadow=shadow, canary=canary, share=share, log=log, policy=policy, precision=precision, repo=repo,
        **options,
    )


def monitor(
    log: str | Path, *, policy: str | Path | None = None, evaluation: str | Path | None = None,
    repo: str | Path | None = None,
) -> MonitorReport:
    """Read a serving prediction log and judge it against the policy's ``monitor:`` thresholds and the evaluations."""
    from calibgate.serving.monitor import monitor_log as _monitor_log

    return _monitor_log(log, policy=policy, evaluation=evaluation, repo=repo)


def bench_regret(
    datasets: list[Path], *, config: BenchConfig | None = None, output: Path | None = None,
    command: str = "calibgate bench regret", write_priors: Path | None = None, log: Callable[[str], None] = print,
) -> dict:
    """Run the protocol on each data set directory; write markdown + raw JSON when ``output`` is given, and the
    planner priors fitted on all of them to ``write_priors``."""
    from calibgate.bench.regret import bench_regret as _bench_regret

    return _bench_regret(datasets, config=config, output=output, command=command, write_priors=write_priors, log=log)


def _checked(function):
    """``function`` with its arguments checked by name first (:func:`calibgate._arguments.check`, imported on the
    first call: importing this module stays free of pydantic and the rest)."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from calibgate._arguments import check

        check(function, args, kwargs)
        return function(*args, **kwargs)

    return wrapper


for _name in __all__:
    globals()[_name] = _checked(globals()[_name])
del _name
