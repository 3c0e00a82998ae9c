"""The JSONL prediction log ``calibgate serve --log`` writes and ``calibgate monitor`` reads.

One line per (request, model): the model that answered the client (role
``primary`` or ``canary``) and, with ``--shadow``, a second line for the
shadow model. Every line has its own ``line_id``; a shadow line names the
served answer it shadowed (``shadow_of``), so pairs never depend on request
ids, which clients choose and may reuse. Texts are logged as their sha256
unless the policy's ``monitor.log_text`` is true.

Each line is one ``write(2)`` on a file opened with ``O_APPEND``, under a
lock, with no buffer in between: a reader never sees half a record. A write
that fails (a full disk) is cut back off the file and counted; it is never
written later. A log that was renamed or deleted under the server (log
rotation) is reopened at its path before the next line, and SIGHUP reopens
it too, as logrotate expects.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from calibgate.errors import ConfigError
from calibgate.paths import check_writable_dir, make_dirs, path_error, special_file
from calibgate.runs.guard import check_outside_runs

PREDLOG_SCHEMA_VERSION = 2
EARLIEST_TS = 946684800.0  # 2000-01-01: a line stamped earlier came from a machine without a clock, or by hand
Role = Literal["primary", "canary", "shadow"]


class LoggedItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    text: str | None = None
    label: str = Field(min_length=1)
    confidence: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="the predicted label's probability")


class LogRecord(BaseModel):
    """One model's answer to one request (or the error it gave)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1, 2] = PREDLOG_SCHEMA_VERSION
    ts: float = Field(ge=EARLIEST_TS, le=32503680000.0, allow_inf_nan=False,
                      description="unix time the request arrived (2000 to 3000)")
    request_id: str
    line_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description="this line's own id (schema 2; unique in a log)")
    shadow_of: str | None = Field(None, pattern=r"^[0-9a-f]{32}$",
                                  description="a shadow line: the line_id of the served answer it shadowed (schema 2)")
    role: Role
    model: str = Field(min_length=1, description="name@vX.Y.Z, or the run id when served from a run directory")
    status: int = Field(ge=100, le=599, description="HTTP status of the answer (shadow: 200, or 500 when the shadow failed)")
    latency_ms: float | None = Field(None, ge=0.0, allow_inf_nan=False,
                                     description="model time from queueing to result, for this request")
    error: str | None = None
    items: list[LoggedItem] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_of_schema_2(self):
        """Schema 2 lines carry their own id, and a shadow line the id of its answer: monitor pairs by them."""
        if self.schema_version == 2:
            if self.line_id is None:
                raise ValueError("a schema 2 line needs its line_id")
            if self.role == "shadow" and self.shadow_of is None:
                raise ValueError("a schema 2 shadow line needs shadow_of, the line_id of the answer it shadowed")
        if self.shadow_of is not None and self.role != "shadow":
            raise ValueError(f"a {self.role} line names shadow_of; only shadow lines shadow an answer")
        return self


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def items_for(texts: list[str], predictions: list[tuple[str, float]], *, log_text: bool) -> list[LoggedItem]:
    return [
        LoggedItem(text_sha256=text_hash(t), text=t if log_text else None, label=label, confidence=round(conf, 6))
        for t, (label, conf) in zip(texts, predictions, strict=True)
    ]


def new_line_id() -> str:
    return uuid.uuid4().hex


class PredictionLog:
    """Append-only JSONL writer, safe to call from the event loop and worker threads (see the module docstring).

    The path is checked when the log is made (a FIFO, a device, a path inside a run or in a directory that cannot
    be written is refused) but the file is created only by :meth:`open`, once the models have loaded: a server that
    never started leaves no log behind.
    """

    def __init__(self, path: str | Path | None, *, log_text: bool = False):
        self.path = Path(path) if path else None
        self.log_text = log_text
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._reopen = False
        self.failures = 0
        self.on_failure = None  # called with the OSError of each line that could not be written (the server counts it)
        if self.path is not None:
            if kind := special_file(self.path):  # /dev/full takes the open and fails every write
                raise ConfigError(f"--log {self.path} is {kind}, not a log file", fix="name a regular file, e.g. --log predictions.jsonl")
            check_outside_runs(self.path, what="--log")
            if self.path.is_dir():
                raise ConfigError(f"--log {self.path} is a directory", fix="name a file, e.g. --log predictions.jsonl")
            if self.path.exists():
                if not os.access(self.path, os.W_OK):
                    raise ConfigError(f"--log {self.path} cannot be written (permission denied)",
                                      fix="name a log file you can write")
            else:
                check_writable_dir(self.path.parent)

    def open(self) -> None:
        """Create (or append to) the log file; a path that cannot be opened is a ConfigError / EnvironmentFailure."""
        if self.path is None:
            return
        make_dirs(self.path.parent)
        with self._lock:
            try:
                self._fd = self._open_fd()
            except OSError as exc:
                raise path_error(exc, self.path, "append to the prediction log") from None

    def reopen(self) -> None:
        """Reopen the path before the next line (SIGHUP: the file was rotated)."""
        self._reopen = True

    def _open_fd(self) -> int:
        """The path opened for appending, never blocking: a FIFO put there (no reader: ENXIO, or a reader: refused
        below) froze the event loop, and with it every client and the signal handlers."""
        import stat

        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o644)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "not a regular file")
        return fd

    def _current_fd(self) -> tuple[int, int]:
        """(the open log, its size): reopened at its path when it was renamed or deleted (rotation) or SIGHUP asked."""
        ours = os.fstat(self._fd)
        try:
            here = os.stat(self.path)
            moved = (here.st_dev, here.st_ino) != (ours.st_dev, ours.st_ino)
        except FileNotFoundError:
            moved = True
        if moved or self._reopen:
            self._reopen = False
            fd = self._open_fd()
            os.close(self._fd)
            self._fd = fd
            ours = os.fstat(fd)
        return self._fd, ours.st_size

    def write(self, record: LogRecord) -> None:
        """Append one line; a failed write (a full disk) is cut back off, counted and said once on stderr, and never
        fails the answer."""
        if self._fd is None:
            return
        line = (record.model_dump_json(exclude_none=True) + "\n").encode("utf-8")
        with self._lock:
            start = None
            try:
                fd, start = self._current_fd()
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(errno.ENOSPC, "No space left on device (a short write)")
            except OSError as exc:
                if start is not None:
                    try:
                        os.ftruncate(fd, start)  # no half line stays for a reader to trip on
                    except OSError:
                        pass
                self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        self.failures += 1
        if self.failures == 1:
            import sys

            print(f"calibgate serve: cannot write the prediction log {self.path} ({exc.strerror or exc}); answers go "
                  "on unlogged and calibgate_errors_total{kind=\"log_error\"} counts them", file=sys.stderr)
        if self.on_failure is not None:
            self.on_failure(exc)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                try:
                    os.close(self._fd)
                except OSError:  # nothing is buffered: every line was written, or counted, when it was written
                    pass
                self._fd = None


def now() -> float:
    return round(time.time(), 6)
