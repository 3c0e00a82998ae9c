"""The evaluation record (``<run>/evaluation.json``), read by the gate and the report."""

from __future__ import annotations

from pydantic import Field

from calibgate.records.base import Record

EVALUATION_SCHEMA_VERSION = 1


class MetricInterval(Record):
    low: float
    high: float
    level: float = 0.95
    method: str = "bootstrap"


class ClassMetrics(Record):
    precision: float
    recall: float
    f1: float
    support: int


class SliceResult(Record):
    name: str
    source: str
    n: int
    accuracy: float
    macro_f1: float
    accuracy_ci: MetricInterval | None = None


class TestSetInfo(Record):
    source: str
    sha256: str = Field(description="sha256 of the (text, label) rows in order; the gate pairs predictions by it")
    n: int
    dvc_md5: str | None = None


class EvaluationResult(Record):
    schema_version: int = EVALUATION_SCHEMA_VERSION
    run_id: str
    strategy: str
    lora_rank: int | None = None
    label_names: list[str]
    test: TestSetInfo
    metrics: dict[str, float] = Field(description="accuracy, macro_f1, ece, label_validity_rate, and any policy-named metrics")
    intervals: dict[str, MetricInterval] = Field(default_factory=dict)
    per_class: dict[str, ClassMetrics]
    confusion_matrix: list[list[int]] = Field(description="rows: true label, columns: predicted, in label_names order")
    labels: list[int] = Field(description="true label index per test row")
    predictions: list[int] = Field(description="predicted label index per test row, for paired tests (McNemar)")
    slices: list[SliceResult] = Field(default_factory=list)
    base_model: dict[str, float] | None = Field(None, description="the frozen-embedding probe on the same test set")
    seconds: float | None = None
    # added compatibly in schema_version 1 (all optional)
    base_predictions: list[int] | None = Field(None, description="the base probe's prediction per test row, for paired tests")
    confidences: list[float] | None = Field(None, description="top-class probability per test row")
    warnings: list[str] = Field(default_factory=list)
