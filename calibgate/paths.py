"""Paths taken from records, and files written so that no reader ever sees half of one.

* :func:`safe_join` is the one way to turn a relative path from a record (a
  run manifest's file list, a version record, a store object name) into a
  path on disk: absolute paths, ``..`` and symlinks anywhere on the way are
  refused, so nothing outside ``root`` is read or written.
* :func:`read_user_text` reads a file a user named as UTF-8, with one
  clear error (exit 2) for every way that can fail.
* :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`atomic_copy`
  write through a uniquely named temporary file in the target's directory
  (``tempfile``) renamed into place (``os.replace``): concurrent writers never
  share a temporary name, and a reader sees the old file or the new one.
* :func:`staging_dir` makes the directory a run, an export or a pull is
  built in before it is renamed into place; it is named by host and process,
  so the leftovers of a process that was killed (SIGKILL, the OOM killer, a
  lost machine) are removed by the next one instead of piling up.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import stat
import tempfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from calibgate.errors import CalibgateError, ConfigError, DataError, EnvironmentFailure, IntegrityError

# formats that are (or wrap) pickle: torch.load / numpy allow_pickle / joblib can execute code;
# never loaded from a model dir (embeddings.modeldir), never kept in a run (runs.manifest)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".h5", ".msgpack")


def special_file(path: str | Path) -> str | None:
    """What ``path`` is when it exists but is neither a regular file nor a directory (a FIFO, a device, a socket), else None.

    Reading a FIFO blocks until someone writes to it, and ``/dev/zero`` never ends: every reader of a file the user
    names asks this first, so such a path is one line and exit 2 instead of a hang or a filled memory.
    """
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # missing or unreadable: the reader's own error says so
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def read_user_text(path: str | Path, *, what: str, fix: str, error: type[CalibgateError] = DataError) -> str:
    """The UTF-8 text of a file the user named, or ``error`` (exit 2) saying why not: missing, a directory, a FIFO or
    device, unreadable, not UTF-8."""
    path = Path(path)
    if kind := special_file(path):
        raise error(f"{path} is {kind}, not the {what}", fix=fix)
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such file (the {what})", fix=fix) from None
    except IsADirectoryError:
        raise error(f"{path} is a directory, not the {what}", fix=fix) from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})", fix=fix) from None
    except UnicodeDecodeError as exc:
        if wide := wide_encoding(exc.object):
            raise error(f"{path}: the {what} is {wide} text (it starts with a {wide} byte-order mark), not UTF-8",
                        fix=f"re-encode it as UTF-8, e.g. iconv -f {wide} -t UTF-8 {path.name}") from None
        raise error(f"{path}: the {what} is not UTF-8 text (byte {exc.start}: {exc.reason})", fix=fix) from None


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSONL (or one-text-per-line) file: split at "\\n" only, a "\\r" before it dropped.

    ``str.splitlines`` also splits at U+2028, U+2029, U+0085 and other separators, which JSON lets a string hold
    unescaped: one text holding one made its whole file unreadable (a served request's text in the prediction log
    broke every ``monitor`` of it).
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


_UTF16_32 = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


def wide_encoding(data: bytes) -> str | None:
    """"UTF-16" or "UTF-32" when ``data`` starts with that encoding's byte-order mark (what Windows PowerShell 5's
    ``>`` and Notepad's "Unicode" write), else None: its fix is iconv from that encoding, not from latin-1."""
    return next((name for bom, name in _UTF16_32 if data.startswith(bom)), None)


def decode_utf8(data: bytes, *, source: str, fix: str) -> str:
    """``data`` as UTF-8 text (a leading BOM dropped); :class:`DataError` naming the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if wide := wide_encoding(data):
            raise DataError(f"{source}: is {wide} text (it starts with a {wide} byte-order mark), not UTF-8",
                            fix=f"re-encode it as UTF-8, e.g. iconv -f {wide} -t UTF-8 "
                            f"{'FILE' if source.startswith('<') else Path(source).name}") from None
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{source}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x})", fix=fix) from None


_BRANCH_CHARS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,200}")


def branch_problem(branch: object) -> str | None:
    """Why ``branch`` is not a name git and GitHub both accept (git check-ref-format's rules, on the common subset of
    characters), or None when it is one."""
    if not isinstance(branch, str) or not _BRANCH_CHARS.fullmatch(branch):
        return "use letters, digits, '.', '_', '-' and '/', starting with a letter or digit, at most 201 characters"
    if ".." in branch or "@{" in branch:
        return "'..' is not allowed"
    parts = branch.split("/")
    if any(not part for part in parts):
        return "no empty part ('//', or a '/' at the end)"
    if any(part.startswith(".") or part.endswith((".lock", ".")) for part in parts):
        return "no part may start with '.' or end with '.' or '.lock'"
    return None


def check_relative(rel: str, *, what: str = "path") -> PurePosixPath:
    """``rel`` as a normalised POSIX relative path; :class:`IntegrityError` if it could leave its root."""
    if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel:
        raise IntegrityError(f"{what} {rel!r} is not a plain relative path", fix="restore the record from the registry; never edit it by hand")
    path = PurePosixPath(rel)
    if path.is_absolute() or rel.startswith("/") or any(part in ("..", "") for part in rel.split("/")) or (
        len(rel) > 1 and rel[1] == ":"
    ):
        raise IntegrityError(
            f"{what} {rel!r} points outside its directory (absolute or '..')",
            fix="restore the record from the registry; records may name only files inside the run",
        )
    return path


def safe_join(root: str | Path, rel: str, *, what: str = "path") -> Path:
    """``root / rel`` after checking ``rel`` stays inside ``root``: no absolute path, no ``..``, no symlink on the way.

    Components that do not exist yet are allowed (a file about to be written);
    every existing component below ``root`` must be a real directory or file,
    not a symlink, and the resolved result must lie under ``root``.
    """
    root = Path(root)
    parts = check_relative(rel, what=what).parts
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            raise IntegrityError(f"{what} {rel!r} goes through the symlink {current}", fix="replace the symlink with the real file, or restore the run")
    resolved_root = root.resolve()
    try:
        current.resolve().relative_to(resolved_root)
    except ValueError:
        raise IntegrityError(f"{what} {rel!r} resolves outside {root}", fix="restore the record from the registry") from None
    return current


# errno values that say the machine failed (exit 3); every other OSError on a path means the path itself is wrong (exit 2)
MACHINE_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT, errno.ENOMEM}


def path_error(exc: OSError, path: str | Path, doing: str) -> CalibgateError:
    """The one-line error for an OSError on ``path``: ConfigError for a wrong path, EnvironmentFailure for the machine."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in MACHINE_ERRNOS:
        return EnvironmentFailure(f"cannot {doing} {path}: {reason}", fix="free disk space or fix the file system, then retry")
    if exc.errno == errno.ENOTDIR:
        reason += " (a part of the path is a file)"
    elif exc.errno == errno.EEXIST:
        reason = "it exists and is not a directory"
    return ConfigError(f"cannot {doing} {path}: {reason}", fix="name a path in a directory you can write, not an existing file's")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def staging_dir(target: str | Path, kind: str) -> Path:
    """A new empty directory beside ``target`` (``.NAME.KIND-HOST-PID-XXXX``) to build it in and rename into place.

    First, directories of this shape left in the same folder by a process of this host that no longer runs are
    removed: a killed ``train``, ``export`` or ``pull`` could not clean up after itself. Other hosts' (a shared file
    system) and live processes' are left alone.
    """
    target = Path(target)
    parent = make_dirs(target.parent)
    host = _host()
    stale = re.compile(rf"^\..+\.[a-z]+-{re.escape(host)}-(\d+)-[A-Za-z0-9_]+$")
    try:
        entries = list(os.scandir(parent))
    except OSError:
        entries = []
    for entry in entries:
        match = stale.match(entry.name)
        if match and int(match[1]) != os.getpid() and entry.is_dir(follow_symlinks=False) and not _alive(int(match[1])):
            shutil.rmtree(entry.path, ignore_errors=True)
    try:
        made = Path(tempfile.mkdtemp(prefix=f".{_stem(target.name, 160)}.{kind}-{host}-{os.getpid()}-", dir=parent))
        made.chmod(0o777 & ~_umask())  # it becomes the run (or pulled) directory: mkdtemp's 0700 hid it from others
    except OSError as exc:
        raise path_error(exc, target, "write") from None
    return made


@contextlib.contextmanager
def signals_deferred():
    """Hold SIGINT, SIGTERM and SIGHUP until the block is done: for the few steps that change a sealed run's files and
    then its manifest, so an interruption lands before or after them, never between (a run whose records and
    manifest disagree is refused as tampered from then on).

    The signals are caught at Python's level and sent again once the block is done: a thread mask would not do, since
    the kernel gives a process's signal to any thread that does not block it (torch and onnxruntime start many).
    Outside the main thread, where handlers cannot be set, the block just runs.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {number: signal.signal(number, lambda got, _frame: pending.append(got))
                for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(pending):
            os.kill(os.getpid(), number)  # now to the handler that was there: Ctrl-C lands after the block


def check_writable_dir(path: str | Path) -> None:
    """Refuse (exit 2) a directory that could not be created or written, leaving nothing behind: a probe directory is
    made and removed in ``path``, or in its nearest existing parent when it does not exist yet."""
    path = Path(path)
    try:
        existing = next((p for p in (path, *path.parents) if p.exists()), None)  # a part past 255 bytes raises here
        if existing is not None and not existing.is_dir():
            raise ConfigError(f"cannot create the directory {path}: {existing} is a file",
                              fix="name a path in a directory you can write, not an existing file's")
        Path(tempfile.mkdtemp(prefix=".calibgate-probe-", dir=existing or ".")).rmdir()
    except OSError as exc:
        raise path_error(exc, path, "write into") from None


def make_dirs(path: str | Path) -> Path:
    """``mkdir -p path``; a path through a file, or one without permission, is a ConfigError naming it (exit 2)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise path_error(exc, path, "create the directory") from None
    return path


def _stem(name: str, limit: int = 200) -> str:
    """``name`` cut to ``limit`` bytes of the file system's encoding, for temporary names that add their own
    characters under the 255-byte limit. A cut through a character stays a byte the file system takes back as it is
    (surrogate escapes): under a C locale a UTF-8 name must not turn into characters ASCII cannot encode."""
    return os.fsdecode(os.fsencode(name)[:limit])


def check_file_target(path: str | Path) -> None:
    """Refuse ``path`` as a file to write by rename (ConfigError, exit 2) unless it is missing or a regular file.

    ``os.replace`` swaps whatever is there for a regular file: a symlink (``-o /dev/stdout``), a device
    (``/dev/full``) or a FIFO would be replaced, not written to, so each is refused instead.
    """
    path = Path(path)
    try:
        if path.is_symlink():
            raise ConfigError(f"{path} is a symlink: writing would replace the link, not write to what it names",
                              fix="name the file itself, or leave the option out to write to standard output")
        if kind := special_file(path):
            raise ConfigError(f"{path} is {kind}, not a file to write",
                              fix="name a regular file, or leave the option out to write to standard output")
        if path.is_dir():
            raise ConfigError(f"{path} is a directory", fix="name a file to write, not a directory")
    except OSError as exc:  # a name too long
        raise path_error(exc, path, "write") from None


def _temp_beside(path: Path) -> tuple[int, Path]:
    """A new temporary file beside ``path`` (checked by :func:`check_file_target`), to rename into place."""
    make_dirs(path.parent)
    check_file_target(path)
    try:
        # the temporary name is the file's plus 15 characters: a name near the 255-byte limit gets a shorter stem
        fd, name = tempfile.mkstemp(prefix=f".{_stem(path.name)}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # a name too long, a parent without permission: one line naming the path
        raise path_error(exc, path, "write") from None
    os.fchmod(fd, _new_file_mode(path))  # mkstemp's 0600 would hide store objects and run files from other readers
    return fd, Path(name)


def _umask() -> int:
    """The process umask, read without changing it (os.umask can only be read by setting it, which would let another
    thread create a file with none meanwhile); 0o022 where /proc does not say."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _new_file_mode(path: Path) -> int:
    """The mode of a file written in place of ``path``: the one it has (a user's chmod 600 survives the rewrite), else
    what open() would give it, 0o666 less the umask (0o644 at 022; a umask of 077 keeps plans and texts private)."""
    try:
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode)
    except OSError:
        pass
    return 0o666 & ~_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a unique temporary file in the same directory, renamed into place."""
    replace_together({Path(path): data})


def replace_together(files: dict[Path, bytes]) -> None:
    """Write several files so that a full disk changes none of them: every new version is written to a temporary
    file beside its target first (where a full disk fails), and only then are they renamed into place, in order,
    with SIGINT/SIGTERM held (a rename needs no space). The last one named is the last to land (a manifest)."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            fd, tmp = _temp_beside(Path(path))
            staged.append((tmp, Path(path)))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        with signals_deferred():
            for tmp, path in staged:
                os.replace(tmp, path)
    except BaseException as exc:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a full disk mid-write: exit 3 naming the file, not an 'internal error'
            raise path_error(exc, staged[-1][1] if staged else next(iter(files)), "write") from None
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 ``text``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(source: BinaryIO, path: str | Path) -> None:
    """Stream ``source`` into ``path`` through a unique temporary file renamed into place."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            shutil.copyfileobj(source, fh)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename in (None, str(tmp), str(path)):  # ours, not the source's
            raise path_error(exc, path, "write") from None
        raise
