"""Synthetic evaluation / export / plan records for gate tests (built directly, no model)."""

from __future__ import annotations

import numpy as np

from calibgate.records.evaluation import ClassMetrics, EvaluationResult, TestSetInfo
from calibgate.records.plan import Plan
from calibgate.records.export import ExportArtifact, ExportResult, Latency

LABELS = ["billing", "card", "transfer"]


def truth(n: int = 600, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, len(LABELS), n)


def flip(labels: np.ndarray, rate: float, seed: int, *, only_class: int | None = None) -> np.ndarray:
    """Predictions equal to labels except a ``rate`` share of rows (optionally of one class) made wrong."""
    rng = np.random.default_rng(seed)
    preds = labels.copy()
    rows = np.arange(len(labels)) if only_class is None else np.flatnonzero(labels == only_class)
    wrong = rng.choice(rows, int(round(rate * len(rows))), replace=False)
    preds[wrong] = (labels[wrong] + 1) % len(LABELS)
    return preds


def evaluation(labels, predictions, *, run_id="cand", test_sha="a" * 64, drop_metrics=(), extra=None) -> EvaluationResult:
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    k = len(LABELS)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (labels, predictions), 1)
    per_class = {}
    f1s = []
    for i, name in enumerate(LABELS):
        tp, support, predicted = cm[i, i], cm[i].sum(), cm[:, i].sum()
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        f1s.append(f)
        per_class[name] = ClassMetrics(precision=p, recall=r, f1=f, support=int(support))
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0  # as calibgate evaluate averages: classes with a row or a prediction
    metrics = {"accuracy": float(np.mean(labels == predictions)), "macro_f1": float(np.mean(np.array(f1s)[present])), "ece": 0.05,
               "label_validity_rate": 1.0, **(extra or {})}
    for key in drop_metrics:
        metrics.pop(key)
    return EvaluationResult(
        run_id=run_id, strategy="embedding-probe", label_names=LABELS,
        test=TestSetInfo(source="datasets/test.jsonl", sha256=test_sha, n=len(labels)),
        metrics=metrics, per_class=per_class, confusion_matrix=cm.tolist(),
        labels=labels.tolist(), predictions=predictions.tolist(),
    )


def export(p95_ms: float = 10.0, size_bytes: int = 90_000_000, run_id="cand") -> ExportResult:
    lat = Latency(p50_ms=p95_ms / 2, p95_ms=p95_ms, p99_ms=p95_ms * 1.2, batch1_runs=100, throughput_batch32=500,
                  sequence_length=14, threads=1)
    return ExportResult(run_id=run_id, opset=17, artifacts=[
        ExportArtifact(path="export/model.onnx", precision="fp32", size_bytes=size_bytes, sha256="b" * 64, latency=lat),
    ])




def plan(*, noise: float = 0.02, shift_auc: float | None = 0.6, min_count: int = 20) -> Plan:
    base = {"status": "ok", "reading": "synthetic"}
    return Plan.model_validate({
        "calibgate_version": "0.1.0", "created_at": "2026-01-01T00:00:00+00:00", "model": "tiny",
        "dataset": {"n": 60, "n_classes": 3, "label_names": ["billing", "card", "transfer"], "source": "cal.jsonl",
                    "sha256": "c" * 64, "dvc_md5": None, "dvc_state": "untracked", "target_size": 60},
        "signals": {
            "separability": {**base, "probe_accuracy": 0.9, "probe_macro_f1": 0.9, "knn_accuracy": 0.9, "knn_k": 5,
                             "majority_accuracy": 0.34, "folds": 5},
            "label_noise": {**base, "estimated_rate": noise, "raw_issue_rate": noise, "overlap_rate": 0.0,
                            "method": "confident learning", "suspects": []},
            "imbalance": {**base, "counts": {"billing": min_count, "card": 30, "transfer": 30}, "imbalance_ratio": 1.5,
                          "normalized_entropy": 0.99, "min_count": min_count, "min_count_required": 5, "classes_under_min": []},
            "starvation": {**base, "curve": [], "fit": {}, "target_size": 60, "predicted_probe_accuracy_at_target": 0.9,
                           "predicted_ceiling": 0.95, "gain_per_doubling": 1.0, "train_validation_gap": 0.02},
            "domain_shift": {**base, "measured": shift_auc is not None, "auc": shift_auc},
            "duplicates": {**base, "exact_duplicate_groups": 0, "near_duplicate_pairs": 0, "conflicting_label_groups": 0,
                           "truncated": 0, "max_length": 128},
        },
        "recommendation": {"strategy": "embedding-probe", "rationale": ["synthetic"], "candidates": [], "tolerance": 1.0,
                           "chosen_candidate": "embedding-probe"},
    })


def make_run(root, evaluation_record, *, export_record=None, plan_record=None, weights: bytes = b"weights"):
    """A run directory as 'calibgate train/evaluate/export' leave it: files plus a manifest hashing them."""
    from pathlib import Path

    from calibgate.runs import HeadSpec, RunManifest, write_manifest

    import hashlib

    import numpy as np
    from safetensors.numpy import save_file

    root = Path(root)
    (root / "encoder").mkdir(parents=True, exist_ok=True)
    # real safetensors (a run's readers check the headers), distinct per ``weights`` through their metadata
    tag = {"tag": weights.hex()}
    save_file({"embeddings": np.zeros((2, 4), dtype=np.float32)}, str(root / "encoder" / "model.safetensors"), metadata=tag)
    head = {"weight": np.zeros((len(LABELS), 4), dtype=np.float32), "bias": np.zeros(len(LABELS), dtype=np.float32)}
    save_file(head, str(root / "head.safetensors"), metadata=tag)
    (root / "evaluation.json").write_text(evaluation_record.model_dump_json(), encoding="utf-8")
    if export_record is not None:
        (root / "export").mkdir(exist_ok=True)
        artifacts = []
        for artifact in export_record.artifacts:  # the graphs the record names, with their real digests
            graph = b"onnx-" + artifact.precision.encode() + weights
            (root / artifact.path).write_bytes(graph)
            artifacts.append(artifact.model_copy(update={"sha256": hashlib.sha256(graph).hexdigest()}))
        export_record = export_record.model_copy(update={"artifacts": artifacts})
        (root / "export" / "export.json").write_text(export_record.model_dump_json(), encoding="utf-8")
    if plan_record is not None:
        (root / "plan.json").write_text(plan_record.model_dump_json(), encoding="utf-8")
    manifest = RunManifest(
        run_id=evaluation_record.run_id, strategy="embedding-probe", label_names=LABELS, base_model="tiny",
        model_type="bert", pooling="mean", normalize=True, max_length=128, head=HeadSpec(kind="linear"),
        train_config={"epochs": 3, "lr": 0.001}, data={"dvc_md5": "0fa66f6ecc5059f38edaafb1c423c0d7.dir"},
        git_commit=None,
    )
    write_manifest(root, manifest)
    return root
