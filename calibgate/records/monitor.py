"""The monitor report (``calibgate monitor --json``, schema ``monitor.schema.json``).

:mod:`calibgate.serving.monitor` produces it from a prediction log;
``registry promote`` reads it as a rollout stage's evidence.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from calibgate.records.base import Record

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

    def stats(self, model: str, role: str | None = None) -> ModelStats | None:
        for s in self.models:
            if s.model == model and (role is None or s.role == role):
                return s
        return None
