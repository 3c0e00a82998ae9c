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


def test_label_noise_reads_the_hidden_state_view_when_the_plan_measured_it():
    """Overlapping blobs hide the flips from the frozen probe; a sharper first view (the planner's hidden-state probe,
    here one that knows the true classes) finds them, and the record names the view it used."""
    X, y, _ = blobs(60, 5, spread=0.9, seed=2)
    noisy, flipped = flip_labels(y, 0.10, 5, seed=2)
    frozen = compute_signals(context(X, noisy, 5, seed=2), names=("label_noise",))["label_noise"]
    sharp = np.full((len(y), 5), 0.02)
    sharp[np.arange(len(y)), y] = 0.92
    ctx = context(X, noisy, 5, seed=2, hidden_proba=sharp)
    record = compute_signals(ctx, names=("label_noise",))["label_noise"]
    assert "hidden-state probe" in record.method and "logistic probe" in frozen.method
    found = {s.index for s in record.suspects}
    assert len(found & set(np.flatnonzero(flipped))) > len({s.index for s in frozen.suspects} & set(np.flatnonzero(flipped)))


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


def test_the_curve_shape_is_a_prior_with_few_examples_per_class():
    """Three per class over 30 classes: the shape is not fitted; the error falls as n^-PRIOR_EXPONENT from the largest
    size, and the record says it is a prior."""
    from calibgate.signals.starvation import PRIOR_EXPONENT, extrapolate, prior_shape_fit, shape_fittable

    assert shape_fittable(300, 2, 4) and not shape_fittable(300, 77, 4) and not shape_fittable(300, 2, 2)
    assert shape_fittable(500, 100, 3) and not shape_fittable(499, 100, 3)  # the boundary: 5 per class
    fit = prior_shape_fit(np.array([50.0, 100.0]), np.array([0.4, 0.6]))
    assert fit == {"a": 1.0, "b": pytest.approx(0.4 * 100**PRIOR_EXPONENT), "c": PRIOR_EXPONENT}
    point, _, interval = extrapolate(np.array([50.0, 100.0]), np.array([[0.4, 0.6], [0.4, 0.6]]), 400, fit_shape=False)
    assert point == pytest.approx(1 - 0.4 * 4**-PRIOR_EXPONENT)  # four times the data from the largest size
    assert f"exponent fixed at {PRIOR_EXPONENT:g}" in interval.method and interval.low == interval.high == pytest.approx(point)
    X, y, _ = blobs(3, 30, spread=0.5, seed=1)
    record = compute_signals(context(X, y, 30, target_size=2000), names=("starvation",))["starvation"]
    assert record.fit["c"] == PRIOR_EXPONENT and record.fit["a"] == 1.0
    assert any(e.startswith("prior shape (exponent fixed)") for e in record.evidence)
    assert any("its shape is not fitted" in w for w in record.trust_warnings)
    assert "a prior" in record.predicted_probe_accuracy_ci.method


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
