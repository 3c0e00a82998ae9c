"""The gain estimate on exact, hand-made out-of-fold predictions (beside tests/planner/test_fine_tuning_signal.py):
the prior's interval, the one-sided posterior in log-odds, the source sentences, the paired gain and log losses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibgate.planner.gain import MEASURED_SCALE, PRIOR_STANDS, measured_gain, prior_gain
from calibgate.planner.priors import MAX_SHIFT, Priors, logit

PRIOR_SHIFT, PRIOR_SD = Priors().shift, Priors().shift_sd  # the hand-set prior (hand_set_priors pins it)

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
def test_a_null_or_negative_measurement_leaves_the_prior_and_says_why(broken):
    labels, probe, tuned = _design(broken=broken)
    g = measured_gain(labels, probe, tuned)
    assert g.measured
    assert (g.shift, g.shift_low, g.shift_high) == (PRIOR_SHIFT, pytest.approx(PRIOR_SHIFT - 1.96 * PRIOR_SD), pytest.approx(PRIOR_SHIFT + 1.96 * PRIOR_SD))
    raw = float(logit(0.75 - broken / 400) - logit(0.75))
    assert g.source == f"measured {raw:+.2f} log-odds out of fold (x2: at or below the prior {PRIOR_SHIFT:+.2f}, {PRIOR_STANDS})"
    assert g.gain == pytest.approx(-broken / 400 * 100)
    assert (g.probe_accuracy, g.tuned_accuracy) == (0.75, pytest.approx(0.75 - broken / 400))
    assert np.all(g.boot_shifts == PRIOR_SHIFT)


def test_a_null_measurement_has_a_zero_width_paired_gain():
    g = measured_gain(*_design())
    assert g.gain == g.gain_low == g.gain_high == 0.0
    assert g.probe_log_loss == g.tuned_log_loss == pytest.approx(-(300 * math.log(0.9) + 100 * math.log(0.1)) / 400)


def test_a_raised_measurement_is_weighted_against_the_prior_by_its_precision():
    # 20 of the probe's 100 errors fixed: 75% -> 80%, raw shift logit(0.8) - logit(0.75), scaled x2
    labels, probe, tuned = _design(recovered=20)
    g = measured_gain(labels, probe, tuned)
    raw = float(logit(0.80) - logit(0.75))
    assert MEASURED_SCALE * raw > PRIOR_SHIFT
    # the bootstrap variance of the raw shift sits above the 1/errors floor here; the posterior lies between the two
    assert PRIOR_SHIFT < g.shift < MEASURED_SCALE * raw
    assert g.shift_low < g.shift < g.shift_high
    assert g.shift_high - g.shift_low < 2 * 1.96 * PRIOR_SD  # more precise than the prior alone
    assert g.source == f"measured: the hidden-state probe moved the log-odds {raw:+.2f} out of fold, scaled x2 and combined with the prior {PRIOR_SHIFT:+.2f}"
    assert g.gain == pytest.approx(5.0) and g.gain_low < 5.0 < g.gain_high
    assert (g.probe_accuracy, g.tuned_accuracy) == (0.75, 0.80)
    assert g.tuned_log_loss == pytest.approx(-(320 * math.log(0.9) + 80 * math.log(0.1)) / 400)
    assert len(g.boot_shifts) == len(g.boot_probe_shift) == 400
    assert g.boot_probe_shift.mean() == pytest.approx(0.0, abs=0.01)


def test_a_noisy_measurement_leans_on_the_prior():
    # a probe that errs on 3 of 100 rows: a "100%" recovery of three rows says little (floored variance 1/3)
    labels = np.zeros(100, dtype=int)
    probe_hits = np.ones(100, dtype=bool)
    probe_hits[:3] = False
    tuned_hits = np.ones(100, dtype=bool)
    g = measured_gain(labels, _proba(probe_hits, labels), _proba(tuned_hits, labels))
    raw = MEASURED_SCALE * min(float(logit(1.0) - logit(0.97)), MAX_SHIFT)
    assert PRIOR_SHIFT < g.shift < (PRIOR_SHIFT + raw) / 2


def test_a_shift_measured_far_above_the_prior_is_capped():
    labels, probe, tuned = _design(n=4000, probe_errors=1000, recovered=1000)  # every error fixed, on 1,000 errors
    g = measured_gain(labels, probe, tuned)
    assert g.shift <= MAX_SHIFT and g.shift_high <= MAX_SHIFT and g.shift > 2


def test_a_probe_without_errors_measures_no_shift():
    labels, probe, tuned = _design(probe_errors=0)
    g = measured_gain(labels, probe, tuned)
    assert g.shift == PRIOR_SHIFT and g.gain == 0.0 and g.source.startswith("measured +0.00 ")
