"""Gate checks: small classes registered by name; the policy's ``checks:`` keys are these names.

Each check reads :class:`GateInputs` and returns :class:`CheckResult` records,
never raises for a bad candidate: a value it cannot measure (missing metric,
missing export, mismatched test sets) is an ``ERROR`` result, which blocks.

To add a check::

    @register_check
    class MyCheck(Check):
        name = "my_check"
        config_model = MyRule          # a pydantic model, extra="forbid"
        def run(self, config, inputs): return [self.result(...)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, Field, create_model, model_validator

from calibgate.records.evaluation import RATE_METRICS, EvaluationResult
from calibgate.records.export import ExportArtifact, ExportResult
from calibgate.records.plan import Plan
from calibgate.policy import stats
from calibgate.records.decision import CheckResult, CheckStatus
from calibgate.policy.rules import CeilingRule, FloorRule, MetricRule, Rule
from calibgate.settings import MAX_BOOTSTRAP, MAX_SEED

CHECKS: dict[str, type[Check]] = {}


def register_check(cls: type[Check]) -> type[Check]:
    """Class decorator: make a check available to policies under ``cls.name``."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a 'name'")
    if cls.name in CHECKS and CHECKS[cls.name] is not cls:
        raise ValueError(f"a check named {cls.name!r} is already registered ({CHECKS[cls.name].__name__})")
    CHECKS[cls.name] = cls
    return cls


@dataclass(frozen=True)
class Range:
    """The values a threshold may take: the measured quantity's own range (a rate lies in [0, 1], a latency is > 0).

    A threshold outside it is never a stricter or looser setting, only a typo
    that silently turns a check off (``min: -0.5``) or makes it unpassable.
    """

    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    lt: float | None = None

    def constraints(self) -> dict[str, float]:
        return {k: v for k, v in (("ge", self.ge), ("le", self.le), ("gt", self.gt), ("lt", self.lt)) if v is not None}

    def problem(self, value: float) -> str | None:
        """Why ``value`` is outside the range, or None."""
        for op, bound, ok in (("<", self.ge, lambda b: value >= b), (">", self.le, lambda b: value <= b),
                              ("<=", self.gt, lambda b: value > b), (">=", self.lt, lambda b: value < b)):
            if bound is not None and not ok(bound):
                return f"{value:g} {op} {bound:g}"
        return None


UNIT = Range(ge=0, le=1)  # rates, accuracies, recalls, calibration error, and drops of those
POSITIVE = Range(gt=0)    # latencies and sizes
AUC_RANGE = Range(ge=0.5, le=1)  # a domain-classifier AUC: 0.5 is indistinguishable

# metrics the evaluation writes, by key, with their range (for the 'metrics' check; other keys are unbounded)
METRIC_RANGES: dict[str, Range] = {key: UNIT for key in RATE_METRICS}
# the metric keys 'calibgate evaluate' always writes; a --metric module may add any other
BUILTIN_METRICS: tuple[str, ...] = tuple(METRIC_RANGES)


@dataclass(frozen=True)
class GateInputs:
    """Everything a check may read; built by :func:`calibgate.policy.api.gate`'s caller."""

    candidate: EvaluationResult
    candidate_export: ExportResult | None = None
    plan: Plan | None = None
    baseline: EvaluationResult | None = None
    baseline_export: ExportResult | None = None

    def paired_problem(self) -> str | None:
        """Why candidate and baseline predictions cannot be compared row by row, or None."""
        c, b = self.candidate, self.baseline
        if b is None:
            return None
        if c.test.sha256 != b.test.sha256:
            return (
                f"candidate and baseline were evaluated on different test sets (sha256 {c.test.sha256[:12]}... vs "
                f"{b.test.sha256[:12]}...); re-evaluate the baseline on the candidate's test set (calibgate registry pull "
                f"<version> --to DIR, calibgate evaluate --model DIR --unseen-labels-as-errors) and pass --baseline DIR"
            )
        if len(c.predictions) != len(b.predictions) or len(c.predictions) != len(c.labels) or len(b.labels) != len(c.labels):
            return "candidate and baseline labels/predictions are not aligned row by row despite the same test sha256"
        if [c.label_names[i] for i in c.labels] != [b.label_names[i] for i in b.labels]:
            return "candidate and baseline give the same test rows other labels (by name) despite the same test sha256"
        return None

    def baseline_predictions(self) -> tuple[list[int], int]:
        """The baseline's predictions in the candidate's label indices, and the number of classes to score them on.

        A candidate that adds or renames a class has other label_names than production: rows pair by label *name*
        (:meth:`paired_problem` checked the same names row by row), and a baseline prediction of a class the candidate
        lacks is wrong on every row, so it maps to one extra index past the candidate's classes.
        """
        c, b = self.candidate, self.baseline
        if c.label_names == b.label_names:
            return list(b.predictions), len(c.label_names)
        index = {name: i for i, name in enumerate(c.label_names)}
        extra = len(c.label_names)
        mapped = [index.get(b.label_names[p], extra) if 0 <= p < len(b.label_names) else extra for p in b.predictions]
        return mapped, extra + (extra in mapped)


class Check:
    name: ClassVar[str] = ""
    config_model: ClassVar[type[BaseModel]] = Rule
    section_annotation: ClassVar[Any] = None  # type of the policy section when it is not config_model
    description: ClassVar[str] = ""
    # threshold field -> the range its value must lie in; applied to the policy section by policy_model()
    ranges: ClassVar[dict[str, Range]] = {}

    @classmethod
    def policy_model(cls) -> type[BaseModel]:
        """``config_model`` with this check's ranges as field constraints (so the JSON Schema shows them too)."""
        if not cls.ranges:
            return cls.config_model
        fields: dict[str, Any] = {}
        for field_name, rng in cls.ranges.items():
            base = cls.config_model.model_fields[field_name]
            optional = not base.is_required()
            annotation = Annotated[float, Field(**rng.constraints())]
            fields[field_name] = (annotation | None if optional else annotation,
                                  Field(base.default if optional else ..., description=base.description))
        model_name = "".join(p.title() for p in cls.name.split("_")) + "Config"
        return create_model(model_name, __base__=cls.config_model, __doc__=cls.config_model.__doc__, **fields)

    def run(self, config: Any, inputs: GateInputs) -> list[CheckResult]:
        raise NotImplementedError

    def result(self, status: CheckStatus, message: str, config: BaseModel, *, id: str | None = None,
               value=None, threshold=None, baseline=None) -> CheckResult:
        return CheckResult(
            id=id or self.name, status=status, value=value, threshold=threshold, baseline=baseline, message=message,
            config=config.model_dump(exclude_none=True),
        )


def _fail(rule: Rule) -> CheckStatus:
    return "WARN" if rule.severity == "warn" else "FAIL"


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


class _MetricFloor(Check):
    metric: ClassVar[str] = ""
    config_model = FloorRule
    ranges = {"min": UNIT, "max_drop": UNIT}

    def run(self, config: FloorRule, inputs: GateInputs) -> list[CheckResult]:
        value = inputs.candidate.metrics.get(self.metric)
        if value is None:
            return [self.result("ERROR", f"evaluation has no metric '{self.metric}'; re-run calibgate evaluate", config)]
        base = None if inputs.baseline is None else inputs.baseline.metrics.get(self.metric)
        if config.max_drop is not None and inputs.baseline is not None:
            problem = inputs.paired_problem() if inputs.baseline.test.sha256 != inputs.candidate.test.sha256 else None
            if problem:
                return [self.result("ERROR", problem, config, value=value)]
            if base is None:
                return [self.result("ERROR", f"baseline evaluation has no metric '{self.metric}'", config, value=value)]
        threshold = config.effective(base)
        if threshold is None:  # relative-only rule and no baseline yet
            return [self.result("SKIPPED", f"{self.metric} {_fmt(value)}: no baseline, relative rule not applied", config, value=value)]
        ok = value >= threshold
        return [self.result(
            "PASS" if ok else _fail(config),
            f"{self.metric} {_fmt(value)} {'>=' if ok else '<'} threshold {_fmt(threshold)}"
            + (f" (production {_fmt(base)})" if base is not None else ""),
            config, value=value, threshold=threshold, baseline=base,
        )]


@register_check
class AccuracyFloor(_MetricFloor):
    name = "accuracy_floor"
    metric = "accuracy"
    description = "test accuracy floor, absolute and/or relative to production"


@register_check
class MacroF1Floor(_MetricFloor):
    name = "macro_f1_floor"
    metric = "macro_f1"
    description = "macro-F1 floor, absolute and/or relative to production"


@register_check
class LabelValidityFloor(_MetricFloor):
    name = "label_validity_floor"
    metric = "label_validity_rate"
    description = "share of outputs that are a valid label (generative heads), absolute and/or relative"


class ClassRecallRule(Rule):
    min: float | None = Field(None, ge=0, le=1, description="recall floor for every class")
    classes: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict, description="per-class floors overriding 'min'", json_schema_extra={"bound": "min"}
    )
    max_drop: float | None = Field(None, ge=0, le=1, description="largest per-class recall drop below production")

    @model_validator(mode="after")
    def _one_bound(self):
        if self.min is None and not self.classes and self.max_drop is None:
            raise ValueError("set 'min', 'classes' or 'max_drop'")
        return self


@register_check
class ClassRecallFloor(Check):
    name = "class_recall_floor"
    config_model = ClassRecallRule
    description = "recall floor for each class (one result per class)"

    def run(self, config: ClassRecallRule, inputs: GateInputs) -> list[CheckResult]:
        per_class = inputs.candidate.per_class
        out = [
            self.result("ERROR", f"policy names class '{name}' which the evaluation does not have", config, id=f"{self.name}:{name}")
            for name in config.classes if name not in per_class
        ]
        mismatch = None
        if config.max_drop is not None and inputs.baseline is not None and inputs.baseline.test.sha256 != inputs.candidate.test.sha256:
            mismatch = inputs.paired_problem()
        for name in inputs.candidate.label_names:
            cid = f"{self.name}:{name}"
            if name not in per_class:
                out.append(self.result("ERROR", f"evaluation has no per-class metrics for '{name}'", config, id=cid))
                continue
            if per_class[name].support == 0:
                out.append(self.result("ERROR", f"the test set has no examples of '{name}': its recall cannot be measured",
                                       config, id=cid))
                continue
            if mismatch:
                out.append(self.result("ERROR", mismatch, config, id=cid, value=per_class[name].recall))
                continue
            value = per_class[name].recall
            base_cls = None if inputs.baseline is None else inputs.baseline.per_class.get(name)
            base = None if base_cls is None else base_cls.recall
            floor = FloorRule.model_construct(min=config.classes.get(name, config.min), max_drop=config.max_drop)
            threshold = floor.effective(base)
            if threshold is None:
                out.append(self.result("SKIPPED", f"recall of {name} {_fmt(value)}: no floor applies", config, id=cid, value=value))
                continue
            ok = value >= threshold
            out.append(self.result(
                "PASS" if ok else _fail(config),
                f"recall of {name} {_fmt(value)} {'>=' if ok else '<'} floor {_fmt(threshold)}", config,
                id=cid, value=value, threshold=threshold, baseline=base,
            ))
        return out


class RegressionRule(Rule):
    metric: Literal["accuracy", "macro_f1"] = "accuracy"
    max_drop: float = Field(0.0, ge=0, description="drop below production tolerated without any test (metric units)")
    test: Literal["mcnemar", "bootstrap"] = Field("mcnemar", description="mcnemar (exact, accuracy only) or bootstrap")
    alpha: float = Field(0.05, gt=0, lt=1, description="one-sided significance level; a drop with p >= alpha only warns")
    resamples: int = Field(2000, ge=100, le=MAX_BOOTSTRAP, description="bootstrap resamples")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the bootstrap (unsigned 32-bit)")

    @model_validator(mode="after")
    def _mcnemar_accuracy(self):
        if self.test == "mcnemar" and self.metric != "accuracy":
            raise ValueError("McNemar's test compares error rates: use metric 'accuracy', or test 'bootstrap'")
        return self


@register_check
class Regression(Check):
    name = "regression"
    config_model = RegressionRule
    ranges = {"max_drop": UNIT}
    description = "no significant regression against production on the same test rows (McNemar or paired bootstrap)"

    def run(self, config: RegressionRule, inputs: GateInputs) -> list[CheckResult]:
        if inputs.baseline is None:
            return [self.result("SKIPPED", "no baseline: the first model is judged on absolute thresholds only", config)]
        problem = inputs.paired_problem()
        if problem:
            return [self.result("ERROR", problem, config)]
        c = inputs.candidate
        baseline, n_classes = inputs.baseline_predictions()
        if config.test == "mcnemar":
            t = stats.mcnemar_exact(c.labels, c.predictions, baseline)
        else:
            t = stats.paired_bootstrap(
                c.labels, c.predictions, baseline, metric=config.metric,
                n_classes=n_classes, resamples=config.resamples, seed=config.seed,
            )
        drop = t.baseline - t.candidate
        threshold = t.baseline - config.max_drop
        head = f"{config.metric} {t.candidate:.4f} vs production {t.baseline:.4f} (drop {drop:+.4f}, {t.method} p={t.p_value:.3g}; {t.detail})"
        if drop <= 0:
            status, tail = "PASS", "not worse than production"
        elif drop <= config.max_drop:
            status, tail = "PASS", f"within the tolerated drop {config.max_drop:g}"
        elif t.p_value < config.alpha:
            status, tail = _fail(config), f"significant at alpha={config.alpha:g}"
        else:
            status, tail = "WARN", f"not significant at alpha={config.alpha:g}: within noise"
        return [self.result(status, f"{head}: {tail}", config, value=t.candidate, threshold=threshold, baseline=t.baseline)]


class _ArtifactCeilingRule(CeilingRule):
    precision: Literal["fp32", "int8"] | None = Field(
        None, description="exported artifact to judge; default: the best one (lowest latency / smallest file)",
        json_schema_extra={"bound": "named"},  # a named artifact made 'the best one': weaker
    )


class LatencyRule(_ArtifactCeilingRule):
    """``max`` is milliseconds of p95 single-text latency."""


class SizeRule(_ArtifactCeilingRule):
    """``max`` is bytes of the exported model file."""


class _ArtifactCeiling(Check):
    unit: ClassVar[str] = ""
    ranges = {"max": POSITIVE}

    def measure(self, artifact: ExportArtifact) -> float | None:
        raise NotImplementedError

    def unlike(self, candidate: ExportArtifact, baseline: ExportArtifact) -> str | None:
        """Why the two measurements are not like with like (so a ratio of them means nothing), or None."""
        return None

    def pick(self, export: ExportResult | None, precision: str | None) -> tuple[ExportArtifact, float] | str:
        if export is None:
            return "no export record (export/export.json); run calibgate export before the gate"
        measured = [(a, self.measure(a)) for a in export.artifacts if precision in (None, a.precision)]
        measured = [(a, v) for a, v in measured if v is not None]
        if not measured:
            return f"export has no {precision or 'exported'} artifact with a {self.unit} measurement"
        return min(measured, key=lambda av: av[1])

    def run(self, config: _ArtifactCeilingRule, inputs: GateInputs) -> list[CheckResult]:
        picked = self.pick(inputs.candidate_export, config.precision)
        if isinstance(picked, str):
            return [self.result("ERROR", picked, config)]
        artifact, value = picked
        base = None
        if inputs.baseline_export is not None:
            base_pick = self.pick(inputs.baseline_export, config.precision)
            base = None if isinstance(base_pick, str) else base_pick[1]
            if config.max_ratio is not None and not isinstance(base_pick, str):
                unlike = self.unlike(artifact, base_pick[0])
                if unlike:
                    return [self.result("ERROR", f"{self.unit} of the candidate and of production cannot be compared (max_ratio "
                                        f"set): {unlike}",
                                        config, value=value, baseline=base)]
        if config.max_ratio is not None and inputs.baseline is not None and base is None:
            return [self.result("ERROR", f"production has no {self.unit} measurement to compare with (max_ratio set)", config, value=value)]
        threshold = config.effective(base)
        if threshold is None:
            return [self.result("SKIPPED", f"{self.unit} {_fmt(value)} ({artifact.path}): no baseline, relative rule not applied", config, value=value)]
        ok = value <= threshold
        return [self.result(
            "PASS" if ok else _fail(config),
            f"{self.unit} {_fmt(value)} of {artifact.path} {'<=' if ok else '>'} ceiling {_fmt(threshold)}", config,
            value=value, threshold=threshold, baseline=base,
        )]


@register_check
class LatencyCeiling(_ArtifactCeiling):
    name = "latency_ceiling"
    config_model = LatencyRule
    unit = "p95 latency ms"
    description = "p95 single-text latency ceiling of the exported model (ms)"

    def measure(self, artifact: ExportArtifact) -> float | None:
        return None if artifact.latency is None else artifact.latency.p95_ms

    def unlike(self, candidate: ExportArtifact, baseline: ExportArtifact) -> str | None:
        """A p95 timed on 1 thread against one timed on 4 (or with tokenization against without) is no ratio of the
        models' speeds: a candidate twice as slow passed a 1.1 ratio beside a production timed single-threaded."""
        c, b = candidate.latency, baseline.latency
        if c.threads != b.threads:
            return (f"timed on {c.threads} thread(s) vs {b.threads}; time the candidate as production was (calibgate export "
                    f"--run RUN --threads {b.threads}), or judge latency on an absolute 'max' only")
        if None not in (c.includes_tokenization, b.includes_tokenization) and c.includes_tokenization != b.includes_tokenization:
            return "one timing includes tokenization and the other does not; re-export the older run with this calibgate"
        return None


@register_check
class SizeCeiling(_ArtifactCeiling):
    name = "size_ceiling"
    config_model = SizeRule
    unit = "size bytes"
    description = "size ceiling of the exported model file (bytes)"

    def measure(self, artifact: ExportArtifact) -> float | None:
        return float(artifact.size_bytes)


class SignalRule(Rule):
    on_missing: Literal["error", "skip"] = Field(
        "error", description="when the plan lacks the signal: 'error' blocks, 'skip' records SKIPPED"
    )


class TestSetRule(Rule):
    min_examples: int = Field(ge=1, description="fewest test rows the evaluation may rest on")
    min_per_class: int | None = Field(None, ge=1, description="fewest test rows of every label (a label with none counts 0)")


@register_check
class TestSetSize(Check):
    """Absolute floors on a handful of test rows say nothing: 5 of 5 correct passes a 0.70 floor as readily as a
    model that is right 40% of the time. This check makes the evidence itself a condition of promotion."""

    name = "test_set_size"
    config_model = TestSetRule
    description = "the evaluation rests on at least 'min_examples' test rows, and 'min_per_class' of every label"

    def run(self, config: TestSetRule, inputs: GateInputs) -> list[CheckResult]:
        evaluation = inputs.candidate
        n = evaluation.test.n
        support = np.bincount(np.asarray(evaluation.labels, dtype=int), minlength=len(evaluation.label_names))
        short = [f"{label} {int(count)}" for label, count in zip(evaluation.label_names, support)
                 if config.min_per_class is not None and count < config.min_per_class]
        problems = []
        if n < config.min_examples:
            problems.append(f"{n} test rows < {config.min_examples}")
        if short:
            shown = ", ".join(short[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
            problems.append(f"under {config.min_per_class} test rows for {shown}")
        where = evaluation.test.source
        if problems:
            return [self.result(
                _fail(config), f"test set {where}: {'; '.join(problems)}: too few to support the decision; evaluate "
                "on a larger labeled test set (calibgate evaluate --test FILE; default data.test)",
                config, value=float(n), threshold=float(config.min_examples),
            )]
        smallest = f", smallest class {int(support.min())}" if len(support) else ""
        return [self.result("PASS", f"test set {where}: {n} rows >= {config.min_examples}{smallest}", config,
                            value=float(n), threshold=float(config.min_examples))]


class SignalCeilingRule(SignalRule):
    max: float = Field(description="ceiling of the plan's signal")


class MinExamplesRule(SignalRule):
    min: int = Field(ge=1, description="fewest labeled examples any class may have in the plan's data")


class _SignalCheck(Check):
    config_model = SignalCeilingRule
    signal: ClassVar[str] = ""

    def read(self, plan: Plan) -> float | None:
        raise NotImplementedError

    def run(self, config: SignalRule, inputs: GateInputs) -> list[CheckResult]:
        value = None if inputs.plan is None else self.read(inputs.plan)
        if value is None:
            why = "no plan (pass --plan or keep plan.json in the run)" if inputs.plan is None else f"the plan did not measure {self.signal}"
            return [self.result("SKIPPED" if config.on_missing == "skip" else "ERROR", why, config)]
        return [self.compare(config, value)]

    def compare(self, config, value: float) -> CheckResult:
        ok = value <= config.max
        return self.result(
            "PASS" if ok else _fail(config), f"{self.signal} {_fmt(value)} {'<=' if ok else '>'} ceiling {_fmt(config.max)}",
            config, value=value, threshold=config.max,
        )


@register_check
class LabelNoiseCeiling(_SignalCheck):
    name = "label_noise_ceiling"
    signal = "estimated label noise"
    ranges = {"max": UNIT}
    description = "the plan's estimated wrong-label rate must not exceed 'max'"

    def read(self, plan: Plan) -> float | None:
        return plan.signals.label_noise.estimated_rate


@register_check
class ShiftAucCeiling(_SignalCheck):
    name = "shift_auc_ceiling"
    signal = "domain-shift AUC"
    ranges = {"max": AUC_RANGE}
    description = "the plan's domain-classifier AUC (calibration vs production) must not exceed 'max'"

    def read(self, plan: Plan) -> float | None:
        shift = plan.signals.domain_shift
        return shift.auc if shift.measured else None


@register_check
class MinExamplesPerClass(_SignalCheck):
    name = "min_examples_per_class"
    config_model = MinExamplesRule
    signal = "smallest class count"
    description = "every class has at least 'min' labeled examples in the plan's data"

    def read(self, plan: Plan) -> float | None:
        return float(plan.signals.imbalance.min_count)

    def compare(self, config: MinExamplesRule, value: float) -> CheckResult:
        ok = value >= config.min
        return self.result(
            "PASS" if ok else _fail(config), f"{self.signal} {value:.0f} {'>=' if ok else '<'} {config.min}",
            config, value=value, threshold=float(config.min),
        )


def _metric_ranges(rules: dict[str, MetricRule]) -> dict[str, MetricRule]:
    for key, rule in rules.items():
        rng = METRIC_RANGES.get(key)
        if rng is None:
            continue
        for field_name in ("min", "max", "max_drop", "max_increase"):
            value = getattr(rule, field_name)
            problem = None if value is None else rng.problem(value)
            if problem:
                raise ValueError(f"metrics.{key}.{field_name} is outside {key}'s range ({problem}); {key} lies in "
                                 f"[{rng.ge:g}, {rng.le:g}]")
    return rules


@register_check
class Metrics(Check):
    name = "metrics"
    config_model = MetricRule
    # the policy section maps metric keys to rules; known metrics' thresholds must lie in their range
    section_annotation = Annotated[dict[str, MetricRule], AfterValidator(lambda rules: _metric_ranges(rules))]
    description = "rules on metrics named by key in evaluation.json (e.g. ece, or a local evaluate module's)"

    def run(self, config: dict[str, MetricRule], inputs: GateInputs) -> list[CheckResult]:
        out = []
        for key, rule in config.items():
            cid = f"metric:{key}"
            value = inputs.candidate.metrics.get(key)
            if value is None:
                have = ", ".join(sorted(inputs.candidate.metrics))
                out.append(self.result("ERROR", f"evaluation has no metric '{key}' (it has: {have})", rule, id=cid))
                continue
            base = None if inputs.baseline is None else inputs.baseline.metrics.get(key)
            if rule.uses_baseline and inputs.baseline is not None:
                if inputs.baseline.test.sha256 != inputs.candidate.test.sha256:
                    out.append(self.result("ERROR", inputs.paired_problem() or "", rule, id=cid, value=value))
                    continue
                if base is None:
                    out.append(self.result("ERROR", f"baseline evaluation has no metric '{key}'", rule, id=cid, value=value))
                    continue
            threshold = rule.effective(base)
            if threshold is None:
                out.append(self.result("SKIPPED", f"{key} {_fmt(value)}: no baseline, relative rule not applied", rule, id=cid, value=value))
                continue
            ok = value >= threshold if rule.higher_is_better else value <= threshold
            op = (">=" if ok else "<") if rule.higher_is_better else ("<=" if ok else ">")
            out.append(self.result(
                "PASS" if ok else _fail(rule), f"{key} {_fmt(value)} {op} threshold {_fmt(threshold)}", rule,
                id=cid, value=value, threshold=threshold, baseline=base,
            ))
        return out
