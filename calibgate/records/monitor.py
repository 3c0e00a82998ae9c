"""The monitor report (``calibgate monitor --json``, schema ``monitor.schema.json``).

:mod:`calibgate.serving.monitor` produces it from a prediction log;
``registry promote`` reads it as a rollout stage's evidence.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from calibgate.records.base import Record
from calibgate.records.versions import known_version

MONITOR_SCHEMA_VERSION = 1
MAX_DISAGREEMENTS = 20
Status = Literal["PASS", "FAIL", "ERROR"]


class Latency(Record):
    p50_ms: float
    p95_ms: float
    p99_ms: float


class Reference(Record):
    """The version's evaluation, to compare live predictions with."""

    source: str
    n: int
    label_shares: dict[str, float]
    mean_confidence: float | None = None
    label_shift: float = Field(description="total variation distance between live and evaluation predicted-label shares")


class ModelStats(Record):
    model: str
    role: Literal["primary", "canary"]
    requests: int
    answered: int
    server_errors: int
    client_errors: int
    error_rate: float | None = Field(description="server errors / requests that reached the model (client errors excluded)")
    latency: Latency | None = None
    predictions: int
    label_shares: dict[str, float]
    mean_confidence: float | None = None
    low_confidence_rate: float | None = None
    evaluation: Reference | None = None


class Disagreement(Record):
    request_id: str
    text_sha256: str
    text: str | None = None
    served_model: str
    served_label: str
    served_confidence: float
    shadow_label: str
    shadow_confidence: float


class ShadowStats(Record):
    model: str
    requests: int = Field(description="requests the shadow answered that have a served answer in the log")
    skipped: int
    errors: int
    texts: int
    agreement: float | None
    served_p95_ms: float | None = None
    shadow_p95_ms: float | None = None
    latency_ratio: float | None = Field(None, description="shadow p95 / served p95 over the same requests")
    disagreements: list[Disagreement] = Field(default_factory=list, description=f"up to {MAX_DISAGREEMENTS}, lowest-confidence first")
    disagreements_total: int = 0


class MonitorCheck(Record):
    id: str
    subject: str = Field(description="the model the figure is about")
    value: float | None
    threshold: float
    direction: Literal["max", "min"]
    status: Status

    @staticmethod
    def judge(value: float | None, threshold: float, direction: str) -> str:
        """The status a figure earns: no figure is ERROR (it fails like FAIL)."""
        if value is None:
            return "ERROR"
        return "PASS" if (value <= threshold if direction == "max" else value >= threshold) else "FAIL"

    @model_validator(mode="after")
    def _status_follows_value(self):
        """'PASS' on a p95 of 1.4 ms against a 0.001 ms ceiling is a hand-edited report (rollout evidence)."""
        if self.status != self.judge(self.value, self.threshold, self.direction):
            raise ValueError(f"check {self.id} ({self.subject}) says {self.status}, but its value {self.value} against "
                             f"{self.direction} {self.threshold} is {self.judge(self.value, self.threshold, self.direction)}")
        return self


class Window(Record):
    first_ts: float
    last_ts: float
    first: str
    last: str
    requests: int
    lines: int


class MonitorReport(Record):
    """Everything ``calibgate monitor`` measured on one prediction log."""

    schema_version: int = MONITOR_SCHEMA_VERSION
    kind: Literal["calibgate.monitor"] = "calibgate.monitor"
    log: str
    log_sha256: str
    created_at: str
    policy: str | None = None
    policy_sha256: str | None = None
    window: Window
    low_confidence: float
    models: list[ModelStats]
    shadow: ShadowStats | None = None
    checks: list[MonitorCheck] = Field(default_factory=list)
    status: Literal["pass", "fail"]

    @field_validator("schema_version")
    @classmethod
    def _version(cls, value: int) -> int:
        return known_version(value, MONITOR_SCHEMA_VERSION, "monitor reports")

    @model_validator(mode="after")
    def _consistent(self):
        """Figures ``calibgate monitor`` cannot have written together are a hand-edited report (rollout evidence)."""
        from datetime import datetime, timezone

        w = self.window
        if not w.first_ts <= w.last_ts:
            raise ValueError("window.first_ts is after window.last_ts")
        for name, iso, ts in (("first", w.first, w.first_ts), ("last", w.last, w.last_ts)):
            if abs(_timestamp(iso, f"window.{name}") - ts) > 1:
                raise ValueError(f"window.{name} {iso} is not window.{name}_ts {ts}")
        created = _timestamp(self.created_at, "created_at")
        if created > datetime.now(timezone.utc).timestamp() + 300:
            raise ValueError(f"created_at {self.created_at} is in the future")
        if w.last_ts > created + 1:
            raise ValueError("the window ends after the report was created")
        for m in self.models:
            if m.answered + m.server_errors + m.client_errors != m.requests:  # more than the log: the sum below
                raise ValueError(f"{m.model} ({m.role}): requests {m.requests} do not add up (answered {m.answered}, "
                                 f"server errors {m.server_errors}, client errors {m.client_errors}; {w.lines} log lines)")
        if sum(m.requests for m in self.models) > w.lines:
            raise ValueError(f"the models answered more requests than the log has lines ({w.lines})")
        if self.shadow is not None and (self.shadow.requests > w.requests or self.shadow.requests > w.lines):
            raise ValueError(f"shadow requests {self.shadow.requests} exceed the window's {w.requests} requests")
        failing = any(c.status != "PASS" for c in self.checks)
        if failing != (self.status == "fail"):
            raise ValueError(f"status '{self.status}' contradicts the report's checks")
        return self

    def stats(self, model: str, role: str | None = None) -> ModelStats | None:
        for s in self.models:
            if s.model == model and (role is None or s.role == role):
                return s
        return None


def _timestamp(iso: str, name: str) -> float:
    """Unix time of an ISO 8601 string (UTC when it names no zone); ValueError naming the field otherwise."""
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} {iso!r} is not an ISO 8601 time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
