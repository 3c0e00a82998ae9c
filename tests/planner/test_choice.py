"""Candidate predictions and the choice rule on hand-made inputs: caps, bases, tolerance, cost saving, stability."""

from __future__ import annotations

import numpy as np
import pytest

from calibgate.planner.candidates import lora_offset, predict_candidates
from calibgate.planner.costs import CostModel
from calibgate.planner.decide import build_candidates, choose
from calibgate.records.strategies import candidate_key
from calibgate.planner.gain import GainEstimate, prior_gain
from calibgate.planner.priors import logit, sigmoid
from calibgate.planner.stability import PredictionInputs, replan_stability
from calibgate.records.thresholds import PlannerThresholds

pytestmark = pytest.mark.usefixtures("hand_set_priors")


def _gain(shift: float, measured: bool = True) -> GainEstimate:
    return GainEstimate(measured=measured, shift=shift, shift_low=shift, shift_high=shift, source="test")


def _by_key(predictions):
    return {candidate_key(p.strategy, p.lora_rank): p for p in predictions}


def test_knn_is_never_predicted_ahead_of_the_probe_when_training_sees_more_data():
    # 151 classes, 3 per class now: kNN leads the probe at the calibration size, and its curve extrapolates wildly
    preds = _by_key(predict_candidates(
        probe=(0.70, 0.65, 0.75), knn=(0.95, 0.9, 1.0), target_size=2000, calibration_size=450,
        lora_ranks=[8], gain=_gain(0.3), knn_lead=0.04,
    ))
    assert preds["retrieval"].accuracy <= preds["embedding-probe"].accuracy
    assert "capped" in preds["retrieval"].basis
    # at the calibration size itself, the measured lead stands
    same = _by_key(predict_candidates(
        probe=(0.70, 0.65, 0.75), knn=(0.95, 0.9, 1.0), target_size=450, calibration_size=450,
        lora_ranks=[8], gain=_gain(0.3), knn_lead=0.04,
    ))
    assert same["retrieval"].accuracy == pytest.approx(0.74)


def test_fine_tuning_predictions_say_whether_they_are_measured():
    measured = _by_key(predict_candidates(
        probe=(0.80, 0.78, 0.82), knn=(0.75, 0.7, 0.8), target_size=2000, calibration_size=300, lora_ranks=[8, 16], gain=_gain(0.5),
    ))
    assert measured["full-finetune"].accuracy == pytest.approx(float(sigmoid(logit(0.80) + 0.5)))
    assert measured["full-finetune"].evidence == "measured" and measured["lora/r8"].evidence == "measured+prior"
    assert measured["lora/r8"].accuracy == pytest.approx(measured["full-finetune"].accuracy + lora_offset(8))
    assert measured["embedding-probe"].evidence == measured["retrieval"].evidence == "measured"
    prior = _by_key(predict_candidates(
        probe=(0.80, 0.78, 0.82), knn=(0.75, 0.7, 0.8), target_size=2000, calibration_size=300, lora_ranks=[8], gain=prior_gain(),
    ))
    assert prior["full-finetune"].evidence == prior["lora/r8"].evidence == "prior"


def _candidates(accuracies: dict[str, float], seconds: dict[str, float], thresholds=None):
    from calibgate.planner.candidates import Prediction

    preds = [
        Prediction(k.split("/")[0], int(k.split("/r")[1]) if "/r" in k else None, a, a, a, "test", "measured")
        for k, a in accuracies.items()
    ]
    out = build_candidates(preds, costs=CostModel(), target_size=1000, n_classes=2, thresholds=thresholds or PlannerThresholds())
    return [c.model_copy(update={"estimated_train_seconds": seconds[candidate_key(c.strategy, c.lora_rank)]}) for c in out]


def test_cheapest_within_tolerance_unless_the_saving_is_small():
    cands = _candidates(
        {"embedding-probe": 0.80, "retrieval": 0.70, "lora/r8": 0.855, "full-finetune": 0.86},
        {"embedding-probe": 10, "retrieval": 5, "lora/r8": 190, "full-finetune": 200},
    )
    chosen, best = choose(cands, 1.0, 0.2)
    assert candidate_key(best.strategy, best.lora_rank) == "full-finetune"
    assert chosen is best  # lora/r8 is within 1 point but saves only 5% of the time
    chosen, _ = choose(cands, 1.0, 0.0)
    assert candidate_key(chosen.strategy, chosen.lora_rank) == "lora/r8"
    chosen, _ = choose(cands, 6.0, 0.2)
    assert chosen.strategy == "embedding-probe"  # within 6 points and 95% cheaper
    # a trivial saving does not buy a less accurate candidate at any step: retrieval is 7% cheaper than the probe
    close = _candidates(
        {"embedding-probe": 0.985, "retrieval": 0.983, "lora/r8": 0.99, "full-finetune": 0.991},
        {"embedding-probe": 56, "retrieval": 52, "lora/r8": 290, "full-finetune": 300},
    )
    assert choose(close, 1.0, 0.2)[0].strategy == "embedding-probe"
    assert choose(close, 1.0, 0.0)[0].strategy == "retrieval"
    # exactly at the tolerance boundary counts as within
    chosen, _ = choose(cands, 6.0 + 1e-9, 0.2)
    assert chosen.strategy == "embedding-probe"


def test_ineligible_candidates_are_never_chosen():
    t = PlannerThresholds(max_train_seconds=50)
    cands = _candidates({"embedding-probe": 0.80, "full-finetune": 0.90}, {"embedding-probe": 10, "full-finetune": 200}, thresholds=t)
    cands = [c.model_copy(update={"eligible": c.strategy != "full-finetune"}) for c in cands]
    chosen, best = choose(cands, 0.0, 0.2)
    assert chosen.strategy == best.strategy == "embedding-probe"


def test_stability_counts_bootstrap_replans_and_says_how_many_labels_settle_it():
    t = PlannerThresholds(lora_ranks=[8])
    inputs = PredictionInputs(probe=(0.90, 0.88, 0.92), knn=(0.85, 0.8, 0.9), target_size=2000, calibration_size=200, lora_ranks=[8])
    costs = CostModel()

    def build(preds):
        return build_candidates(preds, costs=costs, target_size=2000, n_classes=2, thresholds=t)

    # the shift sits where full fine-tuning's gain crosses the tolerance (0.90 -> 0.91): resamples split the choice
    rng = np.random.default_rng(0)
    edge = float(logit(0.91) - logit(0.90))
    shaky = GainEstimate(
        measured=True, shift=edge, shift_low=edge - 0.1, shift_high=edge + 0.1, source="test",
        boot_shifts=edge + rng.normal(0, 0.06, 300), boot_probe_shift=rng.normal(0, 0.01, 300),
    )
    chosen, _ = choose(build(inputs.predict(shaky)), t.tolerance, t.min_cost_saving)
    s = replan_stability(inputs, shaky, candidate_key(chosen.strategy, chosen.lora_rank), build, thresholds=t, n=200, n_classes=2)
    assert s.resamples == 300 and not s.stable and 0 < s.agreement < 0.8
    assert sum(s.choices.values()) == pytest.approx(1.0)
    assert s.labels_per_class_to_settle is None or s.labels_per_class_to_settle > 100
    # a clear case: full fine-tuning moves the log-odds by 1 (90% -> 96%), every resample agrees
    clear = GainEstimate(
        measured=True, shift=1.0, shift_low=0.9, shift_high=1.1, source="test",
        boot_shifts=np.full(100, 1.0), boot_probe_shift=np.zeros(100),
    )
    # (LoRA ties full fine-tuning under the hand-set priors and costs less: it is the choice)
    s = replan_stability(inputs, clear, "lora/r8", build, thresholds=t, n=200, n_classes=2)
    assert s.stable and s.agreement == 1.0 and s.labels_per_class_to_settle is None and "Stable" in s.reading


def test_only_a_failed_noise_gate_lowers_the_prediction_ceiling():
    """Under max_label_noise the estimate is mostly class overlap, not wrong test labels: no ceiling. Over it, and
    trusted, the ceiling drops with it; an untrusted estimate moves nothing."""
    from calibgate.planner.api import _ceiling_noise
    from tests.planner.records import signals

    t = PlannerThresholds(max_label_noise=0.08)
    assert _ceiling_noise(signals(label_noise={"estimated_rate": 0.06}).label_noise, t) == 0.0
    assert _ceiling_noise(signals(label_noise={"estimated_rate": 0.12}).label_noise, t) == 0.12
    untrusted = signals(label_noise={"estimated_rate": 0.12, "trust_warnings": ["too few examples per class"]}).label_noise
    assert _ceiling_noise(untrusted, t) == 0.0
