"""The run manifest ``calibgate-run.json``: the sha256 of every file in the run, sealed by its own digest.

:func:`load_run` re-hashes and refuses a tampered run; the registry records
the same hashes and the manifest digest in the version tag.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from calibgate.errors import IntegrityError, ModelError
from calibgate.paths import PICKLE_SUFFIXES, atomic_write_text, check_relative, replace_together, special_file
from calibgate.records.strategies import TrainableName
from calibgate.runs.content import check_run_content
from calibgate.runs.layout import MANIFEST, is_run_id
from calibgate.runs.parsing import parse_record

RUN_SCHEMA_VERSION = 1

Strategy = TrainableName
# what training records about its data (calibgate.training.api), by key
_DATA_TYPES: dict[str, type] = {
    "source": str, "sha256": str, "rows_sha256": str, "dvc_target": str, "dvc_md5": str, "dvc_state": str, "n": int, "n_classes": int,
}


class HeadSpec(BaseModel):
    """How pooled encoder outputs become logits."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["linear", "knn"]
    k: int | None = Field(default=None, ge=1, description="neighbours voted, for kind=knn")
    weighting: Literal["uniform", "similarity"] | None = None


class RunManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = RUN_SCHEMA_VERSION
    run_id: str
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    strategy: Strategy
    lora_rank: int | None = Field(None, ge=1)
    label_names: list[str] = Field(min_length=2)
    base_model: str = Field(description="name or path of the base encoder")
    model_type: str
    pooling: Literal["mean", "last"]
    normalize: bool
    max_length: int = Field(ge=1, le=1_000_000)
    head: HeadSpec
    modifiers: list[str] = Field(default_factory=list)
    train_config: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict, description="dvc_md5, sha256 and size of the training data")
    git_commit: str | None = None
    device: str | None = None
    train_seconds: float | None = None
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256")
    manifest_sha256: str | None = Field(
        None, description="sha256 of this manifest's canonical JSON without this field (manifest_digest): a hand edit"
        " of label_names, pooling or the file list is refused; the registry tag records the same digest")

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != RUN_SCHEMA_VERSION:
            raise ValueError(f"this calibgate reads run manifests of schema_version {RUN_SCHEMA_VERSION}")
        return value

    @field_validator("data")
    @classmethod
    def _data_types(cls, value: dict[str, Any]) -> dict[str, Any]:
        """The keys training writes keep their types: the registry copies them into lineage (a list md5 broke it late)."""
        for key, wanted in _DATA_TYPES.items():
            item = value.get(key)
            if item is None:
                continue
            if isinstance(item, bool) or not isinstance(item, wanted):
                raise ValueError(f"data.{key} must be {'a string' if wanted is str else 'an integer'}, not {type(item).__name__}")
        return value

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str) -> str:
        if not is_run_id(value):
            raise ValueError("a run id is letters, digits, '.', '_' and '-', without '..' or a separator")
        return value

    @field_validator("label_names")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        if any(not name for name in value) or len(set(value)) != len(value):
            raise ValueError("label names must be distinct and non-empty")
        return value


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def manifest_digest(manifest: RunManifest) -> str:
    """sha256 of the canonical manifest (sorted keys, compact JSON): every file's sha256 and every field that
    decides behaviour (label_names, pooling, strategy, head...). The registry records it in the version tag."""
    canonical = json.dumps(manifest.model_dump(mode="json", exclude={"manifest_sha256"}), sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def run_files(root: Path) -> list[str]:
    """POSIX relative paths of every file under ``root`` except the manifest, without following any symlink.

    A symlink anywhere in the run raises :class:`IntegrityError`: a run holds
    its own bytes, and nothing outside it is ever read or copied to a store.
    """
    out: list[str] = []
    for current, dirs, files in os.walk(root, followlinks=False):
        for name in sorted(dirs + files):
            path = Path(current) / name
            if path.is_symlink():
                raise IntegrityError(
                    f"{root}: {path.relative_to(root).as_posix()} is a symlink (runs hold their own files; links are never followed)",
                    fix="replace the link with the real file and retrain, or restore the run from the registry",
                )
        for name in files:
            rel = (Path(current) / name).relative_to(root).as_posix()
            if kind := special_file(Path(current) / name):  # a FIFO would hang every hash of the run
                raise IntegrityError(f"{root}: {rel} is {kind}; runs hold regular files only",
                                     fix="remove it, or restore the run from the registry")
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` except the manifest, keyed by POSIX relative path (no symlinks)."""
    return {rel: sha256_file(root / rel) for rel in run_files(root)}


def write_manifest(root: Path, manifest: RunManifest) -> RunManifest:
    """Hash every file under ``root`` into ``manifest.files`` and write it last (atomically)."""
    manifest = manifest.model_copy(update={"files": hash_tree(root)})
    manifest = manifest.model_copy(update={"manifest_sha256": manifest_digest(manifest)})
    atomic_write_text(root / MANIFEST, manifest.model_dump_json(indent=2) + "\n")
    return manifest


def read_manifest(root: str | Path, *, option: str = "--run") -> RunManifest:
    """The run's manifest, parsed (not verified: :func:`load_run` re-hashes); ``option`` names the run in the fix."""
    root = Path(root)
    path = root / MANIFEST
    if path.is_symlink():
        raise IntegrityError(f"{path} is a symlink", fix="restore the run from the registry or retrain")
    if not path.exists():
        raise ModelError(
            f"{root}: not a calibgate run (no {MANIFEST})",
            fix=f"pass {option} a directory written by 'calibgate train' (e.g. runs/<id>)",
        )
    try:
        return parse_manifest(path.read_bytes(), source=str(path))
    except OSError as exc:
        raise ModelError(f"{path}: cannot be read ({exc.strerror})", fix="check the run directory's permissions") from None


def parse_manifest(data: bytes, *, source: str) -> RunManifest:
    """A manifest from its bytes; :class:`ModelError` for anything malformed, or a file path that leaves the run."""
    manifest = parse_record(data, RunManifest, source=source, what="run manifest",
                            fix="retrain, or restore the run from the registry")
    if manifest.manifest_sha256 is None:
        raise IntegrityError(
            f"{source}: the manifest has no manifest_sha256 (written by an older calibgate, or stripped)",
            fix="retrain, or restore the run from the registry; calibgate reads only sealed manifests",
        )
    if manifest.manifest_sha256 != manifest_digest(manifest):
        raise IntegrityError(
            f"{source}: the manifest was edited after it was written (its digest does not match its content:"
            " label_names, pooling, strategy or file list changed)",
            fix="restore the run from the registry (calibgate registry pull) or retrain; never edit calibgate-run.json",
        )
    for rel, digest in manifest.files.items():
        check_relative(rel, what=f"{source}: file")
        if not _is_sha256(digest):
            raise IntegrityError(f"{source}: {rel} has no valid sha256 ({digest[:20]!r})", fix="retrain, or restore the run from the registry")
    return manifest


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def verify_run(root: str | Path, manifest: RunManifest | None = None) -> RunManifest:
    """Re-hash the run's files; raise :class:`IntegrityError` on any missing, changed or extra file, any symlink,
    any pickle-format file (a calibgate run is safetensors and JSON only), and any file whose bytes are not what a
    run holds (:mod:`calibgate.runs.content`)."""
    root = Path(root)
    manifest = manifest or read_manifest(root)
    actual = hash_tree(root)  # refuses symlinks before any byte is read
    pickled = sorted(rel for rel in set(actual) | set(manifest.files) if Path(rel).suffix.lower() in PICKLE_SUFFIXES)
    if pickled:
        raise IntegrityError(f"{root}: {pickled[0]} is a pickle-format file; runs hold safetensors weights only",
                             fix="remove it and retrain; calibgate never loads pickle")
    for rel, expected in manifest.files.items():
        got = actual.get(rel)
        if got is None:
            raise IntegrityError(f"{root}: file {rel} is missing", fix="restore the run from the registry or retrain")
        if got != expected:
            raise IntegrityError(
                f"{root}: {rel} has sha256 {got[:12]}..., the manifest records {expected[:12]}... (tampered or corrupted)",
                fix="restore the artifact from the registry's remote or retrain; never edit a run in place",
            )
    extra = sorted(set(actual) - set(manifest.files))
    if extra:
        raise IntegrityError(
            f"{root}: file {extra[0]} is not in the manifest", fix="remove it, or retrain to produce a fresh run"
        )
    check_run_content(root, manifest)  # the listed bytes are the right kind of bytes (a re-sealed run is not trusted)
    return manifest


def load_run(root: str | Path, *, verify: bool = True) -> RunManifest:
    """Read and (by default) verify a run directory."""
    manifest = read_manifest(root)
    if verify:
        verify_run(root, manifest)
    return manifest


@contextlib.contextmanager
def run_commit_lock(root: str | Path, *, timeout: float = 300.0):
    """Hold the lock that makes 'verify the run, then change it' one step among calibgate processes.

    evaluate and export each verify a run and then re-seal it with their files; without the lock, one could re-seal
    from a manifest the other had just replaced, leaving the other's files unlisted (a run refused from then on). The
    lock is ``flock`` on the run directory itself: no lock file inside the run or beside it, and the kernel releases
    it when a holder dies.
    """
    import fcntl
    import time

    root = Path(root)
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise ModelError(f"{root}: cannot be opened to change it ({exc.strerror})", fix="check the run directory") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ModelError(f"another calibgate process has been changing {root} for over {timeout:g} s",
                                     fix="wait for it (evaluate or export) to finish, then retry") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the lock


def add_records(root: str | Path, manifest: RunManifest, records: dict[str, bytes]) -> RunManifest:
    """Add or replace ``records`` (run-relative name -> bytes) in a verified run and re-seal it, all or nothing.

    ``manifest`` is the run's verified manifest, so its hashes are the files on disk: the new manifest is the old
    one with the records' hashes, and the records and the manifest land together (:func:`~calibgate.paths.
    replace_together`). A full disk while writing them used to leave a record the manifest did not list, and the
    run was refused by every command from then on.
    """
    root = Path(root)
    files = {**manifest.files, **{name: hashlib.sha256(data).hexdigest() for name, data in records.items()}}
    sealed = manifest.model_copy(update={"files": files})
    sealed = sealed.model_copy(update={"manifest_sha256": manifest_digest(sealed)})
    replace_together({**{root / name: data for name, data in records.items()},
                      root / MANIFEST: (sealed.model_dump_json(indent=2) + "\n").encode("utf-8")})
    return sealed


def add_files(root: str | Path, manifest: RunManifest) -> RunManifest:
    """Re-hash after a step (evaluate, export) added files to a verified run."""
    return write_manifest(Path(root), manifest)
