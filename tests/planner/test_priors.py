"""The planner's fine-tuning priors: fitted from trained candidates, leave one data set out, shipped as JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibgate.bench.regret import loo_priors
from calibgate.planner.priors import (
    MAX_SHIFT, MAX_SLOPE, MIN_SHIFT_SD, PRIORS_FILE, Priors, fit_priors, load_priors, logit, sigmoid, true_shift,
)

RESULTS = {
    "a": {"embedding-probe": 0.80, "full-finetune": 0.85, "lora/r8": 0.84, "lora/r16": 0.86, "retrieval": 0.7},
    "b": {"embedding-probe": 0.90, "full-finetune": 0.95, "lora/r8": 0.94, "lora/r16": 0.96, "retrieval": 0.8},
    # full fine-tuning loses here: a negative shift, and LoRA's collapse counts in its mean difference
    "c": {"embedding-probe": 0.90, "full-finetune": 0.895, "lora/r8": 0.80, "lora/r16": 0.80, "retrieval": 0.8},
}


def _shift(probe, full):
    return float(np.log(full / (1 - full)) - np.log(probe / (1 - probe)))


def test_fit_takes_the_mean_log_odds_shift_its_spread_and_mean_lora_differences():
    p = fit_priors(RESULTS)
    shifts = [_shift(0.80, 0.85), _shift(0.90, 0.95), _shift(0.90, 0.895)]
    assert p.shift == pytest.approx(np.mean(shifts))
    assert p.shift_sd == pytest.approx(max(MIN_SHIFT_SD, np.std(shifts, ddof=1)))
    assert p.lora_offset == {8: pytest.approx((-0.01 - 0.01 - 0.095) / 3), 16: pytest.approx((0.01 + 0.01 - 0.095) / 3)}
    assert p.fitted_on == ("a", "b", "c") and "3 data sets" in p.source


def test_a_log_odds_shift_gains_less_near_the_ceiling():
    # the same shift: several points at 80%, a fraction of a point at 98%
    at = lambda p, s: float(sigmoid(logit(p) + s)) - p  # noqa: E731
    assert at(0.80, 0.34) > 0.04 > 0.01 > at(0.98, 0.34) > 0
    assert logit(0.0) < -9 and logit(1.0) > 9  # clipped, never infinite


def test_lora_offset_interpolates_in_log_rank_and_is_flat_beyond():
    p = Priors(lora_offset={8: -0.01, 16: 0.01})
    assert p.offset(8) == pytest.approx(-0.01) and p.offset(16) == pytest.approx(0.01)
    assert p.offset(4) == pytest.approx(-0.01) and p.offset(64) == pytest.approx(0.01)
    assert p.offset(11) == pytest.approx(-0.01 + 0.02 * (np.log2(11) - 3))
    assert Priors(lora_offset={}).offset(8) == 0.0


def _results(shifts: dict[str, float]) -> dict[str, dict[str, float]]:
    """Candidates whose full fine-tuning moves a 75% probe's log-odds by ``shifts[name]``."""
    return {name: {"embedding-probe": 0.75, "full-finetune": float(sigmoid(logit(0.75) + s))} for name, s in shifts.items()}


def test_the_reading_calibration_is_a_least_squares_line_over_data_sets():
    # true shift = 0.2 + 0.5 x reading exactly, whatever the number of plans per data set
    readings = {"a": [0.0, 0.2, 0.4], "b": [0.6], "c": [-0.4, -0.2]}
    results = _results({name: 0.2 + 0.5 * float(np.mean(r)) for name, r in readings.items()})
    # the line fits plan by plan: each plan's reading against its data set's one true shift
    p = fit_priors(results, readings)
    assert p.reading_fitted_on == ("a", "b", "c") and "3 data sets' plans" in p.reading_source
    assert p.reading_slope == pytest.approx(0.5, abs=0.05) and p.reading_intercept == pytest.approx(0.2, abs=0.02)
    assert p.reading_sd >= MIN_SHIFT_SD
    assert float(p.from_reading(0.4)) == pytest.approx(p.reading_intercept + 0.4 * p.reading_slope)
    assert float(p.from_reading(100.0)) == MAX_SHIFT  # capped like every shift


def test_each_data_set_weighs_the_same_however_many_plans_it_has():
    # d's 30 plans must not outvote a, b and c's one each
    results = _results({"a": 0.0, "b": 0.5, "c": 1.0, "d": 0.5})
    few = fit_priors(results, {"a": [0.0], "b": [0.5], "c": [1.0], "d": [0.5]})
    many = fit_priors(results, {"a": [0.0], "b": [0.5], "c": [1.0], "d": [0.5] * 30})
    assert many.reading_slope == pytest.approx(few.reading_slope) and many.reading_intercept == pytest.approx(few.reading_intercept)


def test_a_reading_that_goes_against_the_gain_never_gets_a_negative_slope():
    results = _results({"a": 1.0, "b": 0.5, "c": 0.0})
    p = fit_priors(results, {"a": [-1.0], "b": [0.0], "c": [1.0]})
    assert p.reading_slope == 0.0 and p.reading_intercept == pytest.approx(0.5)  # the mean shift: the reading ignored
    steep = fit_priors(results, {"a": [0.1], "b": [0.05], "c": [0.0]})  # 10x: clipped
    assert steep.reading_slope == MAX_SLOPE


def test_too_few_data_sets_with_readings_keep_the_hand_set_calibration():
    default = Priors()
    p = fit_priors(RESULTS, {"a": [0.1], "b": [0.2]})
    assert (p.reading_intercept, p.reading_slope, p.reading_sd, p.reading_fitted_on) == (
        default.reading_intercept, default.reading_slope, default.reading_sd, ())
    assert fit_priors(RESULTS).reading_source == "hand-set"


def test_leave_one_out_never_sees_the_held_out_data_set():
    candidates = {name: {k: {"accuracy": a} for k, a in accs.items()} for name, accs in RESULTS.items()}
    priors = loo_priors(candidates)
    assert all(name not in p.fitted_on for name, p in priors.items())
    four = {**candidates, "d": candidates["a"]}
    readings = {"a": [0.1], "b": [0.3], "c": [-0.2], "d": [0.2]}
    with_readings = loo_priors(four, readings)
    assert all(name not in p.reading_fitted_on and len(p.reading_fitted_on) == 3 for name, p in with_readings.items())
    assert with_readings["d"] == fit_priors(
        {k: {c: v["accuracy"] for c, v in four[k].items()} for k in "abc"}, {k: readings[k] for k in "abc"})
    assert true_shift(RESULTS["a"]) == pytest.approx(_shift(0.80, 0.85))
    assert priors["c"].shift == pytest.approx((_shift(0.80, 0.85) + _shift(0.90, 0.95)) / 2)  # a and b only
    assert loo_priors({"a": candidates["a"]})["a"] == load_priors()  # nothing to leave out: the shipped priors


def test_json_round_trip_and_the_shipped_file_loads():
    p = fit_priors(RESULTS)
    assert Priors.from_json(p.to_json()) == p
    four = {**RESULTS, "d": RESULTS["a"]}
    fitted = fit_priors(four, {"a": [0.1], "b": [0.3], "c": [-0.2], "d": [0.2, 0.1]})
    assert fitted.reading_fitted_on and Priors.from_json(fitted.to_json()) == fitted
    # a priors file from before the reading calibration loads with the hand-set calibration
    old = {k: v for k, v in json.loads(p.to_json()).items() if not k.startswith("reading")}
    assert Priors.from_json(json.dumps(old)) == p
    shipped = load_priors()
    assert -3 <= shipped.shift <= 3 and shipped.shift_sd >= MIN_SHIFT_SD and shipped.lora_offset
    if PRIORS_FILE.exists():  # fitted by the benchmark on the shared data sets
        assert shipped == Priors.from_json(PRIORS_FILE.read_text()) and len(shipped.fitted_on) >= 3


def test_without_the_file_the_hand_set_defaults_apply(hand_set_priors):
    assert load_priors() == Priors() and load_priors().source == "hand-set defaults"
