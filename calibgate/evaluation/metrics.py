"""Classification metrics from labels and predicted probabilities (numpy only).

* accuracy, macro-F1 (mean F1 over labels present in the truth or the predictions, as sklearn)
* per-class precision / recall / F1 / support, confusion matrix
* expected calibration error: 15 equal-width confidence bins, top label
  (Guo et al., 2017, "On Calibration of Modern Neural Networks")
* label-validity rate: share of predictions inside the label space
* percentile bootstrap 95% intervals, seeded (Efron & Tibshirani, 1993)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float
    ece: float
    label_validity_rate: float
    confusion: np.ndarray  # (K, K) rows true, columns predicted
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    valid = (predictions >= 0) & (predictions < n_classes)
    return np.bincount(labels[valid] * n_classes + predictions[valid], minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(float)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1


def macro_f1_from_confusion(cm: np.ndarray) -> float:
    _, _, f1 = _per_class(cm)
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    return float(f1[present].mean()) if present.any() else 0.0


def expected_calibration_error(pred_probs: np.ndarray, labels: np.ndarray, *, bins: int = 15) -> float:
    confidence = pred_probs.max(axis=1)
    correct = pred_probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def score(labels: np.ndarray, pred_probs: np.ndarray, predictions: np.ndarray | None = None) -> Scores:
    n_classes = pred_probs.shape[1]
    predictions = pred_probs.argmax(axis=1) if predictions is None else predictions
    cm = confusion_matrix(labels, predictions, n_classes)
    precision, recall, f1 = _per_class(cm)
    return Scores(
        accuracy=float((predictions == labels).mean()),
        macro_f1=macro_f1_from_confusion(cm),
        ece=expected_calibration_error(pred_probs, labels),
        label_validity_rate=float(((predictions >= 0) & (predictions < n_classes)).mean()),
        confusion=cm,
        precision=precision,
        recall=recall,
        f1=f1,
        support=cm.sum(axis=1),
    )


def bootstrap_intervals(
    labels: np.ndarray, predictions: np.ndarray, n_classes: int, *, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of accuracy and macro-F1 over test rows."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    acc = np.empty(resamples)
    f1 = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, n, n)
        y, p = labels[idx], predictions[idx]
        acc[i] = (y == p).mean()
        f1[i] = macro_f1_from_confusion(confusion_matrix(y, p, n_classes))
    tail = (1 - level) / 2 * 100
    return {
        "accuracy": (float(np.percentile(acc, tail)), float(np.percentile(acc, 100 - tail))),
        "macro_f1": (float(np.percentile(f1, tail)), float(np.percentile(f1, 100 - tail))),
    }
