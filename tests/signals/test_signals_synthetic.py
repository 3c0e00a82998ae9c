"""Signals recover planted truth on synthetic embeddings (fast: no model)."""

from __future__ import annotations

import numpy as np
import pytest

from calibgate.signals.base import compute_signals
from tests.synthetic import blobs, context, flip_labels


@pytest.mark.parametrize("seed", [0, 1])
def test_label_noise_recovers_planted_flips(seed):
    X, y, _ = blobs(60, 5, spread=0.3, seed=seed)
    noisy, flipped = flip_labels(y, 0.10, 5, seed=seed)
    record = compute_signals(context(X, noisy, 5, seed=seed), names=("label_noise",))["label_noise"]
    assert abs(record.estimated_rate - 0.10) <= 0.04
    suspects = [s.index for s in record.suspects]
    assert flipped[suspects].mean() >= 0.8, "most flagged suspects must be truly flipped"
    assert record.status == "alert"


def test_clean_separable_labels_look_clean():
    X, y, _ = blobs(60, 5, spread=0.3, seed=3)
    record = compute_signals(context(X, y, 5), names=("label_noise",))["label_noise"]
    assert record.estimated_rate <= 0.02
    assert record.status == "ok"


def test_overlap_is_not_called_noise():
    # two pairs of classes share most of their mass: hard but correctly labeled
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 32))
    centers = np.vstack([base[0], base[0] + 0.15 * rng.normal(size=32), base[1], base[2]])
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    X, y, _ = blobs(80, 4, spread=0.35, seed=0, centers=centers)
    record = compute_signals(context(X, y, 4), names=("label_noise",))["label_noise"]
    assert record.raw_issue_rate > record.estimated_rate, "confident learning alone over-reports on overlap"
    assert record.estimated_rate < 0.08, "clean overlapping classes must not trigger fix-labels"


def test_imbalance_flags_small_classes():
    X, y, _ = blobs([100, 100, 30, 3], 4, seed=1)
    record = compute_signals(context(X, y, 4), names=("imbalance",))["imbalance"]
    assert record.imbalance_ratio == pytest.approx(100 / 3)
    assert record.classes_under_min == ["class_3"]
    assert record.status == "alert"


def test_domain_shift_detects_shifted_production():
    X, y, centers = blobs(50, 4, seed=2)
    same, _, _ = blobs(30, 4, seed=7, centers=centers)
    moved = centers + 1.2 * np.random.default_rng(5).normal(size=centers.shape) / np.sqrt(centers.shape[1]) * 3
    shifted, _, _ = blobs(30, 4, seed=8, centers=moved / np.linalg.norm(moved, axis=1, keepdims=True))
    calm = compute_signals(context(X, y, 4, production_embeddings=same), names=("domain_shift",))["domain_shift"]
    alarm = compute_signals(context(X, y, 4, production_embeddings=shifted), names=("domain_shift",))["domain_shift"]
    assert alarm.auc > 0.85 and alarm.p_value < 0.01 and alarm.status == "alert"
    assert calm.auc < 0.7 and calm.auc < alarm.auc - 0.2


def test_domain_shift_without_production_is_not_measured():
    X, y, _ = blobs(20, 3, seed=0)
    record = compute_signals(context(X, y, 3), names=("domain_shift",))["domain_shift"]
    assert record.measured is False and record.auc is None
    assert record.status == "not-measured" and "not the same as 'no shift'" in record.reading


def test_starvation_curve_rises_and_extrapolates():
    X, y, _ = blobs(40, 8, spread=0.55, seed=4)
    ctx = context(X, y, 8, target_size=2000)
    record = compute_signals(ctx, names=("starvation",))["starvation"]
    accs = [p.accuracy for p in record.curve]
    assert accs[-1] > accs[0]
    assert record.predicted_probe_accuracy_at_target >= accs[-1] - 0.02
    assert record.target_size == 2000 and record.gain_per_doubling >= 0


def test_duplicates_with_conflicting_labels():
    X, y, _ = blobs(10, 2, seed=0)
    texts = [f"text {i}" for i in range(len(y))]
    texts[1] = texts[0].upper()  # same after normalisation
    y = y.copy()
    y[1] = 1 - y[0]
    record = compute_signals(context(X, y, 2, texts=tuple(texts)), names=("duplicates",))["duplicates"]
    assert record.exact_duplicate_groups == 1
    assert record.conflicting_label_groups >= 1
    assert record.status == "warn"
