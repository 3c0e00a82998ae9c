"""The numpy metrics against sklearn and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from calibgate.evaluation.metrics import bootstrap_intervals, expected_calibration_error, score


def test_scores_match_sklearn():
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    probs = rng.dirichlet(np.ones(5), 200)  # class 4 never true: macro-F1 over present labels, like sklearn
    s = score(labels, probs)
    pred = probs.argmax(axis=1)
    assert s.macro_f1 == pytest.approx(f1_score(labels, pred, average="macro"))
    np.testing.assert_array_equal(s.confusion, confusion_matrix(labels, pred, labels=range(5)))
    p, r, f, n = precision_recall_fscore_support(labels, pred, labels=range(5), zero_division=0)
    np.testing.assert_allclose(s.precision, p)
    np.testing.assert_allclose(s.recall, r)
    np.testing.assert_allclose(s.f1, f)
    assert s.label_validity_rate == 1.0


def test_ece_of_a_calibrated_and_an_overconfident_model():
    labels = np.array([0, 0, 0, 1])
    calibrated = np.tile([0.75, 0.25], (4, 1))  # 75% confident, 75% right
    assert expected_calibration_error(calibrated, labels) == pytest.approx(0.0)
    overconfident = np.tile([0.99, 0.01], (4, 1))
    assert expected_calibration_error(overconfident, labels) == pytest.approx(0.24)


def test_bootstrap_interval_covers_and_is_seeded():
    labels = np.r_[np.zeros(50, int), np.ones(50, int)]
    pred = labels.copy()
    pred[:20] = 1
    a = bootstrap_intervals(labels, pred, 2, resamples=300, seed=1)
    assert a == bootstrap_intervals(labels, pred, 2, resamples=300, seed=1)
    low, high = a["accuracy"]
    assert low < 0.8 < high and high - low < 0.2
