"""The export record (``<run>/export/export.json``), read by the gate and the report."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

EXPORT_SCHEMA_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Latency(_Record):
    p50_ms: float
    p95_ms: float
    p99_ms: float
    batch1_runs: int
    throughput_batch32: float = Field(description="texts per second at batch 32")
    sequence_length: float = Field(description="mean tokens of the texts timed")
    threads: int


class ExportArtifact(_Record):
    path: str = Field(description="relative to the run directory")
    precision: str = Field(description="fp32 or int8")
    size_bytes: int
    sha256: str
    max_abs_logit_diff: float | None = Field(None, description="against torch on the parity texts (fp32)")
    argmax_agreement: float | None = Field(None, description="share of texts where argmax matches torch (int8)")
    accuracy: float | None = Field(None, description="on the test set, when one was given")
    latency: Latency | None = None


class ExportResult(_Record):
    schema_version: int = EXPORT_SCHEMA_VERSION
    run_id: str
    opset: int
    artifacts: list[ExportArtifact]
    torch_latency: Latency | None = Field(None, description="torch eager on the same texts, for comparison")
