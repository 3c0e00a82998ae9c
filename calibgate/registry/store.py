"""Content-addressed storage of a version's run directory, and re-hashing it on verify.

Two backends:

* ``dvc`` (preferred): the project's DVC remote. The run directory is staged
  with dvc-data's ``build`` and copied with ``transfer`` exactly as ``dvc push``
  would: ``<remote>/files/md5/<2>/<30>`` per file plus the ``.dir`` manifest.
  Any remote DVC supports works (local directory, S3, ...).
* ``dir``: a plain directory, for projects without DVC:
  ``<store>/files/sha256/<2>/<62>``, one object per file, named by its sha256.

Either way the version record keeps the sha256 of every file (from the run
manifest) and :func:`verify_stored` re-reads each object from the store and
re-hashes it; any difference raises :class:`IntegrityError`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from calibgate.errors import EnvironmentFailure, IntegrityError, RegistryError, StoreUnreadable
from calibgate.paths import MACHINE_ERRNOS, atomic_copy, check_relative, path_error, safe_join
from calibgate.runs import MANIFEST, run_files, sha256_file


class StoredArtifacts(BaseModel):
    """Where a version's files live and what they hash to."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["dvc", "dir"]
    remote: str | None = Field(None, description="DVC remote name (backend dvc)")
    url: str = Field(description="remote URL or store directory (local paths relative to the repo root); informative for dvc, which resolves 'remote' by name")
    dir_md5: str | None = Field(None, description="DVC .dir hash of the run directory (backend dvc)")
    files: dict[str, str] = Field(description="relative path -> sha256 of every file, the run manifest included")
    size_bytes: int = 0


def _dvc_remote(repo_root: Path, remote: str | None) -> tuple[str, str] | None:
    """(name, url) of the DVC remote to use (``.dvc/config`` and ``config.local``), or None without one."""
    if not (repo_root / ".dvc").is_dir():
        return None
    from calibgate._lazy import require

    require("dvc")
    from dvc.repo import Repo

    try:
        with Repo(str(repo_root)) as repo:
            config = repo.config
            name = remote or config["core"].get("remote")
            if not name:
                return None
            if name not in config["remote"]:
                raise RegistryError(f"DVC remote '{name}' is not configured", fix="dvc remote list; pass an existing --remote")
            return name, str(config["remote"][name]["url"])
    except RegistryError:
        raise
    except Exception as exc:  # dvc raises many types for a config it cannot read; all mean the same to the user
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RegistryError(f"cannot read the project's DVC configuration ({first[:160]})",
                            fix="fix .dvc/config (dvc config --list shows what DVC reads), or pass --store DIR") from None


def push_run(repo_root: Path, run_dir: Path, files: dict[str, str], *, remote: str | None = None, store: str | None = None) -> StoredArtifacts:
    """Copy ``run_dir`` to the DVC remote (or the ``store`` directory when given or when there is no DVC remote)."""
    present = set(run_files(run_dir))  # refuses symlinks: nothing outside the run is read or stored
    if present != set(files):
        odd = sorted(present ^ set(files))[0]
        raise IntegrityError(f"{run_dir}: {odd} is not both in the run and in its manifest", fix="verify the run (calibgate evaluate) or retrain")
    files = {**files, MANIFEST: sha256_file(safe_join(run_dir, MANIFEST, what="run file"))}
    size = sum(safe_join(run_dir, rel, what="run file").lstat().st_size for rel in files)
    if store is None:
        found = _dvc_remote(repo_root, remote)
        if found is None:
            raise RegistryError(
                "no artifact store: the project has no default DVC remote",
                fix="configure one (dvc remote add -d store /path/or/url) or pass --store DIR",
            )
        name, url = found
        if "://" not in url:  # a local remote: record it relative to the repo, not as this machine's path
            _refuse_unignored_remote(repo_root, Path(url), "files/md5/00/probe")
            url = os.path.relpath(url, repo_root)
        dir_md5 = _dvc_push(repo_root, run_dir, name)
        return StoredArtifacts(backend="dvc", remote=name, url=url, dir_md5=dir_md5, files=files, size_bytes=size)
    root = _store_dir(repo_root, store)
    _refuse_unignored_remote(repo_root, root, "files/sha256/00/probe")
    for rel, digest in files.items():
        target = _dir_object(root, digest)
        if not target.exists():
            with safe_join(run_dir, rel, what="run file").open("rb") as src:
                atomic_copy(src, target)  # unique temp name in the target dir: racing registrations never collide
    return StoredArtifacts(backend="dir", url=store, files=files, size_bytes=size)


def verify_stored(repo_root: Path, stored: StoredArtifacts) -> int:
    """Re-hash every stored file against the record; returns the number of files, raises IntegrityError.

    A store that cannot be read at all (its remote gone, or not a directory) is :class:`StoreUnreadable`: a
    RegistryError to fix the configuration by, which the gate tells apart from an unreadable registry. The gate
    took it for bad input (exit 2, with advice to drop the baseline), not for a baseline it cannot verify.
    """
    try:
        return _verify_stored(repo_root, stored)
    except StoreUnreadable:
        raise
    except RegistryError as exc:
        raise StoreUnreadable(f"the store {stored.url} cannot be read, so the artifact cannot be verified: {exc.message}",
                              fix=exc.fix) from None


def _verify_stored(repo_root: Path, stored: StoredArtifacts) -> int:
    for rel in stored.files:
        check_relative(rel, what="file in the version record")
    if stored.backend == "dir":
        root = _stored_root(repo_root, stored)
        for rel, digest in stored.files.items():
            obj = _dir_object(root, digest)
            with _open_object(rel, obj, lambda o=obj: o.open("rb"), f"the store {stored.url}") as fh:
                got = _sha256_stream(fh)
            _compare(rel, got, digest, stored.url)
        return len(stored.files)
    odb, tree = _dvc_tree(repo_root, stored)
    listed = _listing(tree, stored)
    for rel, digest in stored.files.items():
        md5 = listed.get(rel)
        if md5 is None:
            raise IntegrityError(f"{rel} is not in the stored directory {stored.dir_md5}", fix="re-register the version from its run")
        path = odb.oid_to_path(md5)
        with _open_object(rel, path, lambda p=path: odb.fs.open(p, "rb"), f"DVC remote '{stored.remote}'") as fh:
            got = _sha256_stream(fh)
        _compare(rel, got, digest, f"DVC remote '{stored.remote}'")
    extra = sorted(set(listed) - set(stored.files))
    if extra:
        raise IntegrityError(f"stored directory has {extra[0]}, which the version record does not list", fix="re-register the version")
    return len(stored.files)


def stored_manifest(repo_root: Path, stored: StoredArtifacts):
    """The run manifest as stored (its bytes checked against the record's sha256 first)."""
    from calibgate.runs import parse_manifest

    expected = stored.files.get(MANIFEST)
    if expected is None:
        raise IntegrityError(f"the version record lists no {MANIFEST}", fix="re-register the version from its run")
    if stored.backend == "dir":
        obj = _dir_object(_stored_root(repo_root, stored), expected)
        with _open_object(MANIFEST, obj, lambda: obj.open("rb"), f"the store {stored.url}") as fh:
            data = fh.read()
    else:
        odb, tree = _dvc_tree(repo_root, stored)
        md5 = _listing(tree, stored).get(MANIFEST)
        if md5 is None:
            raise IntegrityError(f"{MANIFEST} is not in the stored directory {stored.dir_md5}", fix="re-register the version")
        path = odb.oid_to_path(md5)
        with _open_object(MANIFEST, path, lambda: odb.fs.open(path, "rb"), f"DVC remote '{stored.remote}'") as fh:
            data = fh.read()
    _compare(MANIFEST, hashlib.sha256(data).hexdigest(), expected, stored.url)
    return parse_manifest(data, source=f"{stored.url}:{MANIFEST}")


def fetch_stored(repo_root: Path, stored: StoredArtifacts, dest: Path, *, verified: bool = False) -> Path:
    """Restore a version's run directory into ``dest`` (verified first, unless the caller just did)."""
    if not verified:
        verify_stored(repo_root, stored)
    if stored.backend == "dir":
        root = _stored_root(repo_root, stored)
        where = f"the store {stored.url}"
        objects = {rel: (path, lambda p=path: p.open("rb")) for rel, path in ((r, _dir_object(root, d)) for r, d in stored.files.items())}
    else:
        odb, tree = _dvc_tree(repo_root, stored)
        md5s = _listing(tree, stored)
        where = f"DVC remote '{stored.remote}'"
        objects = {rel: (path, lambda p=path: odb.fs.open(p, "rb")) for rel, path in ((r, odb.oid_to_path(md5s[r])) for r in stored.files)}
    dest.mkdir(parents=True, exist_ok=True)
    for rel, (path, open_) in objects.items():
        target = safe_join(dest, rel, what="file in the version record")  # never outside dest
        target.parent.mkdir(parents=True, exist_ok=True)
        with _open_object(rel, path, open_, where) as src:
            atomic_copy(src, target)
        _compare(rel, sha256_file(target), stored.files[rel], str(dest))
    return dest


def _open_object(rel: str, path, open_, where: str):
    """The store object ``path`` that holds the run's file ``rel``, opened for reading with ``open_()``.

    An object that is missing, or that is no regular file (a directory, a path through a file), is a store whose
    content does not match the record (:class:`IntegrityError`); one this user may not read is a store to fix
    (:class:`StoreUnreadable`); only the machine's own faults (disk, I/O) are exit 3. A directory where an object
    belongs used to be an internal error (exit 3, "report it"), and the gate could not report an untrusted baseline.
    """
    try:
        return open_()
    except FileNotFoundError:
        raise IntegrityError(f"{rel} is missing from {where} ({path})",
                             fix="push it again from a copy of the run (dvc push), or re-register the version from its run") from None
    except (IsADirectoryError, NotADirectoryError):
        raise IntegrityError(f"{rel}: the object {path} in {where} is not a file (tampered or corrupted)",
                             fix="restore the object from a backup or re-register the version from its run; never edit stored artifacts") from None
    except PermissionError:
        raise StoreUnreadable(f"{rel}: the object {path} in {where} cannot be read (permission denied)",
                              fix="give this user read access to the store") from None
    except OSError as exc:
        if exc.errno in MACHINE_ERRNOS:
            raise EnvironmentFailure(f"cannot read {path} in {where}: {exc.strerror}", fix="fix the store's disk or file system, then retry") from None
        raise IntegrityError(f"{rel}: the object {path} in {where} cannot be read ({exc.strerror or type(exc).__name__})",
                             fix="restore the object from a backup or re-register the version from its run") from None


def _listing(tree, stored: StoredArtifacts) -> dict[str, str]:
    """relative path -> md5 of a stored DVC directory; refuses names that leave the directory and bad hashes."""
    listed = {}
    for key, _meta, hash_info in tree:
        rel = "/".join(key)
        check_relative(rel, what=f"entry of stored directory {stored.dir_md5}")
        md5 = str(hash_info.value)
        if len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5):
            raise IntegrityError(f"stored directory {stored.dir_md5} lists {rel} with a malformed md5", fix="re-register the version")
        listed[rel] = md5
    return listed


def _refuse_unignored_remote(repo_root: Path, url: Path, sample: str) -> None:
    """A local store (DVC directory remote or --store DIR) inside the git work tree must be git-ignored,
    or 'git add -A' would commit every artifact."""
    remote = url.resolve()  # dvc's config resolves a local remote to an absolute path
    try:
        rel = remote.relative_to(repo_root.resolve())
    except ValueError:
        return  # outside the repository: nothing to commit by accident
    probe = (rel / sample).as_posix()  # an object path that does not exist yet: ignored by the rules, or not
    import subprocess

    found = subprocess.run(["git", "check-ignore", "-q", "--no-index", probe], cwd=repo_root, capture_output=True)
    if found.returncode == 1:
        raise RegistryError(
            f"the artifact store directory {rel.as_posix()}/ is inside the repository and not git-ignored:"
            " registry artifacts pushed there would be committed by 'git add -A'",
            fix=f"add '/{rel.as_posix()}/' to .gitignore (tracked files stay tracked), or move the remote outside the repo",
        )


def _compare(rel: str, got: str, expected: str, where: str) -> None:
    if got != expected:
        raise IntegrityError(
            f"{rel} in {where} has sha256 {got[:12]}..., the version records {expected[:12]}... (tampered or corrupted)",
            fix="restore the object from a backup or re-register the version from its run; never edit stored artifacts",
        )


def _sha256_stream(fh) -> str:
    digest = hashlib.sha256()
    while block := fh.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()


def _store_dir(repo_root: Path, store: str) -> Path:
    path = Path(store)
    return path if path.is_absolute() else repo_root / path


def _stored_root(repo_root: Path, stored: StoredArtifacts) -> Path:
    """The directory store a version was registered into, checked to be a readable directory."""
    root = _store_dir(repo_root, stored.url)
    _check_store_root(root, "the artifact store", f"restore the store the version was registered into at {stored.url}")
    return root


def _dir_object(root: Path, digest: str) -> Path:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise IntegrityError(f"store object name {digest[:70]!r} is not a sha256", fix="restore the version record from the remote; never edit it")
    return root / "files" / "sha256" / digest[:2] / digest[2:]


def _dvc_push(repo_root: Path, run_dir: Path, remote: str) -> str:
    from calibgate._lazy import require

    require("dvc")
    from dvc.repo import Repo
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.transfer import transfer

    from calibgate.data.versions import quiet_dvc

    try:
        with quiet_dvc() as logged, Repo(str(repo_root)) as repo:
            staging, _meta, obj = build(repo.cache.local, str(run_dir.resolve()), repo.fs, "md5")
            odb = repo.cloud.get_remote_odb(remote, hash_name="md5")
            result = transfer(staging, odb, {obj.hash_info}, hardlink=False, shallow=False)
    except Exception as exc:  # dvc raises many types; all mean the push did not happen
        if isinstance(exc, OSError) and exc.errno in MACHINE_ERRNOS:
            raise path_error(exc, remote, "push the run to DVC remote") from None
        raise RegistryError(
            f"could not push the run to DVC remote '{remote}' ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            fix="check 'dvc remote list' and access to the remote",
        ) from None
    if result.failed:
        causes = [r.exc_info[1] for r in logged if r.exc_info and r.exc_info[1] is not None]
        cause = next((c for c in causes if isinstance(c, OSError)), causes[0] if causes else None)
        reason = f" ({getattr(cause, 'strerror', None) or cause})" if cause is not None else ""
        what = f"DVC could not copy {len(result.failed)} object(s) to remote '{remote}'{reason}"
        if isinstance(cause, OSError) and cause.errno in MACHINE_ERRNOS:  # the remote's disk, not the input: exit 3
            raise EnvironmentFailure(what, fix="free space on the remote (or fix its file system), then register again")
        raise RegistryError(what, fix="retry; check the remote's space and access")
    return obj.hash_info.value


def _check_remote_root(odb, remote: str) -> None:
    """A local DVC remote that is gone, a file or unreadable is the configuration's fault, not a sign of tampering."""
    from dvc_objects.fs.local import LocalFileSystem

    if isinstance(odb.fs, LocalFileSystem):  # object storage says what is wrong in its own errors
        fix = f"point DVC remote '{remote}' at the directory the version was pushed to (dvc remote modify {remote} url DIR)"
        _check_store_root(Path(odb.path), f"DVC remote '{remote}'", fix)


def _check_store_root(root: Path, what: str, fix: str) -> None:
    existing = next((p for p in (root, *root.parents) if p.exists()), root)
    if not existing.is_dir():
        raise RegistryError(f"{what}: {existing} is not a directory", fix=fix)
    if existing != root:
        raise RegistryError(f"{what} ({root}) does not exist", fix=fix)
    if not os.access(root, os.R_OK | os.X_OK):
        raise RegistryError(f"{what} ({root}) cannot be read", fix="give this user read access to it")


def _dvc_tree(repo_root: Path, stored: StoredArtifacts):
    from dvc.repo import Repo
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    try:
        with Repo(str(repo_root)) as repo:
            odb = repo.cloud.get_remote_odb(stored.remote, hash_name="md5")
    except Exception as exc:  # dvc raises many types: no such remote, not a DVC repo, bad config
        raise RegistryError(
            f"cannot open DVC remote '{stored.remote}' the version was stored in ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            fix=f"configure it (dvc remote add {stored.remote} {stored.url}) and retry",
        ) from None
    _check_remote_root(odb, stored.remote)
    try:
        tree = Tree.load(odb, HashInfo("md5", stored.dir_md5))
    except FileNotFoundError:
        raise IntegrityError(
            f"directory {stored.dir_md5} is missing from DVC remote '{stored.remote}'", fix="re-register the version from its run"
        ) from None
    except Exception as exc:
        raise IntegrityError(
            f"the stored directory manifest {stored.dir_md5} is unreadable ({type(exc).__name__}): tampered or corrupted",
            fix="re-register the version from its run",
        ) from None
    return odb, tree
