"""The git-tag model registry (gto-compatible): register, promote, roll back, deprecate, verify.

* A version is an annotated tag ``name@vX.Y.Z`` on an *evidence commit*: the
  registering commit plus ``.calibgate-registry/<name>/<version>/`` holding
  ``record.json`` (:class:`VersionRecord`), ``evaluation.json`` and, when
  present, ``export.json`` and ``plan.json``. One commit per version keeps
  gto's one-version-per-commit rule whatever the user's branch does; the
  work tree and index are not touched.
* A stage assignment is ``name#stage#N`` on that commit, its message a
  :class:`StageRecord` with the approvals; ``N`` is gto's per-model counter.
* Deprecating a version is gto's deregistration ``name@vX.Y.Z!``.
* The run directory goes to the project's DVC remote (or a ``--store``
  directory), content-addressed; the record keeps every file's sha256.

When the repo has a remote (``origin`` by default) every operation fetches its
tags first and pushes the new tag with ``git push --atomic``; when two clones
race, both compute the same tag name and the remote keeps the first. The
loser's local tag is removed and it gets :class:`RegistryError` telling it to
fetch and retry. Every refusal (tampered run, missing approvals, unknown
version) happens before anything is tagged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from calibgate.errors import IntegrityError, ModelError, RegistryError
from calibgate.evaluation.schema import EvaluationResult
from calibgate.export.schema import ExportResult
from calibgate.policy.decision import GateDecision
from calibgate.registry import store as _store
from calibgate.registry.gitrepo import GitRepo, PushRejected
from calibgate.registry.records import (
    EVIDENCE_DIR, DeprecationRecord, ExportSummary, Lineage, StageRecord, VersionRecord, format_message,
)
from calibgate.registry.state import ModelState, StageEvent, read_state
from calibgate.registry.tags import Tag, bump, format_tag, is_valid_name, is_valid_version, next_counter, parse_tag

__all__ = [
    "register", "promote", "rollback", "deprecate", "list_versions", "show_version", "verify_version",
    "production_baseline", "fetch_version", "VersionInfo", "VersionDetail", "StageAssignment", "VerifyResult",
]

PRODUCTION = "production"


class VersionInfo(BaseModel):
    """One version as ``registry list`` shows it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    tag: str
    commit: str
    created_at: str
    stages: list[str] = Field(default_factory=list, description="stages this version holds now")
    deprecated: bool = False
    run_id: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    record: VersionRecord | None = Field(None, description="None for versions registered by plain gto")


class StageAssignment(BaseModel):
    """The result of promote / rollback: the tag created and its record."""

    model_config = ConfigDict(extra="forbid")

    tag: str
    pushed_to: str | None
    record: StageRecord


class StageEventInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str
    version: str | None
    action: str
    counter: int
    tag: str
    created_at: str
    approved_by: list[str] = Field(default_factory=list)
    reason: str = ""


class VersionDetail(VersionInfo):
    """``registry show``: a version with its stage history."""

    history: list[StageEventInfo] = Field(default_factory=list)


class VerifyResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    backend: str
    url: str
    files: int
    size_bytes: int
    ok: bool = True


# --- helpers ---------------------------------------------------------------------------------------

def _open(repo: str | Path | GitRepo | None) -> GitRepo:
    return repo if isinstance(repo, GitRepo) else GitRepo(repo or ".")


def _sync(git: GitRepo, remote: str | None, push: bool | None, fetch: bool) -> str | None:
    """The remote to push to (None: local only), after fetching its tags when asked."""
    remote = remote or git.default_remote()
    if remote is None or push is False:
        return None
    if fetch:
        git.fetch_tags(remote)
    return remote


def _publish(git: GitRepo, remote: str | None, tag: str) -> None:
    """Push ``tag``; on any failure delete it locally, so a clone never holds a tag its remote lacks."""
    if remote is None:
        return
    try:
        git.push_atomic(remote, [tag])
    except PushRejected as exc:
        git.delete_tag(tag)
        raise RegistryError(
            f"push of {tag} to '{remote}' was rejected ({exc.message}): another clone changed the registry first",
            fix=f"git fetch --tags {remote}, check the registry (calibgate registry list) and retry",
        ) from None
    except Exception:
        git.delete_tag(tag)
        raise


def _resolve(ref: str, name: str | None, git: GitRepo) -> tuple[str, str]:
    """'name@v1.2.0' or 'v1.2.0' (``name``, else calibgate.yaml's) -> (name, version)."""
    if "@" in ref:
        try:
            tag = parse_tag(ref)
        except ValueError:
            raise RegistryError(f"'{ref}' is not a version reference", fix="write name@vX.Y.Z, e.g. model@v1.0.0") from None
        if tag.kind != "version" or tag.counter is not None:
            raise RegistryError(f"'{ref}' is not a version reference", fix="write name@vX.Y.Z, e.g. model@v1.0.0")
        return tag.name, tag.version  # type: ignore[return-value]
    if is_valid_version(ref):
        return _default_name(name, git), ref
    raise RegistryError(f"'{ref}' is not a version reference", fix="write name@vX.Y.Z, e.g. model@v1.0.0")


def _model(git: GitRepo, name: str) -> ModelState:
    return read_state(git, name).get(name) or ModelState(name)


def _version(model: ModelState, version: str):
    found = model.versions.get(version)
    if found is None:
        known = ", ".join(v.version for v in model.sorted_versions()) or "none"
        raise RegistryError(f"{model.name}@{version} is not registered (versions: {known})", fix="calibgate registry list")
    return found


def _config(git: GitRepo):
    """calibgate.yaml of the repo (found from its root), or defaults rooted there."""
    from calibgate.settings import ProjectConfig, find_config, load_config

    found = find_config(git.root)
    return load_config(found) if found else ProjectConfig(root=git.root)


def _relpath(git: GitRepo, path: str | Path) -> str:
    """``path`` relative to the repo root when inside it (records in git must not hold machine paths)."""
    try:
        return Path(path).resolve().relative_to(git.root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _default_name(name: str | None, git: GitRepo) -> str:
    return name or _config(git).name


def _info(model: ModelState, v) -> VersionInfo:
    return VersionInfo(
        name=model.name, version=v.version, tag=v.tag, commit=v.commit, created_at=v.created_at,
        stages=model.stages_of(v.version), deprecated=v.deprecated, run_id=v.record.run_id if v.record else None,
        metrics=v.record.metrics if v.record else {}, record=v.record,
    )


def _event_info(e: StageEvent) -> StageEventInfo:
    return StageEventInfo(
        stage=e.stage, version=e.version, action=e.action, counter=e.counter, tag=e.tag, created_at=e.created_at,
        approved_by=e.record.approved_by if e.record else [], reason=e.record.reason if e.record else "",
    )


def _read_json(path: Path, model, what: str):
    try:
        return model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except Exception as exc:  # noqa: BLE001 - any parse or validation failure is a bad run
        raise ModelError(f"{path}: malformed {what} ({str(exc).splitlines()[0]})", fix="re-run the step that writes it") from None


# --- register --------------------------------------------------------------------------------------

def register(
    run_dir: str | Path,
    *,
    name: str | None = None,
    version: str | None = None,
    bump_part: Literal["major", "minor", "patch"] = "minor",
    repo: str | Path | GitRepo | None = None,
    remote: str | None = None,
    dvc_remote: str | None = None,
    store: str | None = None,
    policy: str | Path | None = None,
    message: str = "",
    push: bool | None = None,
    fetch: bool = True,
) -> VersionInfo:
    """Register a run directory as ``name@version`` with its lineage and evidence.

    The run needs ``calibgate-run.json`` (verified: every file re-hashed; a
    tampered run raises :class:`IntegrityError`) and ``evaluation.json``
    (metrics; the gate's baseline once promoted); ``export/export.json`` and
    ``plan.json`` are recorded when present. The run directory is pushed to
    the DVC remote (``dvc_remote`` or the default) or to ``store`` and
    re-verified there before the tag is made. ``version`` defaults to the
    latest version bumped by ``bump_part`` (v1.0.0 first). ``policy``: policy
    file whose sha256 is recorded (default: calibgate.yaml's, when it exists).
    ``push``: None pushes when the repo has a remote; ``remote``: git remote.
    """
    from calibgate.runs import load_run

    git = _open(repo)
    name = _default_name(name, git)
    if not is_valid_name(name):
        raise RegistryError(f"model name '{name}' is not valid for gto", fix="use letters, digits, '-', '_', '/' (e.g. ticket-router)")
    run_dir = Path(run_dir)
    manifest = load_run(run_dir)  # ModelError / IntegrityError before anything else
    evaluation = _read_json(run_dir / "evaluation.json", EvaluationResult, "evaluation record") \
        if (run_dir / "evaluation.json").exists() else None
    if evaluation is None:
        raise ModelError(f"{run_dir}: no evaluation.json", fix=f"run 'calibgate evaluate --model {run_dir}' before registering")
    export = _read_json(run_dir / "export" / "export.json", ExportResult, "export record") \
        if (run_dir / "export" / "export.json").exists() else None
    plan_text = (run_dir / "plan.json").read_text(encoding="utf-8") if (run_dir / "plan.json").exists() else None
    plan_summary = _plan_summary(plan_text)

    parent = git.head()
    target_remote = _sync(git, remote, push, fetch)
    model = _model(git, name)
    if version is None:
        version = bump(model.latest(), bump_part)
    elif not is_valid_version(version):
        raise RegistryError(f"version '{version}' is not 'v' + semver", fix="e.g. --version v1.2.0")
    if version in model.versions:
        raise RegistryError(f"{name}@{version} is already registered", fix="choose another --version or let calibgate bump it")
    policy_path, policy_sha = _policy_identity(policy, git)
    data_md5 = manifest.data.get("dvc_md5") or _project_data_md5(git)

    stored = _store.push_run(git.root, run_dir, manifest.files, remote=dvc_remote, store=store)
    _store.verify_stored(git.root, stored)  # the copy in the store is what we record, or nothing is registered

    record = VersionRecord(
        name=name, version=version, run_id=manifest.run_id, registered_by=git.user(), message=message,
        lineage=Lineage(
            git_commit=parent, run_git_commit=manifest.git_commit, data_dvc_md5=data_md5,
            data=manifest.data, policy=policy_path, policy_sha256=policy_sha, strategy=manifest.strategy,
            lora_rank=manifest.lora_rank, base_model=manifest.base_model, label_names=manifest.label_names,
            train_config=manifest.train_config, plan_summary=plan_summary,
        ),
        metrics=evaluation.metrics,
        test={"source": evaluation.test.source, "sha256": evaluation.test.sha256, "n": evaluation.test.n},
        exports=[ExportSummary(path=a.path, precision=a.precision, size_bytes=a.size_bytes, sha256=a.sha256,
                               p95_ms=a.latency.p95_ms if a.latency else None) for a in (export.artifacts if export else [])],
        artifacts=stored,
    )
    evidence = f"{EVIDENCE_DIR}/{name}/{version}"
    files = {f"{evidence}/record.json": record.model_dump_json(indent=2) + "\n",
             f"{evidence}/evaluation.json": (run_dir / "evaluation.json").read_text(encoding="utf-8")}
    if export is not None:
        files[f"{evidence}/export.json"] = (run_dir / "export" / "export.json").read_text(encoding="utf-8")
    if plan_text is not None:
        files[f"{evidence}/plan.json"] = plan_text
    headline = f"Register {name} {version} (run {manifest.run_id})"
    commit = git.evidence_commit(parent, files, headline + "\n\nEvidence for the registry tag; not on any branch.\n")
    tag = format_tag(Tag("version", name, version=version))
    git.create_tag(tag, commit, format_message(headline, record))
    _publish(git, target_remote, tag)
    model = _model(git, name)
    return _info(model, model.versions[version])


def _policy_identity(policy: str | Path | None, git: GitRepo) -> tuple[str | None, str | None]:
    from calibgate.policy.api import load_policy

    if policy is None:
        config = _config(git)
        path = config.path(config.policy)
        if path is None or not path.exists():
            return None, None
        return _relpath(git, path), load_policy(path).sha256
    return _relpath(git, policy), load_policy(policy).sha256


def _project_data_md5(git: GitRepo) -> str | None:
    """The DVC md5 of the project's data target (calibgate.yaml data.dvc_target) when the run did not record one."""
    from calibgate.data.versions import tracked_md5

    target = _config(git).data.dvc_target
    try:
        return tracked_md5(git.root, target) if target else None
    except Exception:  # noqa: BLE001 - lineage is best effort here; the run's own record is preferred
        return None


def _plan_summary(plan_text: str | None) -> dict | None:
    if plan_text is None:
        return None
    try:
        plan = json.loads(plan_text)
        rec, sig = plan.get("recommendation", {}), plan.get("signals", {})
        return {
            "strategy": rec.get("strategy"), "lora_rank": rec.get("lora_rank"), "modifiers": rec.get("modifiers", []),
            "rationale": rec.get("rationale", []),
            "label_noise": sig.get("label_noise", {}).get("estimated_rate"),
            "shift_auc": sig.get("domain_shift", {}).get("auc"),
            "min_count": sig.get("imbalance", {}).get("min_count"),
            "dataset_sha256": plan.get("dataset", {}).get("sha256"),
        }
    except (json.JSONDecodeError, AttributeError):
        raise ModelError("plan.json in the run is not valid JSON", fix="re-run 'calibgate plan --json'") from None


# --- stages ----------------------------------------------------------------------------------------

def promote(
    ref: str,
    *,
    stage: str = PRODUCTION,
    approved_by: list[str] | tuple[str, ...] = (),
    policy: str | Path | None = None,
    reason: str = "",
    gate: GateDecision | str | Path | None = None,
    name: str | None = None,
    repo: str | Path | GitRepo | None = None,
    remote: str | None = None,
    push: bool | None = None,
    fetch: bool = True,
) -> StageAssignment:
    """Assign version ``ref`` (``name@vX.Y.Z``) to ``stage``, with the approvals the policy requires.

    ``gate``: a :class:`GateDecision` (or its JSON file from ``calibgate gate
    --json``) for this version's run; it must say ``promote`` under the same
    policy (sha256). Required when the stage's policy entry sets
    ``require_gate``; recorded in the stage tag either way.

    The policy (``policy`` or calibgate.yaml's) says per stage how many
    distinct approvers are needed and who may approve; too few or unlisted
    approvers raise :class:`RegistryError` and nothing is tagged. Deprecated
    versions and the version already holding the stage are refused.
    ``fetch=False`` skips updating tags from the remote first (offline use;
    a stale clone then loses any race at push time).
    """
    from calibgate.policy.api import load_policy

    git = _open(repo)
    name, version = _resolve(ref, name, git)
    if not is_valid_name(stage):
        raise RegistryError(f"stage '{stage}' is not a valid gto stage name", fix="letters, digits, '-', '_', '/'")
    loaded = load_policy(policy or _config_policy(git))
    rule = loaded.approval_for(stage)
    approvers = sorted(set(a.strip() for a in approved_by if a.strip()))
    if rule.approvers:
        unknown = [a for a in approvers if a not in rule.approvers]
        if unknown:
            raise RegistryError(
                f"{', '.join(unknown)} may not approve promotion to {stage} (allowed: {', '.join(rule.approvers)})",
                fix=f"get approval from the approvers listed under approvals.{stage} in {loaded.source}",
            )
    if len(approvers) < rule.required:
        raise RegistryError(
            f"promotion of {name}@{version} to {stage} needs {rule.required} approval(s), got {len(approvers)}"
            + (f" ({', '.join(approvers)})" if approvers else ""),
            fix="pass --approved-by NAME once per approver" + (f" (allowed: {', '.join(rule.approvers)})" if rule.approvers else ""),
        )
    target_remote = _sync(git, remote, push, fetch)
    model = _model(git, name)
    v = _version(model, version)
    if v.deprecated:
        raise RegistryError(f"{name}@{version} is deprecated and cannot be promoted", fix="promote a current version")
    current = model.current(stage)
    gate_summary = _check_gate(gate, rule.require_gate, loaded, v, stage, model)
    if current == version:
        raise RegistryError(f"{name}@{version} is already in {stage}", fix="nothing to do")
    record = StageRecord(
        name=name, version=version, stage=stage, counter=0, action="promote", previous=current, approved_by=approvers,
        required_approvals=rule.required, policy=_relpath(git, loaded.source), policy_sha256=loaded.sha256, reason=reason, actor=git.user(),
        gate=gate_summary,
    )
    return _assign(git, model, v.commit, record, target_remote)


def _check_gate(gate, required: bool, policy, v, stage: str, model: ModelState) -> dict | None:
    """The presented gate decision, checked: it passed, for this version's run, under this policy,
    against the version that holds the stage now (a decision against an older production is stale)."""
    from calibgate.policy.api import read_record

    if gate is None:
        if required:
            raise RegistryError(
                f"promotion to {stage} needs a passing gate decision (approvals.{stage}.require_gate in {policy.source})",
                fix=f"calibgate gate --candidate runs/<id> --json > gate.json, then pass --gate gate.json",
            )
        return None
    if not isinstance(gate, GateDecision):
        gate = read_record(gate, GateDecision, what="gate decision", fix="pass the JSON written by 'calibgate gate --json'")
    run_id = v.record.run_id if v.record else None
    if gate.decision != "promote":
        raise RegistryError(f"the gate decision says '{gate.decision}': {gate.summary}", fix="fix the candidate; a blocked gate cannot be promoted")
    if run_id is not None and gate.candidate != run_id:
        raise RegistryError(f"the gate decision is for run '{gate.candidate}', {v.name}@{v.version} is run '{run_id}'",
                            fix=f"gate run {run_id}: calibgate gate --candidate runs/{run_id} --json")
    if gate.policy_sha256 != policy.sha256:
        raise RegistryError(f"the gate decision used another policy (sha256 {gate.policy_sha256[:12]}...) than {policy.source}",
                            fix="re-run the gate with the current policy")
    holder = model.current(stage)
    if holder is not None:
        held = model.versions[holder]
        accepted = {f"{model.name}@{holder}"} | ({held.record.run_id} if held.record else set())
        if gate.baseline not in accepted:
            raise RegistryError(
                f"the gate decision compared against {gate.baseline or 'no baseline'}, but {model.name}@{holder} is in {stage} now",
                fix="re-run the gate against the current production (calibgate gate --baseline production --json)",
            )
    return {"decision": gate.decision, "baseline": gate.baseline, "policy_sha256": gate.policy_sha256, "summary": gate.summary}


def rollback(
    name: str | None = None,
    *,
    stage: str = PRODUCTION,
    reason: str = "",
    approved_by: list[str] | tuple[str, ...] = (),
    repo: str | Path | GitRepo | None = None,
    remote: str | None = None,
    push: bool | None = None,
    fetch: bool = True,
) -> StageAssignment:
    """Re-assign ``stage`` to the version that held it before the current one (a new tag; history kept).

    Approvals are recorded, not required: the target already passed the
    stage's approvals when it was first promoted. Raises :class:`RegistryError`
    when there is no earlier version or it has been deprecated.
    """
    git = _open(repo)
    name = _default_name(name, git)
    target_remote = _sync(git, remote, push, fetch)
    model = _model(git, name)
    stack = model.stack(stage)
    if len(stack) < 2:
        raise RegistryError(
            f"{name} has no earlier {stage} version to roll back to (history: {', '.join(stack) or 'empty'})",
            fix=f"promote a version explicitly: calibgate registry promote {name}@vX.Y.Z --stage {stage}",
        )
    current, target = stack[-1], stack[-2]
    v = _version(model, target)
    if v.deprecated:
        raise RegistryError(f"the previous {stage} version {name}@{target} is deprecated", fix="promote a current version explicitly")
    record = StageRecord(
        name=name, version=target, stage=stage, counter=0, action="rollback", previous=current,
        approved_by=sorted(set(approved_by)), reason=reason, actor=git.user(),
    )
    return _assign(git, model, v.commit, record, target_remote)


def _assign(git: GitRepo, model: ModelState, commit: str, record: StageRecord, remote: str | None) -> StageAssignment:
    counter = next_counter((t.name for t in git.tags()), model.name)
    record = record.model_copy(update={"counter": counter})
    tag = format_tag(Tag("stage", model.name, stage=record.stage, counter=counter))
    verb = "Promote" if record.action == "promote" else "Roll back"
    headline = f"{verb} {model.name} {record.version} to {record.stage}"
    git.create_tag(tag, commit, format_message(headline, record))
    _publish(git, remote, tag)
    return StageAssignment(tag=tag, pushed_to=remote, record=record)


def _config_policy(git: GitRepo) -> Path:
    config = _config(git)
    return config.path(config.policy)  # type: ignore[return-value]


def deprecate(
    ref: str,
    *,
    reason: str = "",
    name: str | None = None,
    repo: str | Path | GitRepo | None = None,
    remote: str | None = None,
    push: bool | None = None,
    fetch: bool = True,
) -> DeprecationRecord:
    """Mark a version deprecated with gto's deregistration tag ``name@vX.Y.Z!``.

    A version that holds a stage is refused (roll back or promote another first).
    """
    git = _open(repo)
    name, version = _resolve(ref, name, git)
    target_remote = _sync(git, remote, push, fetch)
    model = _model(git, name)
    v = _version(model, version)
    if v.deprecated:
        raise RegistryError(f"{name}@{version} is already deprecated", fix="nothing to do")
    holding = model.stages_of(version)
    if holding:
        raise RegistryError(
            f"{name}@{version} is in {', '.join(holding)}", fix=f"roll back or promote another version out of {holding[0]} first",
        )
    record = DeprecationRecord(name=name, version=version, reason=reason, actor=git.user())
    tag = format_tag(Tag("deregister", name, version=version))
    git.create_tag(tag, v.commit, format_message(f"Deprecate {name} {version}", record))
    _publish(git, target_remote, tag)
    return record


# --- reading ---------------------------------------------------------------------------------------

def list_versions(name: str | None = None, *, repo: str | Path | GitRepo | None = None) -> list[VersionInfo]:
    """Every registered version (of ``name``, or of all models), oldest first by semver."""
    git = _open(repo)
    return [_info(model, v) for _, model in sorted(read_state(git, name).items()) for v in model.sorted_versions()]


def show_version(ref: str, *, name: str | None = None, repo: str | Path | GitRepo | None = None) -> VersionDetail:
    """One version's record, the stages it holds and the stage history of its model."""
    git = _open(repo)
    name, version = _resolve(ref, name, git)
    model = _model(git, name)
    v = _version(model, version)
    return VersionDetail(**_info(model, v).model_dump(), history=[_event_info(e) for e in model.history()])


def verify_version(ref: str, *, name: str | None = None, repo: str | Path | GitRepo | None = None) -> VerifyResult:
    """Re-hash the stored artifacts of ``ref`` against its record; :class:`IntegrityError` (exit 2) on any difference.

    Also checks the evidence commit's ``record.json`` equals the tag's record.
    """
    git = _open(repo)
    name, version = _resolve(ref, name, git)
    v = _version(_model(git, name), version)
    if v.record is None:
        raise RegistryError(f"{name}@{version} was not registered by calibgate (no record in its tag)", fix="re-register it with calibgate")
    committed = git.show_file(v.commit, f"{EVIDENCE_DIR}/{name}/{version}/record.json")
    if committed is None or VersionRecord.model_validate_json(committed) != v.record:
        raise IntegrityError(f"{name}@{version}: the evidence commit's record.json differs from the tag's record",
                             fix="the tag was re-pointed or edited; restore it from the remote (git fetch --tags)")
    files = _store.verify_stored(git.root, v.record.artifacts)
    a = v.record.artifacts
    return VerifyResult(name=name, version=version, backend=a.backend, url=a.url, files=files, size_bytes=a.size_bytes)


def fetch_version(ref: str, dest: str | Path, *, name: str | None = None, repo: str | Path | GitRepo | None = None) -> Path:
    """Restore a version's run directory from the store into ``dest`` (verified first)."""
    git = _open(repo)
    name, version = _resolve(ref, name, git)
    v = _version(_model(git, name), version)
    if v.record is None:
        raise RegistryError(f"{name}@{version} has no calibgate record", fix="re-register it with calibgate")
    return _store.fetch_stored(git.root, v.record.artifacts, Path(dest))


def production_baseline(
    repo: str | Path | GitRepo | None, name: str, *, stage: str = PRODUCTION
) -> tuple[str, EvaluationResult, ExportResult | None] | None:
    """(``name@version``, evaluation, export) of the version in ``stage``, or None (no repo, no such stage yet).

    Read from the version's evidence commit, so a CI job needs only the tags
    (``git fetch --tags``), not the artifacts.
    """
    try:
        git = _open(repo)
    except RegistryError:
        return None
    model = read_state(git, name).get(name)
    version = model.current(stage) if model else None
    if version is None:
        return None
    v = model.versions[version]
    base = f"{EVIDENCE_DIR}/{name}/{version}"
    text = git.show_file(v.commit, f"{base}/evaluation.json")
    if text is None:
        raise RegistryError(f"{name}@{version} in {stage} has no recorded evaluation", fix="register versions with calibgate, or pass --baseline runs/<id>")
    evaluation = EvaluationResult.model_validate_json(text)
    export_text = git.show_file(v.commit, f"{base}/export.json")
    export = ExportResult.model_validate_json(export_text) if export_text else None
    return f"{name}@{version}", evaluation, export
