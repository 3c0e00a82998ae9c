"""The plan record (``calibgate plan --json``): a stable contract others build on.

Published as ``calibgate/schemas/plan.schema.json``; bump
``PLAN_SCHEMA_VERSION`` on any breaking change.
"""

from __future__ import annotations

from typing import ClassVar, Iterator, Literal

from pydantic import ConfigDict, Field

from calibgate.records.base import Record
from calibgate.records.strategies import StrategyName

PLAN_SCHEMA_VERSION = 2  # 2: measured fine-tuning signal, prediction bases, stability

Status = Literal["ok", "warn", "alert", "not-measured"]


class Interval(Record):
    low: float
    high: float
    level: float = 0.95
    method: str = Field(description="how the interval was obtained, e.g. 'bootstrap over 200 resamples'")


class SignalBase(Record):
    """What every signal record has; ``title`` and :meth:`value` are how a report shows any signal."""

    title: ClassVar[str] = ""

    status: Status
    reading: str = Field(description="one sentence: what the value means for this task")
    evidence: list[str] = Field(default_factory=list, description="the measurements behind the reading")
    trust_warnings: list[str] = Field(default_factory=list, description="why the value may not be trusted")

    def value(self) -> str:
        """The signal's headline figure, a few words."""
        return ""


class RegisteredSignal(SignalBase):
    """The record of a signal registered beside the built-in ones: the common fields, and its own kept as they are."""

    model_config = ConfigDict(extra="allow")

    def value(self) -> str:
        """Its first three scalar fields, ``name value``: a registered class's own formatting does not survive JSON."""
        scalars = [(k, v) for k, v in (self.__pydantic_extra__ or {}).items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
        return ", ".join(f"{k.replace('_', ' ')} {v:.3g}" if isinstance(v, float) else f"{k.replace('_', ' ')} {v}" for k, v in scalars[:3])


class Separability(SignalBase):
    title: ClassVar[str] = "Separability"

    probe_accuracy: float
    probe_accuracy_ci: Interval | None = None
    probe_macro_f1: float
    knn_accuracy: float
    knn_k: int
    majority_accuracy: float
    folds: int

    def value(self) -> str:
        return f"probe {self.probe_accuracy:.1%}, kNN {self.knn_accuracy:.1%}"


class Suspect(Record):
    index: int = Field(description="0-based row index in the calibration file")
    line: int | None = Field(None, description="1-based line number in the file, when known")
    text: str
    given_label: str
    suggested_label: str
    score: float = Field(description="label quality in [0, 1]; low means likely mislabeled")


class ConfusionPair(Record):
    given_label: str
    predicted_label: str
    count: int
    symmetric: bool = Field(description="confused both ways at similar rates: class overlap rather than label error")


class LabelNoise(SignalBase):
    title: ClassVar[str] = "Label noise"

    estimated_rate: float = Field(ge=0, le=1, description="estimated share of wrong labels")
    estimated_rate_ci: Interval | None = None
    raw_issue_rate: float = Field(ge=0, le=1, description="share flagged by confident learning before the overlap correction")
    overlap_rate: float = Field(ge=0, le=1, description="share of flags explained by symmetric class overlap")
    method: str
    suspects: list[Suspect]
    confusions: list[ConfusionPair] = Field(default_factory=list)

    def value(self) -> str:
        return f"{self.estimated_rate:.1%} (raw CL {self.raw_issue_rate:.1%})"


class Imbalance(SignalBase):
    title: ClassVar[str] = "Class imbalance"

    counts: dict[str, int]
    imbalance_ratio: float
    normalized_entropy: float
    min_count: int
    min_count_required: int
    classes_under_min: list[str]

    def value(self) -> str:
        return f"ratio {self.imbalance_ratio:.1f}x, min {self.min_count}"


class CurvePoint(Record):
    n: int
    accuracy: float
    std: float
    repeats: int


class Starvation(SignalBase):
    title: ClassVar[str] = "Data starvation"

    curve: list[CurvePoint]
    fit: dict[str, float] = Field(description="learning-curve fit acc(n) = a - b * n^-c")
    target_size: int
    predicted_probe_accuracy_at_target: float
    predicted_probe_accuracy_ci: Interval | None = None
    predicted_ceiling: float
    gain_per_doubling: float = Field(description="accuracy points gained by doubling the data, at the calibration size")
    train_validation_gap: float

    def value(self) -> str:
        return f"+{self.gain_per_doubling:.1f} pts/doubling"


class DomainShift(SignalBase):
    title: ClassVar[str] = "Domain shift"

    measured: bool
    auc: float | None = None
    auc_ci: Interval | None = None
    p_value: float | None = None
    mmd: float | None = None
    n_production: int = 0
    shifted_classes: list[str] = Field(default_factory=list, description="classes production texts resemble less or more than calibration")

    def value(self) -> str:
        return "not measured" if not self.measured else f"AUC {self.auc:.2f}, p={self.p_value:.3f}"


class Duplicates(SignalBase):
    title: ClassVar[str] = "Duplicates & truncation"

    exact_duplicate_groups: int
    near_duplicate_pairs: int
    conflicting_label_groups: int
    conflicting_examples: list[list[int]] = Field(default_factory=list)
    exact_conflict_rows: int = Field(0, description="rows whose exact text (case and spaces aside) another row carries "
                                     "with another label: certain conflicts, unlike near duplicates (added compatibly)")
    truncated: int = Field(description="texts longer than the model's maximum length")
    max_length: int

    def value(self) -> str:
        return f"{self.exact_duplicate_groups} exact, {self.conflicting_label_groups} conflicting, {self.truncated} truncated"


class FineTuning(SignalBase):
    """What tuning the encoder adds over the frozen probe: measured on the calibration set, or a prior (``--fast``).

    Measured: a probe on the encoder's per-layer hidden states, cross-fitted on the frozen probe's folds
    (:mod:`calibgate.training.hidden_view`); the ``tuned_*`` fields are that view's.
    """

    title: ClassVar[str] = "Fine-tuning gain"

    measured: bool
    method: str
    folds: int | None = None
    layers_tuned: int | None = Field(None, description="encoder blocks trained by the measurement (0: none, the hidden-state probe)")
    n_layers: int | None = Field(None, description="blocks in the encoder")
    train_rows: int | None = Field(None, description="rows each cross-fitted model trained on")
    best_epoch: int | None = Field(None, description="not set by the hidden-state measurement (kept for older plans)")
    probe_accuracy: float | None = Field(None, description="frozen probe, out of fold, on the same folds")
    tuned_accuracy: float | None = Field(None, description="the measurement's view (the hidden-state probe), out of fold")
    probe_log_loss: float | None = None
    tuned_log_loss: float | None = None
    gain_at_calibration: float | None = Field(None, description="view minus probe accuracy, points, out of fold (paired)")
    gain_at_calibration_ci: Interval | None = None
    recovered_share: float = Field(description="share of the probe's remaining error that full fine-tuning is predicted to recover (implied by the predicted log-odds shift)")
    recovered_share_ci: Interval | None = None
    predicted_gain_at_target: float = Field(description="full fine-tuning minus probe accuracy at the target size, points")
    predicted_gain_at_target_ci: Interval | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    full_step_examples_per_second: float | None = Field(None, description="measured full-model training throughput (cost model)")

    def value(self) -> str:
        measured = f"measured {self.gain_at_calibration:+.1f} pts now; " if self.measured else "prior; "
        return f"{measured}{self.predicted_gain_at_target:+.1f} pts at target"


class Signals(Record):
    """Every signal's record, keyed by the name it is registered under (:func:`calibgate.signals.register_signal`).

    The built-in signals are typed fields; a signal registered beside them is kept under its name as a
    :class:`RegisteredSignal`, so a plan carries whatever is registered and a report renders all of it.
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, RegisteredSignal] = Field(init=False)

    separability: Separability
    label_noise: LabelNoise
    imbalance: Imbalance
    starvation: Starvation
    domain_shift: DomainShift
    duplicates: Duplicates
    fine_tuning: FineTuning | None = Field(None, description="measured (or prior) gain of tuning the encoder")

    def items(self) -> Iterator[tuple[str, SignalBase]]:
        """(name, record) of every signal present: the built-in ones in their order, then registered ones."""
        for name in type(self).model_fields:
            record = getattr(self, name)
            if record is not None:
                yield name, record
        yield from (self.__pydantic_extra__ or {}).items()

    @staticmethod
    def title_of(name: str, record: SignalBase) -> str:
        return record.title or name.replace("_", " ").capitalize()


class Candidate(Record):
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


class Stability(Record):
    """How often re-planning on bootstrap resamples of the calibration set picks the same candidate."""

    resamples: int
    agreement: float = Field(ge=0, le=1, description="share of resamples choosing the same candidate")
    choices: dict[str, float] = Field(description="share of resamples choosing each candidate")
    stable: bool
    labels_per_class_to_settle: int | None = Field(
        None, description="calibration labels per class at which the choice is predicted to settle (when unstable)"
    )
    reading: str


class Recommendation(Record):
    strategy: StrategyName
    lora_rank: int | None = None
    modifiers: list[str] = Field(default_factory=list)
    rationale: list[str] = Field(description="decision steps, each naming the signal and threshold behind it")
    candidates: list[Candidate]
    tolerance: float = Field(description="accuracy points within which a cheaper candidate is preferred")
    chosen_candidate: str = Field(description="strategy[/rank] of the candidate the plan trains")
    stability: Stability | None = None


class DatasetInfo(Record):
    n: int
    n_classes: int
    label_names: list[str]
    source: str
    sha256: str
    dvc_md5: str | None
    dvc_state: str
    target_size: int
    production_n: int | None = None


class Plan(Record):
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
