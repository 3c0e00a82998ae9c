"""The gain estimate on exact, hand-made out-of-fold predictions (beside tests/planner/test_fine_tuning_signal.py):
the prior's interval, the one-sided posterior, the source sentences, the paired gain and log losses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibgate.planner.gain import MAX_SHARE, MEASURED_SCALE, measured_gain, prior_gain
from calibgate.planner.priors import Priors

PRIOR_SHARE, PRIOR_SD = Priors().share, Priors().share_sd  # the hand-set prior (hand_set_priors pins it)
PRIOR_LOW, PRIOR_HIGH = 0.0, PRIOR_SHARE + 1.96 * PRIOR_SD  # 0.25 - 0.294 floors at 0

pytestmark = pytest.mark.usefixtures("hand_set_priors")


def _proba(hits: np.ndarray, labels: np.ndarray, k: int = 2) -> np.ndarray:
    """0.9 on the label where ``hits``, on another class elsewhere."""
    p = np.full((len(labels), k), 0.1 / (k - 1))
    p[np.arange(len(labels)), np.where(hits, labels, (labels + 1) % k)] = 0.9
    return p


def _design(n=400, probe_errors=100, recovered=0, broken=0):
    """Labels and hits: the probe misses the last ``probe_errors`` rows; tuning fixes ``recovered`` of those and
    breaks ``broken`` of the probe's hits."""
    labels = np.arange(n) % 2
    probe = np.arange(n) < n - probe_errors
    tuned = probe.copy()
    tuned[n - probe_errors:n - probe_errors + recovered] = True
    tuned[:broken] = False
    return labels, _proba(probe, labels), _proba(tuned, labels)


def test_prior_interval_is_the_prior_sd_clipped_at_zero():
    g = prior_gain()
    assert (g.share, g.share_low, g.share_high) == (PRIOR_SHARE, PRIOR_LOW, pytest.approx(0.544))
    assert g.source.startswith("prior") and g.source.endswith(", not measured")
    assert g.gain is None and g.probe_accuracy is None and g.boot_probe_shift is None


@pytest.mark.parametrize("broken", [0, 20])
def test_a_null_or_negative_measurement_leaves_the_prior_and_says_why(broken):
    labels, probe, tuned = _design(broken=broken)
    g = measured_gain(labels, probe, tuned)
    assert g.measured
    assert (g.share, g.share_low, g.share_high) == (PRIOR_SHARE, PRIOR_LOW, pytest.approx(PRIOR_HIGH))
    raw = -broken / 100  # tuned minus probe accuracy over the probe's error rate
    assert g.source == (
        f"measured {raw:+.0%} of the probe's error recovered out of fold (x3: at or below the prior 25%, which stands: "
        "tuning's gain is compressed at the calibration size)"
    )
    assert g.gain == pytest.approx(-broken / 400 * 100)
    assert (g.probe_accuracy, g.tuned_accuracy) == (0.75, pytest.approx(0.75 - broken / 400))
    assert np.all(g.boot_shares == PRIOR_SHARE)


def test_a_null_measurement_has_a_zero_width_paired_gain():
    g = measured_gain(*_design())
    assert g.gain == g.gain_low == g.gain_high == 0.0
    assert g.probe_log_loss == g.tuned_log_loss == pytest.approx(-(300 * math.log(0.9) + 100 * math.log(0.1)) / 400)


def test_a_raised_measurement_is_weighted_against_the_prior_by_its_floored_precision():
    # 60 of the probe's 100 errors fixed: raw share 0.6, scaled x3 to 1.8; the bootstrap variance is under the
    # 1/errors floor, so the measurement's variance is 9/100 against the prior's 0.15^2
    labels, probe, tuned = _design(recovered=60)
    g = measured_gain(labels, probe, tuned)
    w_measured, w_prior = 1 / (MEASURED_SCALE**2 / 100), 1 / PRIOR_SD**2
    share = (w_measured * 1.8 + w_prior * PRIOR_SHARE) / (w_measured + w_prior)
    sd = math.sqrt(1 / (w_measured + w_prior))
    assert g.share == pytest.approx(share) and share == pytest.approx(0.56)
    assert g.share_low == pytest.approx(share - 1.96 * sd)
    assert g.share_high == MAX_SHARE  # 0.56 + 0.26 clipped
    assert g.source == "measured: +60% of the probe's error recovered out of fold, scaled x3 and combined with the prior"
    assert g.gain == pytest.approx(15.0) and g.gain_low < 15.0 < g.gain_high
    assert (g.probe_accuracy, g.tuned_accuracy) == (0.75, 0.90)
    assert g.tuned_log_loss == pytest.approx(-(360 * math.log(0.9) + 40 * math.log(0.1)) / 400)
    assert len(g.boot_shares) == len(g.boot_probe_shift) == 400
    assert g.boot_probe_shift.mean() == pytest.approx(0.0, abs=0.01)


def test_a_share_measured_far_above_the_prior_is_capped():
    labels, probe, tuned = _design(n=4000, probe_errors=1000, recovered=1000)  # every error fixed, on 1,000 errors
    g = measured_gain(labels, probe, tuned)
    assert g.share == MAX_SHARE and g.share_high == MAX_SHARE and g.share_low < MAX_SHARE


def test_a_probe_without_errors_measures_no_share():
    labels, probe, tuned = _design(probe_errors=0)
    g = measured_gain(labels, probe, tuned)
    assert g.share == PRIOR_SHARE and g.gain == 0.0 and g.source.startswith("measured +0% ")
