"""Data versions through DVC: the md5 of the tracked dataset, and pulling it.

The md5 comes from ``<target>.dvc`` (what git versions); the workspace is
checked against DVC's ``.dir`` manifest so a modified, un-``dvc add``-ed
dataset is reported as such instead of under a version it no longer is.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from calibgate.errors import DataError, IntegrityError
from calibgate.paths import check_relative, read_user_text

DVC_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")


@dataclass(frozen=True)
class DataVersion:
    dvc_md5: str | None  # e.g. "0fa6...c7.dir"; None when untracked or modified
    state: str  # "clean", "modified", "unverified", "untracked"
    detail: str = ""


def tracked_md5(root: Path, target: str) -> str | None:
    """The md5 recorded in ``<target>.dvc``, or None when the target is not DVC-tracked."""
    dvc_file = root / f"{target}.dvc"
    if not dvc_file.exists():
        return None
    return dvc_file_md5(read_user_text(dvc_file, what="DVC file", fix="restore it with git checkout"), dvc_file, target)


def dvc_file_md5(text: str, source: str | Path, target: str) -> str:
    """The md5 a ``.dvc`` file's text records (``outs[0].md5``), checked to be one; else :class:`DataError`."""
    name = Path(str(source)).name
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})", fix="restore it with git checkout") from None
    outs = raw.get("outs") if isinstance(raw, dict) else None
    if not isinstance(outs, list) or not outs or not isinstance(outs[0], dict) or "md5" not in outs[0]:
        raise DataError(f"{source}: no 'outs[0].md5'", fix=f"re-run 'dvc add {target}'")
    md5 = outs[0]["md5"]
    # the md5 names a file in DVC's cache and remote: anything but a hash could name any file ('../../x.dir')
    if not isinstance(md5, str) or not DVC_MD5.fullmatch(md5):
        raise DataError(f"{source}: outs[0].md5 {str(md5)[:80]!r} is not a DVC md5 (32 hex digits, '.dir' for a directory)",
                        fix=f"restore {name} with 'git checkout', or re-run 'dvc add {target}'")
    return md5


def data_version(root: Path, target: str | None) -> DataVersion:
    """Version of the DVC target as it is in the workspace."""
    if not target:
        return DataVersion(None, "untracked", "no dvc_target in the config")
    md5 = tracked_md5(root, target)
    if md5 is None:
        return DataVersion(None, "untracked", f"{target} is not tracked by DVC (no {target}.dvc)")
    manifest = _dir_manifest(root, md5)
    if manifest is None:
        return DataVersion(md5, "unverified", "DVC's .dir manifest is not in the cache or remote")
    workspace = root / target
    for entry in manifest:
        file = workspace / entry["relpath"]
        if not file.exists() or _md5(file) != entry["md5"]:
            return DataVersion(
                None, "modified", f"{target}/{entry['relpath']} differs from {target}.dvc; run 'dvc add {target}'"
            )
    listed = {e["relpath"] for e in manifest}
    extra = [p for p in workspace.rglob("*") if p.is_file() and p.relative_to(workspace).as_posix() not in listed]
    if extra:
        return DataVersion(None, "modified", f"{extra[0]} is not in {target}.dvc; run 'dvc add {target}'")
    return DataVersion(md5, "clean")


def tracked_file_matches(root: Path, target: str, path: Path) -> bool | None:
    """Whether ``path`` (inside the DVC target) holds the bytes ``<target>.dvc`` records for it; None when that cannot
    be told (untracked, a manifest not in the cache, a file the version does not list)."""
    md5 = tracked_md5(root, target)
    manifest = _dir_manifest(root, md5) if md5 else None
    if manifest is None or not path.exists():
        return None
    rel = Path(path).resolve().relative_to((root / target).resolve()).as_posix()
    entry = next((e for e in manifest if e["relpath"] == rel), None)
    return None if entry is None else _md5(path) == entry["md5"]


def ensure_pulled(root: Path, target: str | None, needed: list[Path]) -> bool:
    """``dvc pull`` the target when files it should hold are missing. Returns True if it pulled."""
    if not target or all(p.exists() for p in needed) or tracked_md5(root, target) is None:
        return False
    try:
        from dvc.repo import Repo
    except ImportError:
        raise DataError(f"{needed[0]} is missing and dvc is not installed", fix="pip install dvc, then dvc pull") from None
    try:
        with quiet_dvc(), Repo(str(root)) as repo:
            repo.pull(targets=[str(root / f"{target}.dvc")])
    except UnicodeError as exc:  # the machine's encoding, not the remote: a project path this locale cannot encode
        from calibgate.errors import EnvironmentFailure

        raise EnvironmentFailure(
            f"could not restore {target} with 'dvc pull': a path is not text in this locale's encoding ({exc.reason})",
            fix="run with PYTHONUTF8=1 (or LC_ALL=C.UTF-8), or move the project to a path that is valid UTF-8",
        ) from None
    except Exception as exc:  # dvc raises many types; all mean the data could not be restored
        raise DataError(
            f"could not restore {target} with 'dvc pull' ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            fix="check the DVC remote in .dvc/config ('dvc remote list') and your credentials",
        ) from None
    return True


class _Kept(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]):
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def quiet_dvc():
    """DVC's own log lines, hints and progress bars (a failed pull printed seven 'md5: ...' lines, a failed push ten
    'failed to transfer' lines, 'dvc add' its 'git add' advice on stdout) stay out of our one-line errors and JSON.

    Yields the warnings and errors DVC logged meanwhile: their exceptions say why a transfer failed.
    """
    records: list[logging.LogRecord] = []
    kept = _Kept(records)
    loggers = [logging.getLogger(name) for name in ("dvc", "dvc_data", "dvc_objects")]
    saved = [(logger, logger.level, logger.propagate, list(logger.handlers)) for logger in loggers]
    for logger in loggers:
        logger.handlers = [kept]  # DVC's console handler holds the real stderr: redirecting sys.stderr misses it
        logger.propagate = False
        logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            yield records
    finally:
        for logger, level, propagate, handlers in saved:
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)


def _dir_manifest(root: Path, md5: str) -> list[dict] | None:
    if not md5.endswith(".dir"):
        return None
    rel = Path("files") / "md5" / md5[:2] / md5[2:]
    candidates = [root / ".dvc" / "cache" / rel]
    remote = _local_remote(root)
    if remote is not None:
        candidates.append(remote / rel)
    for candidate in candidates:
        if candidate.exists():
            try:
                manifest = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError):  # not JSON, or not UTF-8
                return None
            return _checked_manifest(manifest, candidate)
    return None


def _checked_manifest(manifest, source: Path) -> list[dict]:
    """A ``.dir`` listing as DVC writes it, ``[{"relpath": "a/b.jsonl", "md5": "<hex>"}, ...]``, with every relpath
    inside the directory; else :class:`DataError`. The listing is read from a cache or remote anyone with write access
    to it can edit: its relpaths are joined to the workspace and hashed."""
    fix = f"delete {source} and run 'dvc pull' (or 'dvc add' the data again)"
    if not isinstance(manifest, list):
        raise DataError(f"{source}: not a DVC directory listing (a JSON list of relpath/md5 entries)", fix=fix)
    for number, entry in enumerate(manifest, 1):
        if not (isinstance(entry, dict) and isinstance(entry.get("relpath"), str) and isinstance(entry.get("md5"), str)
                and re.fullmatch(r"[0-9a-f]{32}", entry["md5"])):
            raise DataError(f"{source}: entry {number} is not a DVC listing entry (a relpath and a 32-hex md5)", fix=fix)
        try:
            check_relative(entry["relpath"], what="relpath")
        except IntegrityError:
            raise DataError(f"{source}: entry {number}'s relpath {entry['relpath'][:80]!r} points outside the data directory",
                            fix=fix) from None
    return manifest


def _local_remote(root: Path) -> Path | None:
    """The default remote's directory when it is a local path (the demo's), else None."""
    import configparser

    config_file = root / ".dvc" / "config"
    if not config_file.exists():
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read(config_file)
    except configparser.Error:
        return None
    name = parser.get("core", "remote", fallback=None)
    url = parser.get(f"'remote \"{name}\"'", "url", fallback=None) if name else None
    if not url or "://" in url:
        return None
    path = Path(url)
    return path if path.is_absolute() else (config_file.parent / path).resolve()


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
