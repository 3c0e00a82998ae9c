"""The JSONL prediction log ``calibgate serve --log`` writes and ``calibgate monitor`` reads.

One line per (request, model): the model that answered the client (role
``primary`` or ``canary``) and, with ``--shadow``, a second line for the
shadow model with the same ``request_id``. Texts are logged as their sha256
unless the policy's ``monitor.log_text`` is true. Lines are written whole
under a lock and flushed, so a reader never sees half a record.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from calibgate.errors import ConfigError
from calibgate.paths import make_dirs, path_error, special_file
from calibgate.runs.guard import check_outside_runs

PREDLOG_SCHEMA_VERSION = 1
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

    schema_version: Literal[1] = PREDLOG_SCHEMA_VERSION
    ts: float = Field(ge=0.0, le=32503680000.0, allow_inf_nan=False, description="unix time the request arrived (before year 3000)")
    request_id: str
    role: Role
    model: str = Field(min_length=1, description="name@vX.Y.Z, or the run id when served from a run directory")
    status: int = Field(ge=100, le=599, description="HTTP status of the answer (shadow: 200, or 500 when the shadow failed)")
    latency_ms: float | None = Field(None, ge=0.0, allow_inf_nan=False,
                                     description="model time from queueing to result, for this request")
    error: str | None = None
    items: list[LoggedItem] = Field(default_factory=list)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def items_for(texts: list[str], predictions: list[tuple[str, float]], *, log_text: bool) -> list[LoggedItem]:
    return [
        LoggedItem(text_sha256=text_hash(t), text=t if log_text else None, label=label, confidence=round(conf, 6))
        for t, (label, conf) in zip(texts, predictions, strict=True)
    ]


class PredictionLog:
    """Append-only JSONL writer, safe to call from the event loop and worker threads."""

    def __init__(self, path: str | Path | None, *, log_text: bool = False):
        self.path = Path(path) if path else None
        self.log_text = log_text
        self._lock = threading.Lock()
        self._fh = None
        self.failures = 0
        self.on_failure = None  # called with the OSError of each line that could not be written (the server counts it)
        if self.path is not None:
            if kind := special_file(self.path):  # /dev/full takes the open and fails every write
                raise ConfigError(f"--log {self.path} is {kind}, not a log file", fix="name a regular file, e.g. --log predictions.jsonl")
            check_outside_runs(self.path, what="--log")
            make_dirs(self.path.parent)
            try:
                self._fh = self.path.open("a", encoding="utf-8")
            except OSError as exc:
                raise path_error(exc, self.path, "append to the prediction log") from None

    def write(self, record: LogRecord) -> None:
        """Append one line; a failed write (a full disk) is counted and said once on stderr, and never fails the answer."""
        if self._fh is None:
            return
        line = record.model_dump_json(exclude_none=True) + "\n"
        with self._lock:
            try:
                self._fh.write(line)
                self._fh.flush()
            except OSError as exc:
                self.failures += 1
                if self.failures == 1:
                    import sys

                    print(f"calibgate serve: cannot write the prediction log {self.path} ({exc.strerror or exc}); answers go "
                          "on unlogged and calibgate_errors_total{kind=\"log_error\"} counts them", file=sys.stderr)
                if self.on_failure is not None:
                    self.on_failure(exc)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                try:
                    self._fh.close()
                except OSError:  # the lines a full disk refused were counted when written
                    self.failures += 1
                self._fh = None


def now() -> float:
    return round(time.time(), 6)
