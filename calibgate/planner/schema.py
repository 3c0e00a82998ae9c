"""The plan record (``calibgate plan --json``): a stable contract others build on.

Published as ``calibgate/schemas/plan.schema.json``; bump
``PLAN_SCHEMA_VERSION`` on any breaking change.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PLAN_SCHEMA_VERSION = 2  # 2: measured fine-tuning signal, prediction bases, stability

StrategyName = Literal["embedding-probe", "retrieval", "lora", "full-finetune", "collect-more-labels", "fix-labels"]
TRAINABLE = ("embedding-probe", "retrieval", "lora", "full-finetune")
Status = Literal["ok", "warn", "alert", "not-measured"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Interval(_Record):
    low: float
    high: float
    level: float = 0.95
    method: str = Field(description="how the interval was obtained, e.g. 'bootstrap over 200 resamples'")


class SignalBase(_Record):
    status: Status
    reading: str = Field(description="one sentence: what the value means for this task")
    evidence: list[str] = Field(default_factory=list, description="the measurements behind the reading")
    trust_warnings: list[str] = Field(default_factory=list, description="why the value may not be trusted")


class Separability(SignalBase):
    probe_accuracy: float
    probe_accuracy_ci: Interval | None = None
    probe_macro_f1: float
    knn_accuracy: float
    knn_k: int
    majority_accuracy: float
    folds: int


class Suspect(_Record):
    index: int = Field(description="0-based row index in the calibration file")
    line: int | None = Field(None, description="1-based line number in the file, when known")
    text: str
    given_label: str
    suggested_label: str
    score: float = Field(description="label quality in [0, 1]; low means likely mislabeled")


class ConfusionPair(_Record):
    given_label: str
    predicted_label: str
    count: int
    symmetric: bool = Field(description="confused both ways at similar rates: class overlap rather than label error")


class LabelNoise(SignalBase):
    estimated_rate: float = Field(ge=0, le=1, description="estimated share of wrong labels")
    estimated_rate_ci: Interval | None = None
    raw_issue_rate: float = Field(ge=0, le=1, description="share flagged by confident learning before the overlap correction")
    overlap_rate: float = Field(ge=0, le=1, description="share of flags explained by symmetric class overlap")
    method: str
    suspects: list[Suspect]
    confusions: list[ConfusionPair] = Field(default_factory=list)


class Imbalance(SignalBase):
    counts: dict[str, int]
    imbalance_ratio: float
    normalized_entropy: float
    min_count: int
    min_count_required: int
    classes_under_min: list[str]


class CurvePoint(_Record):
    n: int
    accuracy: float
    std: float
    repeats: int


class Starvation(SignalBase):
    curve: list[CurvePoint]
    fit: dict[str, float] = Field(description="learning-curve fit acc(n) = a - b * n^-c")
    target_size: int
    predicted_probe_accuracy_at_target: float
    predicted_probe_accuracy_ci: Interval | None = None
    predicted_ceiling: float
    gain_per_doubling: float = Field(description="accuracy points gained by doubling the data, at the calibration size")
    train_validation_gap: float


class DomainShift(SignalBase):
    measured: bool
    auc: float | None = None
    auc_ci: Interval | None = None
    p_value: float | None = None
    mmd: float | None = None
    n_production: int = 0
    shifted_classes: list[str] = Field(default_factory=list, description="classes production texts resemble less or more than calibration")


class Duplicates(SignalBase):
    exact_duplicate_groups: int
    near_duplicate_pairs: int
    conflicting_label_groups: int
    conflicting_examples: list[list[int]] = Field(default_factory=list)
    truncated: int = Field(description="texts longer than the model's maximum length")
    max_length: int


class FineTuning(SignalBase):
    """What tuning the encoder adds over the frozen probe: measured on the calibration set, or a prior (``--fast``)."""

    measured: bool
    method: str
    folds: int | None = None
    layers_tuned: int | None = None
    n_layers: int | None = None
    train_rows: int | None = Field(None, description="rows each cross-fitted model trained on")
    best_epoch: int | None = Field(None, description="epoch with the lowest out-of-fold log loss (0: the probe); reported only")
    probe_accuracy: float | None = Field(None, description="frozen probe, out of fold, on the same folds")
    tuned_accuracy: float | None = Field(None, description="tuned model, out of fold")
    probe_log_loss: float | None = None
    tuned_log_loss: float | None = None
    gain_at_calibration: float | None = Field(None, description="tuned minus probe accuracy, points, out of fold (paired)")
    gain_at_calibration_ci: Interval | None = None
    recovered_share: float = Field(description="share of the probe's remaining error that full fine-tuning is predicted to recover")
    recovered_share_ci: Interval | None = None
    predicted_gain_at_target: float = Field(description="full fine-tuning minus probe accuracy at the target size, points")
    predicted_gain_at_target_ci: Interval | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    full_step_examples_per_second: float | None = Field(None, description="measured full-model training throughput (cost model)")


class Signals(_Record):
    separability: Separability
    label_noise: LabelNoise
    imbalance: Imbalance
    starvation: Starvation
    domain_shift: DomainShift
    duplicates: Duplicates
    fine_tuning: FineTuning | None = Field(None, description="measured (or prior) gain of tuning the encoder")


class Candidate(_Record):
    strategy: StrategyName
    lora_rank: int | None = None
    predicted_accuracy: float | None = Field(description="predicted test accuracy when trained at the target size")
    predicted_accuracy_ci: Interval | None = None
    estimated_train_seconds: float | None
    latency_class: str = Field(description="'fast' (frozen encoder + head), 'encoder' (one encoder pass), ...")
    eligible: bool = True
    basis: Literal["measured", "prior", "measured+prior"] = Field(
        "measured", description="measured on the calibration set, a prior, or a prior applied to a measurement"
    )
    note: str = ""


class Stability(_Record):
    """How often re-planning on bootstrap resamples of the calibration set picks the same candidate."""

    resamples: int
    agreement: float = Field(ge=0, le=1, description="share of resamples choosing the same candidate")
    choices: dict[str, float] = Field(description="share of resamples choosing each candidate")
    stable: bool
    labels_per_class_to_settle: int | None = Field(
        None, description="calibration labels per class at which the choice is predicted to settle (when unstable)"
    )
    reading: str


class Recommendation(_Record):
    strategy: StrategyName
    lora_rank: int | None = None
    modifiers: list[str] = Field(default_factory=list)
    rationale: list[str] = Field(description="decision steps, each naming the signal and threshold behind it")
    candidates: list[Candidate]
    tolerance: float = Field(description="accuracy points within which a cheaper candidate is preferred")
    chosen_candidate: str = Field(description="strategy[/rank] of the candidate the plan trains")
    stability: Stability | None = None


class DatasetInfo(_Record):
    n: int
    n_classes: int
    label_names: list[str]
    source: str
    sha256: str
    dvc_md5: str | None
    dvc_state: str
    target_size: int
    production_n: int | None = None


class Plan(_Record):
    schema_version: int = PLAN_SCHEMA_VERSION
    calibgate_version: str
    created_at: str
    model: str
    dataset: DatasetInfo
    signals: Signals
    recommendation: Recommendation
    warnings: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    policy: str | None = Field(None, description="policy file and sha256 the thresholds came from")
