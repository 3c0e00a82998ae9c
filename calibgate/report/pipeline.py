"""The whole chain as the GitHub Action runs it, and the scheduled drift check.

``run_ci``: plan -> train (the plan's choice) -> evaluate -> export -> gate ->
report, calling the facade in :mod:`calibgate.api`; its exit code is the gate's.
``drift``: a fresh production sample against the production model's training
data with the domain-shift signal; on drift, an issue with the evidence.

Each call into another subsystem is one small adapter below (``_plan``,
``_train``...), so wiring a changed facade signature touches one place.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from calibgate.errors import ConfigError
from calibgate.github.comments import PostedComment, marker
from calibgate.github.issues import PostedIssue
from calibgate.policy.decision import GateDecision
from calibgate.report.inputs import CI_FILES as RECORD_FILES
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
    baseline: str = "production",
) -> CiResult:
    """Run plan, train, evaluate, export, gate and report for the project at ``config``.

    Every record and ``report.md`` land in ``out`` (the Action uploads it as an
    artifact). With ``post``, the report is created or updated as a PR comment.
    ``baseline``: ``"production"`` (the registry's, verified; none there is an
    error) or ``"none"`` (the first model, declared).
    """
    from calibgate import api

    from calibgate.policy.loader import resolve_policy

    cfg = load_config(config, required=True)
    policy_path = Path(resolve_policy(policy, cfg).source)  # a bad policy fails here, before minutes of training
    name = name or cfg.name
    if post and (not repo or pr is None):
        raise ConfigError("posting the report needs the repository and PR number", fix="pass --repo owner/name --pr N")
    if baseline not in ("production", "none"):
        raise ConfigError(f"--baseline {baseline!r}: calibgate ci compares with 'production' or 'none'",
                          fix="use calibgate gate --baseline RUN_DIR to compare with a run directory")
    if baseline == "production":  # before minutes of training: no readable production is an error, not a first model
        from calibgate.policy.api import production_for_gate

        production_for_gate(cfg.root, cfg.name, verify_store=False)  # the gate verifies the stored artifact
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)

    plan = _plan(api, cfg, policy_path)
    _write(out_dir, "plan", plan)
    run_dir = _train(api, cfg, plan)
    candidate_eval = _evaluate(api, cfg, run_dir)
    _write(out_dir, "candidate_eval", candidate_eval)
    export = _export(api, cfg, run_dir)
    _write(out_dir, "export", export)
    baseline_ref, baseline_dir, baseline_eval = _baseline(api, cfg, candidate_eval, out_dir, baseline)
    decision = _gate(api, cfg, run_dir, policy_path, baseline_dir)
    if baseline_ref is not None:
        decision = decision.model_copy(update={"baseline": baseline_ref})
    _write(out_dir, "decision", decision)
    _write(out_dir, "baseline_eval", baseline_eval)

    report = api.render_report(
        decision=decision,
        plan=plan,
        candidate_eval=candidate_eval,
        baseline_eval=baseline_eval,
        export=export,
        links=links,
        name=name,
    )
    (out_dir / REPORT_FILE).write_text(report, encoding="utf-8")
    posted = None
    if post:
        from calibgate.github import GitHubClient, upsert_comment

        posted = upsert_comment(client or GitHubClient.from_env(), repo, pr, report)
    return CiResult(decision=decision, report=report, out_dir=out_dir, run_dir=run_dir, posted=posted)


# -- adapters to the facade ---------------------------------------------------------------------


def _plan(api, cfg: ProjectConfig, policy: Path):
    return api.plan(config=cfg, policy=policy)


def _train(api, cfg: ProjectConfig, plan) -> Path:
    return Path(api.train(config=cfg, plan=plan).run_dir)


def _evaluate(api, cfg: ProjectConfig, run_dir: Path):
    return api.evaluate(model=run_dir, test=cfg.path(cfg.data.test), config=cfg)


def _export(api, cfg: ProjectConfig, run_dir: Path):
    return api.export(run_dir, test=cfg.path(cfg.data.test))


def _baseline(api, cfg: ProjectConfig, candidate_eval, out_dir: Path, baseline: str):
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
    from calibgate.policy.api import UntrustedBaseline, production_for_gate

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
    api.fetch_version(ref, baseline_dir, repo=cfg.root)
    evaluation = api.evaluate(model=baseline_dir, test=cfg.path(cfg.data.test), config=cfg, base=False)
    return ref, baseline_dir, evaluation


def _gate(api, cfg: ProjectConfig, run_dir: Path, policy: Path, baseline) -> GateDecision:
    return api.gate_run(run_dir, baseline=baseline, policy=policy, repo=cfg.root, name=cfg.name)


def _write(out_dir: Path, role: str, record: BaseModel | None) -> None:
    if record is not None:
        (out_dir / RECORD_FILES[role]).write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")


# -- drift -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftResult:
    """The shift measurement, whether it counts as drift, the issue text and what was posted."""

    drifted: bool
    auc: float | None
    threshold: float
    summary: str
    title: str
    body: str
    issue: PostedIssue | None = None


def drift(
    *,
    config: str | Path | None = None,
    production: str | Path | None = None,
    reference: str | Path | None = None,
    threshold: float | None = None,
    repo: str | None = None,
    dry_run: bool = False,
    max_reference: int = 2000,
    seed: int = 0,
    links: Mapping[str, str] | None = None,
    client: Any = None,
) -> DriftResult:
    """Compare a production sample with the training data (domain-classifier AUC) and open an issue on drift.

    ``threshold`` defaults to the planner's ``max_shift_auc`` (0.75). Without
    ``dry_run`` and on drift, ``repo`` gets an issue (or a comment on the open one).
    """
    from calibgate.data.jsonl import load_unlabeled
    from calibgate.planner.thresholds import PlannerThresholds
    from calibgate.policy.loader import advisory_policy_path, resolve_policy

    cfg = load_config(config)
    named = advisory_policy_path(None, cfg)
    planner = resolve_policy(named, cfg).planner if named is not None else PlannerThresholds()
    production_path = Path(production) if production is not None else cfg.path(cfg.data.production)
    reference_path = Path(reference) if reference is not None else cfg.path(cfg.data.train)
    if production_path is None:
        raise ConfigError("no production sample configured", fix="pass --production prod.jsonl or set data.production")
    threshold = planner.max_shift_auc if threshold is None else threshold
    if not 0.5 <= threshold <= 1:
        raise ConfigError(
            f"drift threshold {threshold} is outside 0.5..1", fix="pass a domain-classifier AUC such as 0.75"
        )
    if not dry_run and not repo:
        raise ConfigError("opening a drift issue needs the repository", fix="pass --repo owner/name, or --dry-run")

    prod_texts = list(load_unlabeled(production_path, min_rows=10).texts)
    ref_texts = list(load_unlabeled(reference_path, min_rows=10).texts)
    if len(ref_texts) > max_reference:
        ref_texts = random.Random(seed).sample(ref_texts, max_reference)
    shift = _measure(cfg, ref_texts, prod_texts, seed=seed)
    auc = getattr(shift, "auc", None)
    drifted = auc is not None and auc > threshold
    title, body = _drift_issue(
        cfg, shift, threshold, production_path, reference_path, len(ref_texts), len(prod_texts), links or {}
    )
    verdict = "drift" if drifted else "no drift"
    summary = (
        (
            f"{verdict}: domain-classifier AUC {auc:.3f} {'>' if drifted else '<='} {threshold:.2f} "
            f"({len(prod_texts)} production vs {len(ref_texts)} training texts)"
        )
        if auc is not None
        else f"no drift measured: {getattr(shift, 'reading', 'the shift signal returned no AUC')}"
    )
    issue = None
    if drifted and not dry_run:
        from calibgate.github import GitHubClient
        from calibgate.github.issues import open_or_comment_issue

        issue = open_or_comment_issue(
            client or GitHubClient.from_env(),
            repo,
            title=title,
            body=body,
            mark=marker(cfg.name, kind="calibgate-drift"),
            labels=("calibgate-drift",),
        )
    return DriftResult(
        drifted=drifted, auc=auc, threshold=threshold, summary=summary, title=title, body=body, issue=issue
    )


def _measure(cfg: ProjectConfig, ref_texts: list[str], prod_texts: list[str], *, seed: int):
    """Embed both samples with the project's frozen encoder and run the domain-shift signal."""
    from calibgate.embeddings.encoder import embed_texts
    from calibgate.signals.shift import measure_shift

    model = cfg.model_path()
    reference = embed_texts(ref_texts, model=model).vectors
    current = embed_texts(prod_texts, model=model).vectors
    return measure_shift(reference, current, seed=seed)


def _drift_issue(cfg, shift, threshold, production, reference, n_ref, n_prod, links) -> tuple[str, str]:
    from calibgate.report.markdown import code, inline

    auc = getattr(shift, "auc", None)
    title = (
        f"calibgate: production data drifted from {cfg.name}'s training data (AUC {auc:.2f})"
        if auc is not None
        else f"calibgate: drift check for {cfg.name}"
    )
    lines = [
        f"The domain classifier tells production texts from training texts with AUC **{auc:.3f}**"
        f" (threshold {threshold:.2f}; 0.5 means indistinguishable)."
        if auc is not None
        else "No AUC was measured.",
        "",
        f"- production sample: {code(production)} ({n_prod:,} texts)",
        f"- training data: {code(reference)} ({n_ref:,} texts compared)",
    ]
    ci = getattr(shift, "auc_ci", None)
    if ci is not None:
        lines.append(f"- AUC 95% interval: [{ci.low:.3f}, {ci.high:.3f}]")
    for attr, label in (("p_value", "permutation p-value"), ("mmd", "MMD")):
        value = getattr(shift, attr, None)
        if value is not None:
            lines.append(f"- {label}: {value:.4g}")
    shifted = list(getattr(shift, "shifted_classes", []) or [])
    if shifted:
        lines.append("- classes production resembles less or more: " + ", ".join(code(c) for c in shifted[:30]))
    for item in list(getattr(shift, "evidence", []) or [])[:20]:
        lines.append(f"- {inline(item, limit=300)}")
    if reading := getattr(shift, "reading", None):
        lines += ["", inline(reading, limit=500)]
    lines += [
        "",
        "**Next:** label a fresh production sample, add it to the data set (`dvc add datasets`), and open a PR:",
        "the gate retrains with the plan's strategy and compares against production.",
    ]
    if links:
        lines += ["", " · ".join(f"[{inline(k)}](<{v}>)" for k, v in links.items() if v.startswith("https://"))]
    return title, "\n".join(lines) + "\n"


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


run_drift = drift
