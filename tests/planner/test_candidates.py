"""predict_candidates() and lora_offset() on hand-made curves and gains: caps, log-odds shifts, ceiling, clipping, evidence."""

from __future__ import annotations

import pytest

from calibgate.planner.candidates import lora_offset, predict_candidates
from calibgate.planner.gain import GainEstimate, prior_gain
from calibgate.planner.priors import logit, sigmoid
from tests.planner.records import key

pytestmark = pytest.mark.usefixtures("hand_set_priors")

KNN_BASIS = "kNN learning curve extrapolated to the target size"


def _gain(shift, low=None, high=None, measured=True):
    return GainEstimate(
        measured=measured, shift=shift, shift_low=shift if low is None else low, shift_high=shift if high is None else high,
        source="test source",
    )


def _moved(p, shift, ceiling=1.0):
    return float(ceiling * sigmoid(logit(min(p, ceiling) / ceiling) + shift))


def _predict(probe=(0.80, 0.78, 0.82), knn=(0.75, 0.70, 0.80), *, target_size=2000, calibration_size=300, lora_ranks=(8,),
             gain=None, **kw):
    out = predict_candidates(
        probe=probe, knn=knn, target_size=target_size, calibration_size=calibration_size, lora_ranks=list(lora_ranks),
        gain=gain or _gain(0.5), **kw,
    )
    return {f"{p.strategy}/r{p.lora_rank}" if p.lora_rank else p.strategy: p for p in out}


def _triple(p):
    """(point, low, high), rounded past float noise so a test can state exact values."""
    return round(p.accuracy, 10), round(p.low, 10), round(p.high, 10)


def test_candidates_come_in_catalogue_order_with_ranks_as_listed():
    preds = predict_candidates(
        probe=(0.8, 0.78, 0.82), knn=(0.75, 0.7, 0.8), target_size=2000, calibration_size=300, lora_ranks=[16, 8], gain=_gain(0.5),
    )
    assert [(p.strategy, p.lora_rank) for p in preds] == [
        ("embedding-probe", None), ("retrieval", None), ("lora", 16), ("lora", 8), ("full-finetune", None),
    ]


def test_the_probe_is_its_curve_as_measured():
    probe = _predict()["embedding-probe"]
    assert _triple(probe) == (0.80, 0.78, 0.82)
    assert probe.basis == "probe learning curve extrapolated to the target size" and probe.evidence == "measured"


# --- kNN ------------------------------------------------------------------------------------------------------------------

def test_knn_below_the_probe_is_left_alone():
    knn = _predict(knn_lead=-0.02)["retrieval"]
    assert _triple(knn) == (0.75, 0.70, 0.80) and knn.basis == KNN_BASIS and knn.evidence == "measured"


def test_knn_ahead_is_capped_at_the_probe_when_training_sees_more_data_and_its_interval_moves_with_it():
    knn = _predict(probe=(0.70, 0.65, 0.75), knn=(0.95, 0.90, 1.0), knn_lead=0.04)["retrieval"]
    assert _triple(knn) == (0.70, 0.65, 0.75)  # the lead is not carried to a larger training set
    assert knn.basis == KNN_BASIS + ", capped at the probe's prediction (training sees more data than calibration did)"


def test_knn_behind_now_stays_behind_by_its_lead_at_a_larger_size():
    knn = _predict(probe=(0.70, 0.65, 0.75), knn=(0.72, 0.68, 0.76), knn_lead=-0.03)["retrieval"]
    assert _triple(knn) == (0.67, 0.63, 0.71)
    assert knn.basis == KNN_BASIS + ", capped at the probe's prediction minus kNN's deficit now (-3.0%)"


@pytest.mark.parametrize("target_size", [300, 200])
def test_knn_keeps_its_measured_lead_when_training_sees_no_more_data(target_size):
    preds = _predict(probe=(0.70, 0.65, 0.75), knn=(0.95, 0.90, 1.0), target_size=target_size, calibration_size=300, knn_lead=0.04)
    assert _triple(preds["retrieval"]) == (0.74, 0.69, 0.79)
    assert preds["retrieval"].basis == KNN_BASIS + ", capped at the probe's prediction plus kNN's lead now (+4.0%)"
    within = _predict(probe=(0.70, 0.65, 0.75), knn=(0.73, 0.70, 0.76), target_size=300, calibration_size=300, knn_lead=0.04)
    assert _triple(within["retrieval"]) == (0.73, 0.70, 0.76) and within["retrieval"].basis == KNN_BASIS


# --- fine-tuning: a log-odds shift of the probe, LoRA's offset from that, the noise ceiling --------------------------------

def test_lora_offset_is_zero_with_the_hand_set_priors():
    assert lora_offset(8) == lora_offset(16) == 0.0


def test_full_fine_tuning_shifts_the_probe_log_odds_at_each_end_and_lora_adds_its_offset():
    from calibgate.planner.priors import Priors

    preds = _predict(lora_ranks=[8, 16], gain=_gain(0.5, 0.25, 0.75), priors=Priors(lora_offset={8: -0.01, 16: 0.005}))
    full = (_moved(0.80, 0.5), _moved(0.78, 0.25), _moved(0.82, 0.75))
    assert _triple(preds["full-finetune"]) == tuple(round(v, 10) for v in full)
    assert _triple(preds["lora/r8"]) == tuple(round(v - 0.01, 10) for v in full)
    assert preds["lora/r16"].accuracy == pytest.approx(full[0] + 0.005)
    assert preds["full-finetune"].basis == "probe prediction with its log-odds moved +0.50 (test source)"
    assert preds["lora/r8"].basis == "full fine-tuning's prediction -1.0 points (rank 8, prior)"


def test_the_same_shift_gains_less_where_the_probe_is_near_the_ceiling():
    low = _predict(probe=(0.70, 0.70, 0.70), gain=_gain(0.5))["full-finetune"].accuracy - 0.70
    high = _predict(probe=(0.97, 0.97, 0.97), gain=_gain(0.5))["full-finetune"].accuracy - 0.97
    assert low > 0.08 > 0.02 > high > 0


def test_the_ceiling_is_lowered_by_half_the_label_noise():
    preds = _predict(gain=_gain(0.5), noise_rate=0.10)  # ceiling 0.95
    assert preds["full-finetune"].accuracy == pytest.approx(_moved(0.80, 0.5, 0.95))
    assert preds["full-finetune"].accuracy < _predict(gain=_gain(0.5))["full-finetune"].accuracy
    # a probe already above the ceiling gains nothing from tuning (and is not predicted to lose to it)
    high = _predict(probe=(0.97, 0.96, 0.98), gain=_gain(0.5), noise_rate=0.10)
    assert _triple(high["full-finetune"]) == (0.97, 0.96, 0.98) and _triple(high["lora/r8"]) == (0.97, 0.96, 0.98)


def test_predictions_are_clipped_to_0_1_with_low_le_point_le_high():
    preds = _predict(probe=(1.02, 0.99, 1.05), knn=(-0.05, -0.10, 0.02), gain=_gain(0.5))
    assert _triple(preds["embedding-probe"]) == (1.0, 0.99, 1.0)
    assert _triple(preds["retrieval"]) == (0.0, 0.0, 0.02)
    # an interval that misses its point is widened to hold it
    preds = _predict(probe=(0.80, 0.82, 0.85), knn=(0.70, 0.60, 0.65), gain=_gain(0.0))
    assert _triple(preds["embedding-probe"]) == (0.80, 0.80, 0.85)
    assert _triple(preds["retrieval"]) == (0.70, 0.60, 0.70)
    for p in _predict(probe=(0.99, 0.90, 1.2), knn=(1.3, 1.1, 1.5), gain=_gain(0.8, -1.0, 3.0), target_size=300).values():
        assert 0 <= p.low <= p.accuracy <= p.high <= 1, key(p)


def test_a_curve_whose_shape_is_a_prior_says_so():
    preds = _predict(knn_lead=-0.02, curve_prior=True)
    assert preds["embedding-probe"].evidence == preds["retrieval"].evidence == "measured+prior"
    assert preds["embedding-probe"].basis == (
        "probe learning curve (shape a prior: too few examples per class to fit it) extrapolated to the target size"
    )
    assert preds["retrieval"].basis.startswith("kNN learning curve (shape a prior")


def test_evidence_says_what_is_measured_and_what_is_a_prior():
    measured = _predict(lora_ranks=[8, 16], gain=_gain(0.5))
    assert {k: p.evidence for k, p in measured.items()} == {
        "embedding-probe": "measured", "retrieval": "measured", "lora/r8": "measured+prior", "lora/r16": "measured+prior",
        "full-finetune": "measured",
    }
    prior = _predict(lora_ranks=[8], gain=prior_gain())
    assert {k: p.evidence for k, p in prior.items()} == {
        "embedding-probe": "measured", "retrieval": "measured", "lora/r8": "prior", "full-finetune": "prior",
    }
    assert prior["full-finetune"].basis == f"probe prediction with its log-odds moved +0.30 ({prior_gain().source})"
    assert prior["full-finetune"].accuracy == pytest.approx(_moved(0.80, 0.3))
