"""Builders of the records a report renders, made directly from their pydantic schemas."""

from __future__ import annotations

import random

from calibgate.records.evaluation import ClassMetrics, EvaluationResult, MetricInterval, TestSetInfo
from calibgate.records.export import ExportArtifact, ExportResult, Latency
from calibgate.records.plan import (
    Candidate,
    CurvePoint,
    DatasetInfo,
    DomainShift,
    Duplicates,
    Imbalance,
    Interval,
    LabelNoise,
    Plan,
    Recommendation,
    Separability,
    Signals,
    Starvation,
    Suspect,
)
from calibgate.records.decision import CheckResult, GateDecision


def labels(n: int) -> list[str]:
    base = [
        "card_arrival",
        "card_delivery_estimate",
        "pending_transfer",
        "Refund_not_showing_up",
        "lost_or_stolen_card",
    ]
    return (base + [f"intent_{i:02d}" for i in range(n)])[:n]


def decision(kind: str = "block", n_class_checks: int = 3) -> GateDecision:
    checks = [
        CheckResult(
            id="accuracy_floor",
            status="PASS" if kind != "block" else "FAIL",
            value=0.84,
            threshold=0.85,
            baseline=0.86,
            message="accuracy 0.840 is below the floor 0.850",
            config={"min": 0.85},
        ),
        CheckResult(
            id="no_regression:macro_f1",
            status="WARN",
            value=0.80,
            threshold=0.79,
            baseline=0.81,
            message="macro_f1 dropped 0.010, within the allowed 0.020",
        ),
        CheckResult(id="latency_p95", status="PASS", value=12.0, threshold=50.0, message="p95 12.0 ms under 50 ms"),
        CheckResult(id="calibration_ece", status="SKIPPED", message="no ece threshold in the policy"),
    ]
    for label in labels(n_class_checks):
        checks.append(
            CheckResult(
                id=f"class_recall_floor:{label}",
                status="PASS",
                value=0.9,
                threshold=0.5,
                message=f"recall of {label} 0.90 over 0.50",
            )
        )
    if kind == "error":
        checks.append(
            CheckResult(id="mcnemar", status="ERROR", message="baseline predictions are missing: cannot pair")
        )
    return GateDecision(
        decision=kind,
        candidate="run-cand",  # the run the evaluation and export records are about
        baseline="intent-model@v1.2.0",
        policy="policies/default.yaml",
        policy_sha256="f" * 64,
        checks=checks,
        summary={
            "block": "blocked: accuracy_floor failed",
            "promote": "all checks passed",
            "error": "the gate could not decide",
        }[kind],
    )


def row_scores(truth: list[int], predicted: list[int], names: list[str]):
    """(per_class, confusion matrix, macro-F1) of the rows, by the code 'calibgate evaluate' scores with."""
    import numpy as np

    from calibgate.evaluation.metrics import _per_class, confusion_matrix, macro_f1_from_confusion

    cm = confusion_matrix(np.array(truth), np.array(predicted), len(names))
    precision, recall, f1 = _per_class(cm)
    per_class = {name: ClassMetrics(precision=float(precision[c]), recall=float(recall[c]), f1=float(f1[c]),
                                    support=int(cm[c].sum())) for c, name in enumerate(names)}
    return per_class, cm.tolist(), macro_f1_from_confusion(cm)


def evaluation(n_classes: int = 5, *, shift: float = 0.0, seed: int = 0, run_id: str = "run-cand") -> EvaluationResult:
    names = labels(n_classes)
    n = 40 * n_classes
    truth = [i % n_classes for i in range(n)]
    right = round((0.86 + shift) * n)  # the first 'right' rows predicted correctly, the rest as the next class
    predicted = [t if i < right else (t + 1) % n_classes for i, t in enumerate(truth)]
    per_class, cm, macro_f1 = row_scores(truth, predicted, names)  # what 'calibgate evaluate' writes for the rows
    return EvaluationResult(
        run_id=run_id,
        strategy="lora",
        lora_rank=8,
        label_names=names,
        test=TestSetInfo(source="datasets/test.jsonl", sha256="a" * 64, n=n),
        metrics={"accuracy": right / n, "macro_f1": macro_f1, "ece": 0.05 - shift / 2},
        intervals={"accuracy": MetricInterval(low=0.83 + shift, high=0.89 + shift)},
        per_class=per_class,
        confusion_matrix=cm,
        labels=truth,
        predictions=predicted,
    )


def export() -> ExportResult:
    lat = Latency(
        p50_ms=4.2, p95_ms=6.1, p99_ms=9.8, batch1_runs=200, throughput_batch32=850.0, sequence_length=14.5, threads=2
    )
    return ExportResult(
        run_id="run-cand",
        opset=17,
        artifacts=[
            ExportArtifact(
                path="export/model.onnx",
                precision="fp32",
                size_bytes=90_800_000,
                sha256="b" * 64,
                max_abs_logit_diff=2e-5,
                latency=lat,
            ),
            ExportArtifact(
                path="export/model.int8.onnx",
                precision="int8",
                size_bytes=23_000_000,
                sha256="c" * 64,
                argmax_agreement=0.995,
                latency=lat.model_copy(update={"p50_ms": 2.1}),
            ),
        ],
        torch_latency=lat.model_copy(update={"p50_ms": 11.0, "p95_ms": 14.0, "p99_ms": 18.0}),
    )


def plan(n_suspects: int = 3, n_classes: int = 5) -> Plan:
    names = labels(n_classes)
    rng = random.Random(1)
    suspects = [
        Suspect(
            index=i,
            line=i + 1,
            text=f"I lost my card {i} | please help @octocat <b>now</b> [x](http://e)",
            given_label=names[i % n_classes],
            suggested_label=names[(i + 1) % n_classes],
            score=rng.random(),
        )
        for i in range(n_suspects)
    ]
    base = dict(reading="fine", evidence=[], trust_warnings=[])
    signals = Signals(
        separability=Separability(
            status="ok",
            **base,
            probe_accuracy=0.8,
            probe_macro_f1=0.78,
            knn_accuracy=0.75,
            knn_k=10,
            majority_accuracy=0.05,
            folds=5,
        ),
        label_noise=LabelNoise(
            status="warn",
            reading="about 6% of labels look wrong",
            evidence=[],
            estimated_rate=0.06,
            estimated_rate_ci=Interval(low=0.04, high=0.08, method="bootstrap"),
            raw_issue_rate=0.09,
            overlap_rate=0.03,
            method="confident learning",
            suspects=suspects,
        ),
        imbalance=Imbalance(
            status="ok",
            **base,
            counts={n: 10 for n in names},
            imbalance_ratio=1.0,
            normalized_entropy=1.0,
            min_count=10,
            min_count_required=5,
            classes_under_min=[],
        ),
        starvation=Starvation(
            status="alert",
            reading="more data helps",
            evidence=[],
            curve=[
                CurvePoint(n=n, accuracy=a, std=0.01, repeats=3)
                for n, a in ((50, 0.55), (100, 0.66), (200, 0.74), (400, 0.79))
            ],
            fit={"a": 0.9, "b": 2.0, "c": 0.5},
            target_size=4000,
            predicted_probe_accuracy_at_target=0.86,
            predicted_ceiling=0.9,
            gain_per_doubling=4.5,
            train_validation_gap=0.1,
        ),
        domain_shift=DomainShift(status="not-measured", reading="no production sample", measured=False),
        duplicates=Duplicates(
            status="ok",
            **base,
            exact_duplicate_groups=0,
            near_duplicate_pairs=1,
            conflicting_label_groups=0,
            truncated=0,
            max_length=128,
        ),
    )
    rec = Recommendation(
        strategy="lora",
        lora_rank=8,
        modifiers=["class-weighted-loss"],
        rationale=[
            "separability: probe accuracy 0.80 < 0.90 -> the frozen encoder is not enough",
            "starvation: 4.5 points per doubling > 2.0 -> train at the target size",
        ],
        candidates=[
            Candidate(
                strategy="embedding-probe", predicted_accuracy=0.82, estimated_train_seconds=5, latency_class="fast"
            ),
            Candidate(
                strategy="lora",
                lora_rank=8,
                predicted_accuracy=0.88,
                predicted_accuracy_ci=Interval(low=0.85, high=0.9, method="fit"),
                estimated_train_seconds=600,
                latency_class="encoder",
            ),
        ],
        tolerance=1.0,
        chosen_candidate="lora/r8",
    )
    return Plan(
        calibgate_version="0.1.0",
        created_at="2026-11-22T10:00:00+00:00",
        model="all-MiniLM-L6-v2",
        dataset=DatasetInfo(
            n=500,
            n_classes=n_classes,
            label_names=names,
            source="datasets/calibration.jsonl",
            sha256="d" * 64,
            dvc_md5=None,
            dvc_state="clean",
            target_size=4000,
        ),
        signals=signals,
        recommendation=rec,
        warnings=["calibration set is small"],
    )
