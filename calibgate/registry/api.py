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

import hashlib
from dataclasses import dataclass
from pathlib import Path

from calibgate.errors import IntegrityError, RegistryError
from calibgate.paths import path_error, staging_dir
from calibgate.records.evaluation import EvaluationResult
from calibgate.records.export import ExportResult
from calibgate.records.plan import Plan
from calibgate.registry import store as _store
from calibgate.registry.gitrepo import GitRepo
from calibgate.registry.records import EVIDENCE_DIR, EVIDENCE_RUN_FILES, VersionRecord, evidence_path
from calibgate.registry.state import read_state
from calibgate.registry.common import (  # noqa: F401 - re-exported
    PRODUCTION, StageAssignment, StageEventInfo, VerifyResult, VersionDetail, VersionInfo, event_info, version_info,
    default_name, model_state, open_repo, resolve_ref, find_version,
)
from calibgate.registry.registration import register  # noqa: F401 - re-exported
from calibgate.registry.stages import deprecate, promote, rollback  # noqa: F401 - re-exported
from calibgate.runs import EVALUATION, EXPORT_RECORD, PLAN, file_name, parse_record
from calibgate.runs.guard import check_outside_runs

__all__ = [
    "register", "promote", "rollback", "deprecate", "list_versions", "show_version", "verify_version",
    "production_baseline", "fetch_version", "VersionInfo", "VersionDetail", "StageAssignment", "VerifyResult",
]


def list_versions(name: str | None = None, *, repo: str | Path | GitRepo | None = None) -> list[VersionInfo]:
    """Every registered version (of ``name``, or of all models), oldest first by semver."""
    git = open_repo(repo)
    if name is not None:
        name = default_name(name, git)  # a malformed name ('../x', 'router@v1.0.0') is refused, not 'no versions'
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
    record = _checked_record(git, v)
    files = _store.verify_stored(git.root, record.artifacts)
    check_manifest(f"{name}@{version}", record, _store.stored_manifest(git.root, record.artifacts))
    a = record.artifacts
    return VerifyResult(name=name, version=version, backend=a.backend, url=a.url, files=files, size_bytes=a.size_bytes)


def _checked_record(git: GitRepo, v) -> VersionRecord:
    """The tag's record of version ``v``, after checking the evidence commit holds the same record."""
    if v.record is None:
        raise RegistryError(f"{v.name}@{v.version} was not registered by calibgate (no record in its tag)",
                            fix="re-register it with calibgate")
    committed = git.show_file(v.commit, f"{EVIDENCE_DIR}/{v.name}/{v.version}/record.json")
    if committed is None or VersionRecord.model_validate_json(committed) != v.record:
        raise IntegrityError(f"{v.name}@{v.version}: the evidence commit's record.json differs from the tag's record",
                             fix="the tag was re-pointed or edited; restore it from the remote (git fetch --tags)")
    return v.record


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

    from calibgate.runs import load_run

    dest = Path(dest)
    if dest.exists() or dest.is_symlink():  # a dangling link is there too: rename would not replace it
        raise RegistryError(f"{dest} already exists" + (" (a symlink)" if dest.is_symlink() else ""),
                            fix="pass a new directory to --to")
    check_outside_runs(dest, what="--to")
    tmp = staging_dir(dest, "pull")
    try:
        _store.fetch_stored(git.root, v.record.artifacts, tmp, verified=True)
        check_manifest(ref, v.record, load_run(tmp))  # what landed on disk is the run the tag pins
        try:
            tmp.rename(dest)
        except OSError as exc:  # made meanwhile by another process, or a path through a file
            raise path_error(exc, dest, "restore into") from None
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
    repo: str | Path | GitRepo | None, name: str, *, stage: str = PRODUCTION, verify_store: bool = True
) -> tuple[str, EvaluationResult, ExportResult | None] | None:
    """(``name@version``, evaluation, export) of the version in ``stage``, verified; None when no version holds it.

    A baseline decides what the candidate must beat, so it is trusted only
    after :func:`version_evidence` verified it. No readable git registry
    raises :class:`RegistryError` (never "no production yet": declaring the
    first model is the caller's, ``--baseline none``).
    """
    git = open_repo(repo)
    model = read_state(git, name).get(name)
    if model is not None:
        model.refuse_if_deprecated()  # not "nothing in production": that would invite --baseline none
    _known_stage(git, model, stage)  # a typo ('prodution') read as 'nothing in production': first-model mode, open
    version = model.current(stage) if model else None
    if version is None:
        return None
    evidence = version_evidence(git, model.versions[version], verify_store=verify_store)
    return evidence.ref, evidence.evaluation, evidence.export


def _known_stage(git: GitRepo, model, stage: str) -> None:
    """``stage`` is one the project's policy declares or the registry has used; else RegistryError with the closest."""
    import difflib

    from calibgate.errors import CalibgateError
    from calibgate.policy.loader import resolve_policy
    from calibgate.registry.common import project_config

    known = set(model.stages()) if model is not None else set()
    try:
        known |= set(resolve_policy(None, project_config(git)).declared_stages())
    except CalibgateError:  # no readable policy here: the registry's own stages, and production, still count
        pass
    known.add(PRODUCTION)
    if not isinstance(stage, str) or stage not in known:
        close = difflib.get_close_matches(str(stage), sorted(known), n=1)
        raise RegistryError(f"stage {stage!r} is neither declared by the policy nor used in the registry"
                            + (f" (did you mean '{close[0]}'?)" if close else ""),
                            fix=f"use one of: {', '.join(sorted(known))}")


@dataclass(frozen=True)
class VersionEvidence:
    """A registered version's gate records, read from its evidence commit and verified against its record."""

    ref: str
    record: VersionRecord
    evaluation: EvaluationResult
    export: ExportResult | None
    plan: Plan | None


def version_evidence(git: GitRepo, v, *, verify_store: bool = True) -> VersionEvidence:
    """The evaluation, export and plan recorded for version ``v``, each checked before it is trusted.

    The evidence commit's ``record.json`` must equal the tag's record, each
    evidence file must hash to the sha256 the record lists for that file of
    the registered run, and (``verify_store``) every stored artifact must
    re-hash to its record. Any difference raises :class:`IntegrityError`.
    """
    record = _checked_record(git, v)
    ref = f"{v.name}@{v.version}"
    texts: dict[str, str | None] = {}
    for run_file in EVIDENCE_RUN_FILES:
        evidence_file = file_name(run_file)
        text = git.show_file(v.commit, evidence_path(v.name, v.version, run_file))
        expected = record.artifacts.files.get(run_file)
        if text is None and expected is not None:
            raise IntegrityError(f"{ref}: its evidence commit lacks {evidence_file}, which the registered run had",
                                 fix="the evidence commit was replaced; restore the tags from the remote (git fetch --tags --force)")
        if text is not None and hashlib.sha256(text.encode("utf-8")).hexdigest() != expected:
            got = hashlib.sha256(text.encode("utf-8")).hexdigest()
            raise IntegrityError(
                f"{ref}: the recorded {evidence_file} hashes to {got[:12]}..., the registered run's to "
                f"{(expected or 'nothing')[:12]}...: the evidence was tampered with",
                fix="restore the tags from the remote (git fetch --tags --force) and check who rewrote them",
            )
        texts[run_file] = text
    if texts[EVALUATION] is None:
        raise RegistryError(f"{ref} has no recorded evaluation", fix="register versions with calibgate, or pass --baseline runs/<id>")
    if verify_store:
        _store.verify_stored(git.root, record.artifacts)  # the artifact served is the one registered
    return VersionEvidence(
        ref=ref, record=record, evaluation=_parsed(ref, texts, EVALUATION, EvaluationResult, "evaluation"),
        export=_parsed(ref, texts, EXPORT_RECORD, ExportResult, "export record"),
        plan=_parsed(ref, texts, PLAN, Plan, "plan"),
    )


def _parsed(ref: str, texts: dict[str, str | None], run_file: str, model, what: str):
    """A verified evidence text as its record (the same parse step and errors as a run's own file), or None."""
    text = texts[run_file]
    if not text:
        return None
    return parse_record(text, model, source=f"{ref}:{file_name(run_file)}", what=f"recorded {what}",
                        fix="re-register the run with this calibgate version")
