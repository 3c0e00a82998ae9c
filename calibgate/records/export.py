"""The export record (``<run>/export/export.json``), read by the gate, the report and serving.

Version 1 fields are unchanged; the optional fields after them (``exporter``,
``parity_texts``, ``tokenizer``, ``accuracy_delta``...) were added
compatibly: a record without them still validates.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from calibgate.records.base import Record
from calibgate.records.versions import known_version

EXPORT_SCHEMA_VERSION = 1


class Latency(Record):
    p50_ms: float = Field(gt=0, allow_inf_nan=False)
    p95_ms: float = Field(gt=0, allow_inf_nan=False)
    p99_ms: float = Field(gt=0, allow_inf_nan=False)
    batch1_runs: int = Field(ge=1)
    throughput_batch32: float = Field(gt=0, allow_inf_nan=False, description="texts per second at batch 32")
    sequence_length: float = Field(ge=0, allow_inf_nan=False, description="mean tokens of the texts timed")
    threads: int = Field(ge=1)
    warmup_runs: int | None = Field(None, description="untimed runs before timing")
    includes_tokenization: bool | None = Field(None, description="False: model time only, inputs pre-tokenized")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.p50_ms <= self.p95_ms <= self.p99_ms:
            raise ValueError(f"percentiles out of order: p50 {self.p50_ms}, p95 {self.p95_ms}, p99 {self.p99_ms} ms")
        return self


class ExportArtifact(Record):
    path: str = Field(description="relative to the run directory")
    precision: str = Field(description="fp32 or int8")
    size_bytes: int = Field(ge=1)
    sha256: str
    max_abs_logit_diff: float | None = Field(None, ge=0, allow_inf_nan=False, description="against torch on the parity texts (fp32)")
    argmax_agreement: float | None = Field(None, ge=0, le=1, description="share of texts where argmax matches torch (int8)")
    accuracy: float | None = Field(None, ge=0, le=1, description="on the test set, when one was given")
    latency: Latency | None = None
    accuracy_delta: float | None = Field(None, ge=-1, le=1, description="accuracy minus the fp32 artifact's accuracy (int8)")


class TokenizerSpec(Record):
    """How serving turns texts into ``input_ids`` / ``attention_mask`` exactly as transformers did at export."""

    path: str = Field(description="tokenizers-library JSON, relative to the run directory")
    max_length: int = Field(description="truncation length (the run manifest's max_length)")
    padding_side: Literal["left", "right"]
    pad_token_id: int
    pad_token: str
    truncation_side: Literal["left", "right"] = "right"


class ExportResult(Record):
    schema_version: int = EXPORT_SCHEMA_VERSION
    run_id: str
    opset: int
    artifacts: list[ExportArtifact]
    torch_latency: Latency | None = Field(None, description="torch eager on the same texts, for comparison")
    exporter: Literal["dynamo", "torchscript"] | None = Field(None, description="torch.onnx.export path used")
    parity_texts: int | None = Field(None, description="texts the torch parity and argmax agreement used")
    parity_source: str | None = Field(None, description="where the parity texts came from")
    test_texts: int | None = Field(None, description="size of the test set the accuracies use")
    tokenizer: TokenizerSpec | None = None
    created_at: str | None = None

    @field_validator("schema_version")
    @classmethod
    def _version(cls, value: int) -> int:
        return known_version(value, EXPORT_SCHEMA_VERSION, "export records")

    def artifact(self, precision: str) -> ExportArtifact | None:
        return next((a for a in self.artifacts if a.precision == precision), None)
