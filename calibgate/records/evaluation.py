"""The evaluation record (``<run>/evaluation.json``), read by the gate and the report."""

from __future__ import annotations

import math

from pydantic import Field, field_validator, model_validator

from calibgate.records.base import Record
from calibgate.records.versions import known_version

EVALUATION_SCHEMA_VERSION = 1
RATE_METRICS = ("accuracy", "macro_f1", "ece", "label_validity_rate")  # written by every evaluation, each in [0, 1]
_TOLERANCE = 1e-6


class MetricInterval(Record):
    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)
    level: float = Field(0.95, gt=0, lt=1)
    method: str = "bootstrap"

    @model_validator(mode="after")
    def _ordered(self):
        if self.low > self.high:
            raise ValueError(f"interval low {self.low} is above high {self.high}")
        return self


class ClassMetrics(Record):
    precision: float = Field(ge=0, le=1)
    recall: float = Field(ge=0, le=1)
    f1: float = Field(ge=0, le=1)
    support: int = Field(ge=0)


class SliceResult(Record):
    name: str
    source: str
    n: int = Field(ge=0)
    accuracy: float = Field(ge=0, le=1)
    macro_f1: float = Field(ge=0, le=1)
    accuracy_ci: MetricInterval | None = None


class TestSetInfo(Record):
    source: str
    sha256: str = Field(description="sha256 of the (text, label) rows in order; the gate pairs predictions by it")
    n: int = Field(ge=0)
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

    @field_validator("schema_version")
    @classmethod
    def _version(cls, value: int) -> int:
        return known_version(value, EVALUATION_SCHEMA_VERSION, "evaluation records")

    @model_validator(mode="after")
    def _consistent(self):
        """The figures the gate compares are the ones the per-row predictions give: an edited metric is refused.

        A metric outside its range, an infinity, a prediction list of another length than the test set, or an
        accuracy that is not the share of predictions matching the labels cannot come from 'calibgate evaluate'.
        """
        for key, value in self.metrics.items():
            if not math.isfinite(value):
                raise ValueError(f"metric '{key}' is {value}, not a number")
            if key in RATE_METRICS and not 0.0 <= value <= 1.0:
                raise ValueError(f"metric '{key}' is {value}, outside [0, 1]")
        k, n = len(self.label_names), len(self.labels)
        if len(self.predictions) != n or n != self.test.n:  # no rows under a test set of 400 passed every floor it claimed
            raise ValueError(f"{len(self.predictions)} predictions and {n} labels for a test set of {self.test.n} rows")
        for name, rows in (("base_predictions", self.base_predictions), ("confidences", self.confidences)):
            if rows is not None and len(rows) != n:
                raise ValueError(f"{name} has {len(rows)} rows, the test set {n}")
        if any(not 0 <= label < k for label in self.labels):
            raise ValueError(f"a label index outside the {k} label names")
        if self.confidences is not None and any(not 0.0 <= c <= 1.0 for c in self.confidences):
            raise ValueError("a confidence outside [0, 1]")
        if n:
            matches = sum(p == t for p, t in zip(self.predictions, self.labels)) / n
            if "accuracy" in self.metrics and abs(self.metrics["accuracy"] - matches) > _TOLERANCE:
                raise ValueError(f"metric 'accuracy' is {self.metrics['accuracy']}, but the predictions match {matches:.6f} of the labels")
            valid = sum(0 <= p < k for p in self.predictions) / n
            if "label_validity_rate" in self.metrics and abs(self.metrics["label_validity_rate"] - valid) > _TOLERANCE:
                raise ValueError(f"metric 'label_validity_rate' is {self.metrics['label_validity_rate']}, but {valid:.6f} of the predictions are labels")
        self._per_class_follows_rows()
        if self.confusion_matrix and (len(self.confusion_matrix) != k or any(len(row) != k or min(row) < 0 for row in self.confusion_matrix)):
            raise ValueError(f"the confusion matrix is not {k} x {k} counts")
        return self

    def _per_class_follows_rows(self) -> None:
        """The confusion matrix, each class's support, precision, recall and F1, and macro-F1 are the rows' (as
        ``calibgate.evaluation.metrics.score`` computes them: predictions outside the label names count in no cell):
        an edited recall passed class_recall_floor, an edited macro-F1 its floor, and a class the policy names but the
        labels lack went unchecked."""
        if set(self.per_class) != set(self.label_names):
            odd = sorted(set(self.per_class) ^ set(self.label_names))
            raise ValueError(f"per_class does not list exactly the label names (differs in: {', '.join(odd[:5])})")
        k = len(self.label_names)
        cm = [[0] * k for _ in range(k)]
        for label, predicted in zip(self.labels, self.predictions):
            if 0 <= predicted < k:
                cm[label][predicted] += 1
        if self.confusion_matrix and self.confusion_matrix != cm:
            raise ValueError("the confusion matrix is not the one the test rows' labels and predictions give")
        f1s, present = [], []
        for i, name in enumerate(self.label_names):
            support, predicted, right = sum(cm[i]), sum(row[i] for row in cm), cm[i][i]
            precision = right / predicted if predicted else 0.0
            recall = right / support if support else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            f1s.append(f1)
            present.append(support + predicted > 0)
            got = self.per_class[name]
            if got.support != support or any(abs(value - want) > _TOLERANCE for value, want in
                                              ((got.recall, recall), (got.precision, precision), (got.f1, f1))):
                raise ValueError(f"per_class '{name}' has support {got.support}, precision {got.precision}, recall "
                                 f"{got.recall} and F1 {got.f1}, but its test rows give {support}, {precision:.6f}, "
                                 f"{recall:.6f} and {f1:.6f}")
        kept = [f1 for f1, here in zip(f1s, present) if here]
        macro = sum(kept) / len(kept) if kept else 0.0
        if self.labels and "macro_f1" in self.metrics and abs(self.metrics["macro_f1"] - macro) > _TOLERANCE:
            raise ValueError(f"metric 'macro_f1' is {self.metrics['macro_f1']}, but the test rows give {macro:.6f}")
