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

from pathlib import Path

from calibgate.errors import IntegrityError, RegistryError
from calibgate.evaluation.schema import EvaluationResult
from calibgate.export.schema import ExportResult
from calibgate.registry import store as _store
from calibgate.registry.gitrepo import GitRepo
from calibgate.registry.records import EVIDENCE_DIR, VersionRecord
from calibgate.registry.state import read_state
from calibgate.registry.common import (  # noqa: F401 - re-exported
    PRODUCTION, StageAssignment, StageEventInfo, VerifyResult, VersionDetail, VersionInfo, event_info, version_info,
    model_state, open_repo, resolve_ref, find_version,
)
from calibgate.registry.registration import register  # noqa: F401 - re-exported
from calibgate.registry.stages import deprecate, promote, rollback  # noqa: F401 - re-exported

__all__ = [
    "register", "promote", "rollback", "deprecate", "list_versions", "show_version", "verify_version",
    "production_baseline", "fetch_version", "VersionInfo", "VersionDetail", "StageAssignment", "VerifyResult",
]


def list_versions(name: str | None = None, *, repo: str | Path | GitRepo | None = None) -> list[VersionInfo]:
    """Every registered version (of ``name``, or of all models), oldest first by semver."""
    git = open_repo(repo)
    return [version_info(model, v) for _, model in sorted(read_state(git, name).items()) for v in model.sorted_versions()]


def show_version(ref: str, *, name: str | None = None, repo: str | Path | GitRepo | None = None) -> VersionDetail:
    """One version's record, the stages it holds and the stage history of its model."""
    git = open_repo(repo)
    name, version = resolve_ref(ref, name, git)
    model = model_state(git, name)
    v = find_version(model, version)
    return VersionDetail(**version_info(model, v).model_dump(), history=[event_info(e) for e in model.history()])


def verify_version(ref: str, *, name: str | None = None, repo: str | Path | GitRepo | None = None) -> VerifyResult:
    """Re-hash the stored artifacts of ``ref`` against its record; :class:`IntegrityError` (exit 2) on any difference.

    Also checks the evidence commit's ``record.json`` equals the tag's record.
    """
    git = open_repo(repo)
    name, version = resolve_ref(ref, name, git)
    v = find_version(model_state(git, name), version)
    if v.record is None:
        raise RegistryError(f"{name}@{version} was not registered by calibgate (no record in its tag)", fix="re-register it with calibgate")
    committed = git.show_file(v.commit, f"{EVIDENCE_DIR}/{name}/{version}/record.json")
    if committed is None or VersionRecord.model_validate_json(committed) != v.record:
        raise IntegrityError(f"{name}@{version}: the evidence commit's record.json differs from the tag's record",
                             fix="the tag was re-pointed or edited; restore it from the remote (git fetch --tags)")
    files = _store.verify_stored(git.root, v.record.artifacts)
    check_manifest(f"{name}@{version}", v.record, _store.stored_manifest(git.root, v.record.artifacts))
    a = v.record.artifacts
    return VerifyResult(name=name, version=version, backend=a.backend, url=a.url, files=files, size_bytes=a.size_bytes)


def fetch_version(ref: str, dest: str | Path, *, name: str | None = None, repo: str | Path | GitRepo | None = None) -> Path:
    """Restore a version's run directory from the store into ``dest`` (verified first)."""
    git = open_repo(repo)
    name, version = resolve_ref(ref, name, git)
    v = find_version(model_state(git, name), version)
    if v.record is None:
        raise RegistryError(f"{name}@{version} has no calibgate record", fix="re-register it with calibgate")
    ref = f"{name}@{version}"
    _store.verify_stored(git.root, v.record.artifacts)  # every path and object name checked, every object re-hashed
    check_manifest(ref, v.record, _store.stored_manifest(git.root, v.record.artifacts))  # before anything is written
    import shutil
    import tempfile

    from calibgate.runs import load_run

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.pull-", dir=dest.parent))
    try:
        _store.fetch_stored(git.root, v.record.artifacts, tmp, verified=True)
        check_manifest(ref, v.record, load_run(tmp))  # what landed on disk is the run the tag pins
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def check_manifest(ref: str, record: VersionRecord, manifest) -> None:
    """The run manifest must be the one the version tag pins: its canonical digest, its file list and its labels."""
    from calibgate.runs import MANIFEST, manifest_digest

    if record.manifest_sha256 is None:
        raise IntegrityError(f"{ref}: the version record has no manifest digest (registered by an older calibgate)",
                             fix="re-register the run with this calibgate so the tag pins its manifest")
    got = manifest_digest(manifest)
    if got != record.manifest_sha256:
        raise IntegrityError(
            f"{ref}: the run manifest's digest {got[:12]}... differs from the tag's {record.manifest_sha256[:12]}..."
            " (label_names, pooling, strategy or file list changed)",
            fix="restore the run from the registry's remote or re-register it; never edit calibgate-run.json",
        )
    listed = {k: v for k, v in record.artifacts.files.items() if k != MANIFEST}
    if listed != manifest.files or manifest.label_names != record.lineage.label_names:
        raise IntegrityError(f"{ref}: the run manifest and the version record disagree on its files or labels",
                             fix="re-register the version from its run")


def production_baseline(
    repo: str | Path | GitRepo | None, name: str, *, stage: str = PRODUCTION
) -> tuple[str, EvaluationResult, ExportResult | None] | None:
    """(``name@version``, evaluation, export) of the version in ``stage``, or None (no repo, no such stage yet).

    Read from the version's evidence commit, so a CI job needs only the tags
    (``git fetch --tags``), not the artifacts.
    """
    try:
        git = open_repo(repo)
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

