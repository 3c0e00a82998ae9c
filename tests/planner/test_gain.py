"""The gain estimate on exact, hand-made out-of-fold predictions (beside tests/planner/test_fine_tuning_signal.py):
the prior's interval, the calibrated reading in log-odds, the source sentences, the paired gain and log losses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibgate.planner.gain import measured_gain, prior_gain, reading
from calibgate.planner.priors import MAX_SHIFT, Priors, logit

PRIOR_SHIFT, PRIOR_SD = Priors().shift, Priors().shift_sd  # the hand-set prior (hand_set_priors pins it)
A, B, SD = Priors().reading_intercept, Priors().reading_slope, Priors().reading_sd  # the hand-set reading calibration

pytestmark = pytest.mark.usefixtures("hand_set_priors")


def _proba(hits: np.ndarray, labels: np.ndarray, k: int = 2) -> np.ndarray:
    """0.9 on the label where ``hits``, on another class elsewhere."""
    p = np.full((len(labels), k), 0.1 / (k - 1))
    p[np.arange(len(labels)), np.where(hits, labels, (labels + 1) % k)] = 0.9
    return p


def _design(n=400, probe_errors=100, recovered=0, broken=0):
    """Labels and hits: the probe misses the last ``probe_errors`` rows; the view fixes ``recovered`` of those and
    breaks ``broken`` of the probe's hits."""
    labels = np.arange(n) % 2
    probe = np.arange(n) < n - probe_errors
    tuned = probe.copy()
    tuned[n - probe_errors:n - probe_errors + recovered] = True
    tuned[:broken] = False
    return labels, _proba(probe, labels), _proba(tuned, labels)


def test_prior_interval_is_the_prior_sd():
    g = prior_gain()
    assert (g.shift, g.shift_low, g.shift_high) == (PRIOR_SHIFT, pytest.approx(PRIOR_SHIFT - 1.96 * PRIOR_SD), pytest.approx(PRIOR_SHIFT + 1.96 * PRIOR_SD))
    assert g.source.startswith("prior") and g.source.endswith(", not measured")
    assert g.gain is None and g.probe_accuracy is None and g.boot_probe_shift is None


@pytest.mark.parametrize("broken", [0, 20])
def test_a_null_or_negative_reading_is_calibrated_not_ignored(broken):
    labels, probe, tuned = _design(broken=broken)
    g = measured_gain(labels, probe, tuned)
    raw = float(logit(0.75 - broken / 400) - logit(0.75))
    assert g.measured and reading(0.75, 0.75 - broken / 400) == pytest.approx(raw)
    # the shift is read from the reading, both ways: a reading below zero lowers it under the intercept
    assert g.shift == pytest.approx(A + B * raw)
    assert (g.shift < A) == (broken > 0)
    assert (g.shift_low, g.shift_high) == (pytest.approx(g.shift - 1.96 * SD), pytest.approx(g.shift + 1.96 * SD))
    assert g.source == (
        f"measured: the hidden-state probe moved the log-odds {raw:+.2f} out of fold; full fine-tuning's shift read from "
        f"it as {A:+.2f} + {B:.2f} x reading = {A + B * raw:+.2f} (calibration hand-set, residual sd {SD:.2f})"
    )
    assert g.gain == pytest.approx(-broken / 400 * 100)
    assert (g.probe_accuracy, g.tuned_accuracy) == (0.75, pytest.approx(0.75 - broken / 400))


def test_a_null_measurement_has_a_zero_width_paired_gain():
    g = measured_gain(*_design())
    assert g.gain == g.gain_low == g.gain_high == 0.0
    assert g.probe_log_loss == g.tuned_log_loss == pytest.approx(-(300 * math.log(0.9) + 100 * math.log(0.1)) / 400)
    assert np.all(g.boot_shifts == pytest.approx(A))  # the same rows resampled for both probes: no spread


def test_a_raised_reading_raises_the_shift_and_its_resamples_spread_around_it():
    # 20 of the probe's 100 errors fixed: 75% -> 80%
    labels, probe, tuned = _design(recovered=20)
    g = measured_gain(labels, probe, tuned)
    raw = float(logit(0.80) - logit(0.75))
    assert g.shift == pytest.approx(A + B * raw) and g.shift > A
    assert g.shift_low < g.shift < g.shift_high
    assert g.gain == pytest.approx(5.0) and g.gain_low < 5.0 < g.gain_high
    assert (g.probe_accuracy, g.tuned_accuracy) == (0.75, 0.80)
    assert g.tuned_log_loss == pytest.approx(-(320 * math.log(0.9) + 80 * math.log(0.1)) / 400)
    assert len(g.boot_shifts) == len(g.boot_probe_shift) == 400
    assert g.boot_probe_shift.mean() == pytest.approx(0.0, abs=0.01)
    # resampled readings go through the same calibration: their shifts straddle the point shift, never below the
    # intercept (the view never loses a row here)
    assert g.boot_shifts.min() >= A - 1e-12 and g.boot_shifts.min() < g.shift < g.boot_shifts.max()


def test_a_fitted_calibration_is_what_the_shift_reads():
    labels, probe, tuned = _design(recovered=20)
    fitted = Priors(reading_intercept=0.1, reading_slope=1.5, reading_sd=0.2, reading_fitted_on=("a", "b", "c"))
    g = measured_gain(labels, probe, tuned, priors=fitted)
    raw = float(logit(0.80) - logit(0.75))
    assert g.shift == pytest.approx(0.1 + 1.5 * raw)
    assert g.shift_high - g.shift_low == pytest.approx(2 * 1.96 * 0.2)
    assert "calibration fitted on 3 data sets' plans against their trained candidates, residual sd 0.20" in g.source


def test_a_shift_read_far_above_the_prior_is_capped():
    labels, probe, tuned = _design(n=4000, probe_errors=1000, recovered=1000)  # every error fixed, on 1,000 errors
    g = measured_gain(labels, probe, tuned, priors=Priors(reading_slope=2.0))
    assert g.shift == MAX_SHIFT and g.shift_high <= MAX_SHIFT and np.all(g.boot_shifts <= MAX_SHIFT)


def test_a_probe_without_errors_reads_zero():
    labels, probe, tuned = _design(probe_errors=0)
    g = measured_gain(labels, probe, tuned)
    assert g.shift == pytest.approx(A) and g.gain == 0.0 and "moved the log-odds +0.00 out of fold" in g.source
