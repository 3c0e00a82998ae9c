"""Registering a run directory as a version: verify, store, record lineage and evidence, tag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from calibgate.errors import ModelError, RegistryError
from calibgate.registry import store as _store
from calibgate.registry.store import StoredArtifacts
from calibgate.registry.gitrepo import GitRepo
from calibgate.registry.records import (
    EVIDENCE_DIR, EVIDENCE_RUN_FILES, ExportSummary, Lineage, VersionRecord, evidence_path, format_message,
)
from calibgate.registry.tags import Tag, bump, check_creatable, format_tag, is_valid_name, is_valid_version
from calibgate.registry.common import (
    VersionInfo, check_tag_free, project_config, default_name, version_info, model_state, open_repo, publish_tag, repo_relpath, sync_remote,
    registry_locked,
)
from calibgate.runs import PLAN, first_problem, load_run, manifest_digest, read_evaluation, read_export


@registry_locked  # read tags, pick the version, tag: one step per working copy
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
    git = open_repo(repo)
    name = default_name(name, git)
    if not is_valid_name(name):
        raise RegistryError(f"model name '{name}' is not valid for gto", fix="use letters, digits, '-', '_', '/' (e.g. ticket-router)")
    run_dir = Path(run_dir)
    manifest = load_run(run_dir)  # ModelError / IntegrityError before anything else
    evaluation = read_evaluation(run_dir, manifest=manifest)  # ModelError: never evaluated (or malformed)
    export = read_export(run_dir, manifest=manifest)
    # the gate records kept in the evidence commit, byte for byte: the registry re-hashes them against the manifest
    evidence_texts = {rel: (run_dir / rel).read_text(encoding="utf-8") for rel in EVIDENCE_RUN_FILES
                      if rel in manifest.files}
    plan_text = evidence_texts.get(PLAN)
    plan_summary = _plan_summary(plan_text)

    parent = git.head()
    target_remote = sync_remote(git, remote, push, fetch)
    model = model_state(git, name)
    model.refuse_if_deprecated()
    if version is None:
        version = bump(model.latest(), bump_part)
    elif not is_valid_version(version):
        raise RegistryError(f"version '{version}' is not 'v' + semver", fix="e.g. --version v1.2.0")
    if version in model.versions:
        raise RegistryError(f"{name}@{version} is already registered", fix="choose another --version or let calibgate bump it")
    digest = manifest_digest(manifest)
    # under any name: two versions of one artifact could each hold stages (promoting 'the new one' would ship the
    # old), and under two names the run could serve as its own shadow, and its lineage would split in two
    from calibgate.registry.state import read_state

    models = {**read_state(git), name: model}
    same = [(other, v) for other, state in sorted(models.items()) for v in state.sorted_versions()
            if v.record is not None and v.record.manifest_sha256 == digest]
    if same:
        other, v = same[0]
        raise RegistryError(f"run {manifest.run_id} is already registered as {other}@{v.version} (the same run "
                            "manifest)", fix=f"promote {other}@{v.version}, or register a retrained run")
    policy_path, policy_sha = _policy_identity(policy, git)
    data_md5 = manifest.data.get("dvc_md5") or _project_data_md5(git)

    tag = format_tag(Tag("version", name, version=version))
    check_creatable(tag)
    check_tag_free(git, tag, instead=", or pass --version with another version")

    def version_record(stored: StoredArtifacts) -> VersionRecord:
        return VersionRecord(
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
            artifacts=stored, manifest_sha256=digest,
        )

    try:  # the whole record validates before a byte is stored: a refusal leaves no orphan objects in the remote
        version_record(StoredArtifacts(backend="dir", url="", files=manifest.files))
    except ValidationError as exc:
        raise ModelError(f"{run_dir}: the run cannot be recorded ({first_problem(exc)})",
                         fix="retrain the run with this calibgate ('calibgate train'); never edit a manifest by hand") from None
    stored = _store.push_run(git.root, run_dir, manifest.files, remote=dvc_remote, store=store)
    _store.verify_stored(git.root, stored)  # the copy in the store is what we record, or nothing is registered
    record = version_record(stored)
    files = {f"{EVIDENCE_DIR}/{name}/{version}/record.json": record.model_dump_json(indent=2) + "\n"}
    files.update({evidence_path(name, version, rel): text for rel, text in evidence_texts.items()})
    headline = f"Register {name} {version} (run {manifest.run_id})"
    commit = git.evidence_commit(parent, files, headline + "\n\nEvidence for the registry tag; not on any branch.\n")
    git.create_tag(tag, commit, format_message(headline, record))
    publish_tag(git, target_remote, tag)
    model = model_state(git, name)
    return version_info(model, model.versions[version])


def _policy_identity(policy: str | Path | None, git: GitRepo) -> tuple[str | None, str | None]:
    from calibgate.policy.loader import resolve_policy

    loaded = resolve_policy(policy, project_config(git))  # the same errors as every other command
    return repo_relpath(git, loaded.source), loaded.sha256


def _project_data_md5(git: GitRepo) -> str | None:
    """The DVC md5 of the project's data target (calibgate.yaml data.dvc_target) when the run did not record one."""
    from calibgate.data.versions import tracked_md5

    target = project_config(git).data.dvc_target
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
    except (ValueError, AttributeError, RecursionError):
        raise ModelError(f"{PLAN} in the run is not valid JSON", fix="re-run 'calibgate plan --json'") from None

