"""``calibgate ci``: the whole chain as the GitHub Action runs it.

``run_ci``: plan -> train (the plan's choice) -> evaluate -> export -> gate ->
report; its exit code is the gate's. The scheduled drift check is
:mod:`calibgate.pipeline.drift`.

Each call into another subsystem is one small adapter below (``_plan``,
``_train``...), so wiring a changed signature touches one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from calibgate.errors import ConfigError, DataError
from calibgate.github.comments import PostedComment
from calibgate.paths import atomic_write_text, check_file_target, make_dirs
from calibgate.pipeline.gate import UntrustedBaseline, default_policy_base, gate_run, production_for_gate
from calibgate.registry.policybase import compare_with_base
from calibgate.records.decision import GateDecision
from calibgate.report.inputs import CI_FILES as RECORD_FILES
from calibgate.runs.guard import check_outside_runs
from calibgate.settings import ProjectConfig, load_config

REPORT_FILE = "report.md"


@dataclass(frozen=True)
class CiResult:
    """What ``calibgate ci`` produced; ``exit_code`` is the gate's (0 promote, 1 block, 3 error)."""

    decision: GateDecision
    report: str
    out_dir: Path
    run_dir: Path | None
    posted: PostedComment | None = None

    @property
    def exit_code(self) -> int:
        return self.decision.exit_code


def run_ci(
    *,
    config: str | Path | None = None,
    policy: str | Path | None = None,
    out: str | Path = "calibgate-report",
    name: str | None = None,
    links: Mapping[str, str] | None = None,
    post: bool = False,
    repo: str | None = None,
    pr: int | None = None,
    client: Any = None,
    progress: bool = False,
    baseline: str = "production",
    policy_base: str | None = None,
) -> CiResult:
    """Run plan, train, evaluate, export, gate and report for the project at ``config``.

    Every record and ``report.md`` land in ``out`` (the Action uploads it as an
    artifact). With ``post``, the report is created or updated as a PR comment.
    The export includes int8, so latency and size checks compare like with
    like against a production baseline exported the same way. ``progress``:
    one stderr line per stage, and periodic lines in long ones.
    ``baseline``: ``"production"`` (the registry's, verified; none there is an
    error) or ``"none"`` (the first model, declared). ``policy_base``: the git
    revision whose policy the applied one must not be weaker than (default
    ``origin/$GITHUB_BASE_REF`` in a pull request; see :func:`~calibgate.pipeline.gate.gate_run`).
    """
    from calibgate.policy.loader import resolve_policy
    from calibgate.progress import line
    from calibgate.report.api import render_report

    check_outside_runs(out, what="--out")
    for file in (*RECORD_FILES.values(), REPORT_FILE):  # a link there was written through, after minutes of training
        check_file_target(Path(out) / file)
    restored = Path(out) / "baseline-run"  # removed and restored when production is re-evaluated, after training
    if restored.is_symlink() or (restored.exists() and not restored.is_dir()):
        raise ConfigError(f"{restored} is a symlink or a file, where ci restores the production run",
                          fix=f"remove {restored}, or pass another --out")
    cfg = load_config(config, required=True)
    applied = resolve_policy(policy, cfg)  # a bad policy fails here, before minutes of training
    policy_path = Path(applied.source)
    policy_base = policy_base if policy_base is not None else default_policy_base()
    if policy_base:
        compare_with_base(applied, policy_base, cfg, cfg.root)  # an unknown revision fails here too
    name = name or cfg.name
    if post and (not repo or pr is None):
        raise ConfigError("posting the report needs the repository and PR number", fix="pass --repo owner/name --pr N")
    if post and client is None:
        from calibgate.github import GitHubClient

        client = GitHubClient.from_env()  # a missing token is exit 2 now, not after minutes of training
    if baseline not in ("production", "none"):
        raise ConfigError(f"--baseline {baseline!r}: calibgate ci compares with 'production' or 'none'",
                          fix="use calibgate gate --baseline RUN_DIR to compare with a run directory")
    production = None
    if baseline == "production":  # before minutes of training: no readable production is an error, not a first model
        production = production_for_gate(cfg.root, cfg.name, verify_store=False)  # the gate verifies the stored artifact
    _check_data(cfg)  # before minutes of training: a missing or unreadable test set is found now, not after
    out_dir = Path(out)
    make_dirs(out_dir)

    line("ci: plan (signals on the calibration set)", enabled=progress)
    plan = _plan(cfg, policy_path, progress)
    _write(out_dir, "plan", plan)
    line(f"ci: train {plan.recommendation.strategy}", enabled=progress)
    run_dir = _train(cfg, plan, progress)
    line(f"ci: evaluate {run_dir}", enabled=progress)
    candidate_eval = _evaluate(cfg, run_dir)
    _write(out_dir, "candidate_eval", candidate_eval)
    line("ci: export fp32 + int8 ONNX, parity and latency", enabled=progress)
    export = _export(cfg, run_dir, threads=_timed_threads(production))
    _write(out_dir, "export", export)
    line("ci: baseline (the version in production)" if baseline != "none" else "ci: baseline none (first model)", enabled=progress)
    baseline_ref, baseline_dir, baseline_eval = _baseline(cfg, candidate_eval, out_dir, baseline)
    line("ci: gate", enabled=progress)
    decision = _gate(cfg, run_dir, policy_path, baseline_dir, policy_base)
    if baseline_ref is not None:
        decision = decision.model_copy(update={"baseline": baseline_ref})
    _write(out_dir, "decision", decision)
    _write(out_dir, "baseline_eval", baseline_eval)

    report = render_report(
        decision=decision,
        plan=plan,
        candidate_eval=candidate_eval,
        baseline_eval=baseline_eval,
        export=export,
        links=links,
        name=name,
    )
    atomic_write_text(out_dir / REPORT_FILE, report)
    posted = None
    if post:
        from calibgate.github import upsert_comment

        posted = upsert_comment(client, repo, pr, report)
    return CiResult(decision=decision, report=report, out_dir=out_dir, run_dir=run_dir, posted=posted)


# -- adapters to the steps ----------------------------------------------------------------------


def _plan(cfg: ProjectConfig, policy: Path, progress: bool = False):
    from calibgate.planner.api import plan

    return plan(config=cfg, policy=policy, progress=progress)


def _train(cfg: ProjectConfig, plan, progress: bool = False) -> Path:
    from calibgate.training.api import train

    return Path(train(config=cfg, plan=plan, progress=progress).run_dir)  # the plan is given: no planner needed


def _evaluate(cfg: ProjectConfig, run_dir: Path, *, base: bool = True, unseen_labels: bool = False):
    from calibgate.evaluation.api import evaluate

    return evaluate(model=run_dir, test=cfg.path(cfg.data.test), config=cfg, base=base, unseen_labels=unseen_labels)


def _export(cfg: ProjectConfig, run_dir: Path, *, threads: int | None = None):
    from calibgate.export.api import export

    return export(run_dir, test=cfg.path(cfg.data.test), quantize="int8", threads=threads)  # like with like vs int8


def _timed_threads(production) -> int | None:
    """The thread count production's latency was timed with, so the candidate is timed alike: a max_ratio of a p95
    on this runner's cores against one on another's is an ERROR, and blocked every PR from a runner of other size."""
    if production is None or isinstance(production, UntrustedBaseline) or production[2] is None:
        return None
    threads = {artifact.latency.threads for artifact in production[2].artifacts if artifact.latency is not None}
    return threads.pop() if len(threads) == 1 else None


def _baseline(cfg: ProjectConfig, candidate_eval, out_dir: Path, baseline: str):
    """(production ref, baseline for gate_run, baseline evaluation) for the gate.

    The gate pairs predictions row by row, so the baseline must be scored on
    the candidate's test set. When production was evaluated on another test
    set (the PR changed it), its artifact is fetched from the registry and
    re-evaluated here; a baseline that cannot be restored fails loudly rather
    than letting the candidate pass unpaired. A production version that fails
    verification is left to the gate, which records it as an ERROR check.
    """
    if baseline == "none":
        return None, "none", None
    found = production_for_gate(cfg.root, cfg.name, verify_store=False)  # gate_run verifies the stored artifact
    if isinstance(found, UntrustedBaseline):
        return None, "production", None
    ref, evaluation, _ = found
    if evaluation.test.sha256 == candidate_eval.test.sha256:
        return ref, "production", evaluation
    baseline_dir = out_dir / "baseline-run"
    if baseline_dir.exists():
        import shutil

        shutil.rmtree(baseline_dir)
    from calibgate.registry.api import fetch_version

    fetch_version(ref, baseline_dir, repo=cfg.root)
    # a candidate that adds a class: production scores its rows as errors (it cannot predict it), it is not refused
    evaluation = _evaluate(cfg, baseline_dir, base=False, unseen_labels=True)
    return ref, baseline_dir, evaluation


def _gate(cfg: ProjectConfig, run_dir: Path, policy: Path, baseline, policy_base: str | None) -> GateDecision:
    return gate_run(run_dir, baseline=baseline, policy=policy, repo=cfg.root, name=cfg.name, policy_base=policy_base or "")


def _check_data(cfg: ProjectConfig) -> None:
    """The calibration, training and test sets are there (restored with DVC if need be) and readable, with the test
    set's labels among the training set's: DataError (exit 2) now, and nothing trained or written."""
    from calibgate.data.jsonl import load_labeled
    from calibgate.data.versions import ensure_pulled

    paths = {role: cfg.path(getattr(cfg.data, role)) for role in ("calibration", "train", "test")}
    ensure_pulled(cfg.root, cfg.data.dvc_target, list(paths.values()))
    sets = {role: load_labeled(path) for role, path in paths.items()}
    unknown = sorted(set(sets["test"].label_names) - set(sets["train"].label_names))
    if unknown:
        raise DataError(f"{paths['test']}: label '{unknown[0]}' is not a label of the training set {paths['train']}",
                        fix="fix the test set's labels, or add examples of the label to the training data")


def _write(out_dir: Path, role: str, record: BaseModel | None) -> None:
    """The record, or no file: a record this run did not make (no baseline) must not stay behind from an earlier run,
    where post-report re-renders it beside this decision."""
    path = out_dir / RECORD_FILES[role]
    if record is not None:
        atomic_write_text(path, record.model_dump_json(indent=2) + "\n")
    elif path.is_file() and not path.is_symlink():
        path.unlink()


def records_json(result: CiResult) -> str:
    """One-line machine summary of a ci run (for ``calibgate ci --json``)."""
    return json.dumps(
        {
            "decision": result.decision.decision,
            "exit_code": result.exit_code,
            "out_dir": str(result.out_dir),
            "run_dir": None if result.run_dir is None else str(result.run_dir),
            "comment": None if result.posted is None else {"action": result.posted.action, "id": result.posted.id},
        }
    )

