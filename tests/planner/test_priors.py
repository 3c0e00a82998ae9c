"""The planner's fine-tuning priors: fitted from trained candidates, leave one data set out, shipped as JSON."""

from __future__ import annotations

import numpy as np
import pytest

from calibgate.bench.regret import loo_priors
from calibgate.planner.priors import MIN_SHIFT_SD, PRIORS_FILE, Priors, fit_priors, load_priors, logit, sigmoid

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


def test_leave_one_out_never_sees_the_held_out_data_set():
    candidates = {name: {k: {"accuracy": a} for k, a in accs.items()} for name, accs in RESULTS.items()}
    priors = loo_priors(candidates)
    assert all(name not in p.fitted_on for name, p in priors.items())
    assert priors["c"].shift == pytest.approx((_shift(0.80, 0.85) + _shift(0.90, 0.95)) / 2)  # a and b only
    assert loo_priors({"a": candidates["a"]})["a"] == load_priors()  # nothing to leave out: the shipped priors


def test_json_round_trip_and_the_shipped_file_loads():
    p = fit_priors(RESULTS)
    assert Priors.from_json(p.to_json()) == p
    shipped = load_priors()
    assert -3 <= shipped.shift <= 3 and shipped.shift_sd >= MIN_SHIFT_SD and shipped.lora_offset
    if PRIORS_FILE.exists():  # fitted by the benchmark on the shared data sets
        assert shipped == Priors.from_json(PRIORS_FILE.read_text()) and len(shipped.fitted_on) >= 3


def test_without_the_file_the_hand_set_defaults_apply(hand_set_priors):
    assert load_priors() == Priors() and load_priors().source == "hand-set defaults"
