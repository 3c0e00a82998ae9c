"""The choice rule and candidate records on hand-made candidates: boundaries, steps, ties, eligibility."""

from __future__ import annotations

import pytest

from calibgate.planner.candidates import Prediction
from calibgate.planner.costs import CostModel
from calibgate.planner.decide import build_candidates, choose
from calibgate.records.thresholds import PlannerThresholds
from tests.planner.records import candidate, candidates, key

pytestmark = pytest.mark.usefixtures("hand_set_priors")


def _pick(table, tolerance, saving):
    chosen, best = choose(candidates(table), tolerance, saving)
    return key(chosen), key(best)


# --- tolerance: inclusive at best - tolerance, on 4-decimal accuracies as the plan rounds them ----------------------

# exactly at the boundary: within (the last three failed to binary rounding of the subtraction); one 4th decimal below: not
@pytest.mark.parametrize(
    "best, cheaper, tolerance, within",
    [
        (0.86, 0.85, 1.0, True), (0.86, 0.80, 6.0, True), (0.5056, 0.4956, 1.0, True), (0.5147, 0.4947, 2.0, True),
        (0.5007, 0.4957, 0.5, True), (0.86, 0.8499, 1.0, False), (0.86, 0.7999, 6.0, False), (0.5056, 0.4955, 1.0, False),
    ],
)
def test_a_candidate_exactly_at_best_minus_tolerance_is_within(best, cheaper, tolerance, within):
    table = {"embedding-probe": (cheaper, 10.0), "full-finetune": (best, 200.0)}
    assert _pick(table, tolerance, 0.2) == ("embedding-probe" if within else "full-finetune", "full-finetune")


def test_tolerance_zero_keeps_the_best_unless_a_cheaper_one_is_as_good():
    table = {"embedding-probe": (0.8599, 10.0), "full-finetune": (0.86, 200.0)}
    assert _pick(table, 0.0, 0.0) == ("full-finetune", "full-finetune")
    table = {"embedding-probe": (0.86, 10.0), "full-finetune": (0.86, 200.0)}
    assert _pick(table, 0.0, 0.2) == ("embedding-probe", "embedding-probe")  # equal accuracy: the cheaper one is best


# --- min_cost_saving: a step must save at least that share of the current choice's seconds ---------------------------

# exactly the saving: taken (3.0 -> 2.1 at 0.3 and 1.2 -> 0.9 at 0.25 failed to rounding); a hair less: not
@pytest.mark.parametrize(
    "dear, cheap, saving, taken",
    [
        (200.0, 160.0, 0.2, True), (300.0, 240.0, 0.2, True), (3.0, 2.1, 0.3, True), (1.2, 0.9, 0.25, True),
        (100.0, 50.0, 0.5, True), (100.0, 100.0, 0.0, True),
        (200.0, 160.1, 0.2, False), (3.0, 2.11, 0.3, False), (100.0, 50.01, 0.5, False), (100.0, 100.01, 0.0, False),
    ],
)
def test_a_step_saving_exactly_min_cost_saving_is_taken(dear, cheap, saving, taken):
    table = {"lora/r8": (0.855, cheap), "full-finetune": (0.86, dear)}
    assert _pick(table, 1.0, saving) == ("lora/r8" if taken else "full-finetune", "full-finetune")


def test_steps_down_a_chain_of_cheaper_candidates_each_saving_enough():
    # each step saves 50% of the previous choice: full -> lora/r16 -> lora/r8 -> probe
    table = {
        "embedding-probe": (0.853, 20.0), "lora/r8": (0.855, 50.0), "lora/r16": (0.857, 100.0), "full-finetune": (0.86, 200.0),
    }
    assert _pick(table, 1.0, 0.5) == ("embedding-probe", "full-finetune")
    # lora/r16 saves only 25%: it is skipped, and lora/r8 (75% below full) is stepped to from full directly
    table["lora/r16"] = (0.857, 150.0)
    assert _pick(table, 1.0, 0.5) == ("embedding-probe", "full-finetune")
    # lora/r8 saves 50% of full, but the probe saves only 40% of lora/r8: the chain stops at lora/r8
    table = {"embedding-probe": (0.853, 60.0), "lora/r8": (0.855, 100.0), "full-finetune": (0.86, 200.0)}
    assert _pick(table, 1.0, 0.5) == ("lora/r8", "full-finetune")


def test_a_step_is_measured_from_the_current_choice_not_from_the_best():
    # retrieval saves 7% of the probe's time: not worth its lower accuracy, though 97% under full fine-tuning
    table = {"embedding-probe": (0.985, 56.0), "retrieval": (0.983, 52.0), "full-finetune": (0.99, 2000.0)}
    assert _pick(table, 1.0, 0.2) == ("embedding-probe", "full-finetune")


def test_a_cheaper_candidate_outside_tolerance_does_not_interrupt_the_chain():
    table = {"retrieval": (0.70, 5.0), "embedding-probe": (0.855, 10.0), "full-finetune": (0.86, 200.0)}
    assert _pick(table, 1.0, 0.2) == ("embedding-probe", "full-finetune")


# --- the best: highest accuracy, then cheapest, then the catalogue's order ---------------------------------------------

def test_best_is_the_highest_accuracy_whatever_it_costs():
    table = {"embedding-probe": (0.80, 10.0), "full-finetune": (0.90, 200.0), "lora/r8": (0.89, 190.0)}
    assert _pick(table, 0.5, 0.2) == ("full-finetune", "full-finetune")


def test_equal_accuracy_best_is_the_cheapest():
    table = {"full-finetune": (0.86, 200.0), "lora/r16": (0.86, 150.0), "lora/r8": (0.86, 180.0)}
    assert _pick(table, 0.0, 0.5) == ("lora/r16", "lora/r16")


@pytest.mark.parametrize("saving", [0.0, 0.2])
@pytest.mark.parametrize("order", [("embedding-probe", "retrieval"), ("retrieval", "embedding-probe")])
def test_equal_accuracy_and_cost_are_broken_by_the_catalogue_order(order, saving):
    # the probe comes before retrieval in the catalogue: it wins in whatever order the candidates are listed
    table = {k: (0.85, 10.0) for k in order}
    assert _pick(table, 1.0, saving) == ("embedding-probe", "embedding-probe")


def test_equally_priced_steps_take_the_simpler_strategy_without_a_cost_saving():
    # same seconds, lower accuracy within tolerance: with min_cost_saving=0 a step may save nothing; the simplest wins
    table = {"retrieval": (0.848, 10.0), "embedding-probe": (0.846, 10.0), "full-finetune": (0.85, 200.0)}
    assert _pick(table, 1.0, 0.0) == ("embedding-probe", "full-finetune")


# --- eligibility ---------------------------------------------------------------------------------------------------------

def test_an_ineligible_candidate_is_neither_best_nor_chosen():
    cands = [candidate("embedding-probe", 0.80, 10.0), candidate("retrieval", 0.79, 5.0), candidate("full-finetune", 0.95, 200.0, eligible=False)]
    chosen, best = choose(cands, 1.0, 0.2)
    assert (key(chosen), key(best)) == ("retrieval", "embedding-probe")  # retrieval saves 50% and is within 1 point
    chosen, best = choose(cands, 0.5, 0.2)
    assert (key(chosen), key(best)) == ("embedding-probe", "embedding-probe")


def test_an_ineligible_cheap_candidate_within_tolerance_is_not_stepped_to():
    cands = [candidate("embedding-probe", 0.855, 10.0, eligible=False), candidate("full-finetune", 0.86, 200.0)]
    chosen, best = choose(cands, 1.0, 0.2)
    assert chosen is best and key(best) == "full-finetune"


def test_when_nothing_is_eligible_the_rule_runs_over_every_candidate():
    cands = [candidate("embedding-probe", 0.855, 10.0, eligible=False), candidate("full-finetune", 0.86, 200.0, eligible=False)]
    chosen, best = choose(cands, 1.0, 0.2)
    assert (key(chosen), key(best)) == ("embedding-probe", "full-finetune")


# --- build_candidates ----------------------------------------------------------------------------------------------------

def _predictions():
    return [
        Prediction("embedding-probe", None, 0.812345, 0.79, 0.83, "probe basis", "measured"),
        Prediction("retrieval", None, 0.8, 0.77, 0.82, "kNN basis", "measured"),
        Prediction("lora", 8, 0.85, 0.80, 0.88, "lora basis", "measured+prior"),
        Prediction("full-finetune", None, 0.86, 0.81, 0.90, "full basis", "prior"),
    ]


def test_build_candidates_carries_predictions_costs_and_catalogue_latency():
    # reference cost model at 1,000 examples, 2 classes: probe 5 s embedding + 2 s head + 1 s, retrieval 5 + 0.5 s,
    # LoRA r8 5 + 4 epochs x 1000 / 25 per s x 0.95 x (1 + 8/256), full 5 + 160 s
    out = build_candidates(_predictions(), costs=CostModel(), target_size=1000, n_classes=2, thresholds=PlannerThresholds())
    assert [key(c) for c in out] == ["embedding-probe", "retrieval", "lora/r8", "full-finetune"]
    assert [c.estimated_train_seconds for c in out] == [8.0, 5.5, 161.8, 165.0]
    assert [c.latency_class for c in out] == ["encoder", "encoder+index", "encoder", "encoder"]
    assert [c.basis for c in out] == ["measured", "measured", "measured+prior", "prior"]
    assert [c.note for c in out] == ["probe basis", "kNN basis", "lora basis", "full basis"]
    assert all(c.eligible for c in out)
    probe = out[0]
    assert probe.predicted_accuracy == 0.8123  # rounded to 4 decimals, as the plan records it
    assert (probe.predicted_accuracy_ci.low, probe.predicted_accuracy_ci.high) == (0.79, 0.83)
    assert probe.predicted_accuracy_ci.level == 0.95
    assert probe.predicted_accuracy_ci.method == "learning-curve fits across repeats"
    assert out[2].lora_rank == 8 and out[0].lora_rank is None


def test_build_candidates_prices_at_the_target_size_and_class_count():
    out = build_candidates(_predictions()[:1], costs=CostModel(), target_size=2000, n_classes=20, thresholds=PlannerThresholds())
    assert out[0].estimated_train_seconds == 10.0 + 8.0 + 1.0  # 2000/200 s embedding, 0.002 x 2000 x 20/10 s head, 1 s


def test_max_train_seconds_makes_slower_candidates_ineligible_and_says_so():
    t = PlannerThresholds(max_train_seconds=8)  # the probe takes exactly 8.0 s: allowed
    out = build_candidates(_predictions(), costs=CostModel(), target_size=1000, n_classes=2, thresholds=t)
    assert [c.eligible for c in out] == [True, True, False, False]
    assert out[0].note == "probe basis"
    assert out[2].note == "over the policy's max_train_seconds (8 s); lora basis"
    assert out[3].note == "over the policy's max_train_seconds (8 s); full basis"
    assert out[3].estimated_train_seconds == 165.0 and out[3].basis == "prior"  # still priced and explained
    out = build_candidates(_predictions(), costs=CostModel(), target_size=1000, n_classes=2, thresholds=PlannerThresholds(max_train_seconds=7.5))
    assert [c.eligible for c in out] == [False, True, False, False]
    assert out[0].note == "over the policy's max_train_seconds (7.5 s); probe basis"
