"""recommend() on hand-made signals: every data gate, modifier and choice sentence, with the thresholds it names."""

from __future__ import annotations

import pytest

from calibgate.planner.decide import recommend
from calibgate.planner.priors import Priors
from calibgate.records.thresholds import PlannerThresholds
from tests.planner.records import candidate, candidates, signals, suspects

pytestmark = pytest.mark.usefixtures("hand_set_priors")

# full fine-tuning is best; lora/r8 is within 1 point but saves only 5%; the probe is 6 points down
TABLE = {
    "embedding-probe": (0.80, 10.0), "retrieval": (0.75, 6.0), "lora/r8": (0.855, 190.0), "lora/r16": (0.857, 195.0),
    "full-finetune": (0.86, 200.0),
}
LABELS_PASS = "Labels pass: estimated noise 2.0% ≤ max_label_noise=8%."
SEPARABILITY = "Separability: the frozen-embedding probe reaches 85.0% in 5-fold CV (kNN 80.0%, majority class 50.0%)."
STARVATION = (
    "Starvation: doubling the data adds 1.0 points to the probe (threshold starvation_gain_per_doubling=2); "
    "at the target size 2000 it is predicted to reach 90.0%."
)
BEST_DEAR = (
    "Choose full-finetune: it has the best predicted accuracy (86.0%); the cheaper candidates within tolerance=1 points "
    "(lora/r8, lora/r16) would save less than min_cost_saving=20% of its ~200 s."
)
EARLY_STOP = "Stop early on validation loss: tuning a pretrained encoder on a small set overfits quickly."


def _recommend(table=None, thresholds=None, priors=None, **signal_changes):
    return recommend(signals(**signal_changes), candidates(table or TABLE), thresholds or PlannerThresholds(), priors)


def test_a_clean_task_trains_the_best_candidate_with_every_step_explained():
    rec = _recommend()
    assert rec.strategy == "full-finetune" and rec.lora_rank is None and rec.chosen_candidate == "full-finetune"
    assert rec.modifiers == ["early-stopping"]
    assert rec.rationale == [LABELS_PASS, SEPARABILITY, STARVATION, BEST_DEAR, EARLY_STOP]
    assert rec.tolerance == 1.0 and [c.strategy for c in rec.candidates][:2] == ["embedding-probe", "retrieval"]


# --- data gates ----------------------------------------------------------------------------------------------------------

def test_classes_under_min_examples_per_class_say_collect_labels():
    rec = _recommend(imbalance={"classes_under_min": ["c", "d"], "min_count": 3})
    assert rec.strategy == "collect-more-labels" and rec.lora_rank is None
    assert rec.rationale[0] == (
        "Collect labels first: 2 class(es) (c, d) have fewer than min_examples_per_class=5 calibration examples (smallest: 3)."
    )
    # the trainable choice is still ranked and recorded: collect labels is advice about the calibration set
    assert rec.chosen_candidate == "full-finetune" and BEST_DEAR in rec.rationale
    assert rec.modifiers == ["early-stopping"]


def test_collect_labels_names_at_most_five_classes_and_counts_all():
    names = [f"c{i}" for i in range(7)]
    rec = _recommend(imbalance={"classes_under_min": names, "min_count": 1}, thresholds=PlannerThresholds(min_examples_per_class=4))
    assert rec.rationale[0] == (
        "Collect labels first: 7 class(es) (c0, c1, c2, c3, c4) have fewer than min_examples_per_class=4 calibration "
        "examples (smallest: 1)."
    )


def test_trusted_noise_above_max_label_noise_says_fix_labels():
    rec = _recommend(label_noise={"estimated_rate": 0.12, "raw_issue_rate": 0.15, "suspects": suspects(3)})
    assert rec.strategy == "fix-labels" and rec.chosen_candidate == "full-finetune"
    assert rec.rationale[0] == (
        "Fix labels first: estimated label noise 12.0% exceeds max_label_noise=8%; review the 3 suspects, then retrain."
    )
    assert rec.rationale[1:] == [SEPARABILITY, STARVATION, BEST_DEAR, EARLY_STOP]


def _conflicts(groups: list[list[int]], count: int | None = None) -> dict:
    return {"conflicting_label_groups": count if count is not None else len(groups), "conflicting_examples": groups,
            "exact_duplicate_groups": len(groups)}


def test_a_few_conflicting_duplicates_are_named_but_do_not_gate():
    rec = _recommend(duplicates=_conflicts([[3, 17], [40, 41, 42]]))  # 5 of 100 rows: under max_label_noise
    assert rec.strategy == "full-finetune"
    assert rec.rationale[:2] == [
        LABELS_PASS,
        "Resolve conflicting duplicates: 5 rows (5.0%) in 2 group(s) of identical or near-identical texts carry "
        "different labels (rows in signals.duplicates.conflicting_examples).",
    ]


def test_many_conflicting_duplicates_are_counted_and_named_but_never_gate():
    # near duplicates are judged by the encoder's cosine: a weak encoder puts distinct texts that close
    rec = _recommend(duplicates=_conflicts([list(range(0, 6)), list(range(10, 14))], count=60))
    assert rec.strategy == "full-finetune"
    assert rec.rationale[1] == (
        "Resolve conflicting duplicates: at least 10 rows (10.0%) in 60 group(s) of identical or near-identical texts "
        "carry different labels (rows in signals.duplicates.conflicting_examples)."
    )


def test_collecting_labels_or_fixing_noisy_ones_comes_before_conflicts_which_are_still_named():
    many = _conflicts([list(range(0, 20))])
    collect = _recommend(duplicates=many, imbalance={"classes_under_min": ["a"], "min_count": 2})
    assert collect.strategy == "collect-more-labels"
    assert collect.rationale[2].startswith("Resolve conflicting duplicates: 20 rows (20.0%)")
    noisy = _recommend(duplicates=many, label_noise={"estimated_rate": 0.12, "raw_issue_rate": 0.15, "suspects": suspects(3)})
    assert noisy.strategy == "fix-labels" and noisy.rationale[0].startswith("Fix labels first: estimated label noise")
    assert noisy.rationale[1].startswith("Resolve conflicting duplicates: 20 rows")


def test_identical_texts_with_other_labels_over_max_label_noise_say_fix_labels():
    """Before: conflicting duplicates never gated, even exact copies, and a weak probe muted the noise signal: 30
    identical texts under 3 labels got 'lora/r16, stable 100%'."""
    rec = _recommend(duplicates={**_conflicts([list(range(0, 12))]), "exact_conflict_rows": 12})  # 12 of 100 rows
    assert rec.strategy == "fix-labels" and rec.chosen_candidate == "full-finetune"
    assert rec.rationale[0] == ("Fix labels first: 12 rows (12.0%, over max_label_noise=8%) share their exact text (case "
                                "and spaces aside) with a row of another label.")
    assert LABELS_PASS not in rec.rationale
    few = _recommend(duplicates={**_conflicts([list(range(0, 8))]), "exact_conflict_rows": 8})
    assert few.strategy == "full-finetune"  # at max_label_noise: named, not gated


def test_labels_no_view_of_the_texts_predicts_say_fix_labels():
    blind = {"probe_accuracy": 0.505, "knn_accuracy": 0.49, "majority_accuracy": 0.5, "probe_macro_f1": 0.34}
    rec = _recommend(separability=blind)
    assert rec.strategy == "fix-labels"
    assert rec.rationale[0].startswith("Fix labels first: no view of the texts predicts the labels better than always "
                                       "answering the majority class (50.0%; probe 50.5%, kNN 49.0%")
    rare = _recommend(separability={**blind, "majority_accuracy": 0.95, "probe_accuracy": 0.955, "knn_accuracy": 0.95,
                                    "probe_macro_f1": 0.70})  # a 95/5 task whose rare class the probe does find
    assert rare.strategy == "full-finetune"


def test_noise_exactly_at_max_label_noise_passes():
    rec = _recommend(label_noise={"estimated_rate": 0.08, "raw_issue_rate": 0.08})
    assert rec.strategy == "full-finetune"
    assert rec.rationale[0] == "Labels pass: estimated noise 8.0% ≤ max_label_noise=8%."
    rec = _recommend(label_noise={"estimated_rate": 0.05}, thresholds=PlannerThresholds(max_label_noise=0.04))
    assert rec.strategy == "fix-labels" and "max_label_noise=4%" in rec.rationale[0]


def test_labels_pass_mentions_class_overlap_when_confident_learning_flags_more_than_two_points_above():
    rec = _recommend(label_noise={"estimated_rate": 0.02, "raw_issue_rate": 0.041})
    assert rec.rationale[0] == (
        "Labels pass: estimated noise 2.0% ≤ max_label_noise=8% (confident learning alone flags 4.1%; "
        "the difference is class overlap)."
    )
    assert _recommend(label_noise={"estimated_rate": 0.02, "raw_issue_rate": 0.04}).rationale[0] == LABELS_PASS


def test_untrusted_noise_is_reported_but_does_not_gate():
    rec = _recommend(
        label_noise={"estimated_rate": 0.12, "trust_warnings": ["3.0 examples per class: too few", "the probe is weak"]}
    )
    assert rec.strategy == "full-finetune"
    assert rec.rationale[0] == (
        "Label noise estimate 12.0% exceeds max_label_noise=8%, but it is not trustworthy here "
        "(3.0 examples per class: too few); review the suspects before relabelling."
    )


def test_trust_warnings_do_not_matter_when_noise_is_under_the_limit():
    rec = _recommend(label_noise={"trust_warnings": ["the probe is weak"]})
    assert rec.rationale[0] == LABELS_PASS and rec.strategy == "full-finetune"


def test_collect_labels_wins_over_fix_labels_and_still_says_the_labels_are_noisy():
    rec = _recommend(
        imbalance={"classes_under_min": ["c"], "min_count": 2}, label_noise={"estimated_rate": 0.12, "suspects": suspects(4)}
    )
    assert rec.strategy == "collect-more-labels"
    assert rec.rationale[:2] == [
        "Collect labels first: 1 class(es) (c) have fewer than min_examples_per_class=5 calibration examples (smallest: 2).",
        "Fix labels too: estimated label noise 12.0% exceeds max_label_noise=8%; review the 4 suspects while collecting labels.",
    ]


def test_collect_labels_with_untrusted_noise_says_the_estimate_is_not_trustworthy():
    rec = _recommend(
        imbalance={"classes_under_min": ["c"], "min_count": 2}, label_noise={"estimated_rate": 0.12, "trust_warnings": ["few"]}
    )
    assert rec.strategy == "collect-more-labels"
    assert rec.rationale[1] == (
        "Label noise estimate 12.0% exceeds max_label_noise=8%, but it is not trustworthy here (few); "
        "review the suspects before relabelling."
    )


# --- modifiers -----------------------------------------------------------------------------------------------------------

def test_imbalance_above_max_imbalance_ratio_adds_class_weighted_loss():
    rec = _recommend(imbalance={"imbalance_ratio": 4.0})
    assert rec.modifiers == ["class-weighted-loss", "early-stopping"]
    assert rec.rationale[4] == "Use class-weighted loss: largest/smallest class = 4.0x exceeds max_imbalance_ratio=3."
    assert _recommend(imbalance={"imbalance_ratio": 3.0}).modifiers == ["early-stopping"]  # at the limit: not above
    rec = _recommend(imbalance={"imbalance_ratio": 2.0}, thresholds=PlannerThresholds(max_imbalance_ratio=1.5))
    assert rec.rationale[4] == "Use class-weighted loss: largest/smallest class = 2.0x exceeds max_imbalance_ratio=1.5."


@pytest.mark.parametrize(
    "table, chosen, tunes",
    [
        ({"embedding-probe": (0.86, 10.0), "full-finetune": (0.85, 200.0)}, "embedding-probe", False),
        ({"retrieval": (0.86, 5.0), "full-finetune": (0.85, 200.0)}, "retrieval", False),
        ({"embedding-probe": (0.80, 10.0), "lora/r8": (0.86, 150.0), "full-finetune": (0.855, 200.0)}, "lora/r8", True),
        ({"embedding-probe": (0.80, 10.0), "full-finetune": (0.86, 200.0)}, "full-finetune", True),
    ],
)
def test_early_stopping_exactly_when_the_chosen_candidate_tunes_the_encoder(table, chosen, tunes):
    rec = _recommend(table)
    assert rec.chosen_candidate == chosen
    assert ("early-stopping" in rec.modifiers) is tunes and (EARLY_STOP in rec.rationale) is tunes


def test_shift_auc_above_max_shift_auc_adds_production_data():
    rec = _recommend(domain_shift={"auc": 0.80})
    assert rec.modifiers == ["early-stopping", "add-production-data"]
    assert rec.rationale[-1] == (
        "Production is shifted (domain AUC 0.80 > max_shift_auc=0.75): label a sample of production texts and add it; "
        "retrieval can absorb new labeled neighbours without retraining."
    )
    at_limit = _recommend(domain_shift={"auc": 0.75})
    assert at_limit.modifiers == ["early-stopping"] and at_limit.rationale[-1] == EARLY_STOP


def test_unmeasured_shift_is_said_and_a_measured_shift_without_auc_says_nothing():
    rec = _recommend(domain_shift={"measured": False, "auc": None, "n_production": 0})
    assert rec.modifiers == ["early-stopping"]
    assert rec.rationale[-1] == "Domain shift not measured (no production sample): the test set may overstate production accuracy."
    rec = _recommend(domain_shift={"measured": True, "auc": None})
    assert rec.rationale[-1] == EARLY_STOP


def test_data_starved_from_starvation_gain_per_doubling_up():
    rec = _recommend(starvation={"gain_per_doubling": 2.0})
    assert rec.rationale[-1] == "More labels would pay: the task is data-starved (2.0 points per doubling ≥ 2)."
    assert "More labels" not in " ".join(_recommend(starvation={"gain_per_doubling": 1.99}).rationale)
    rec = _recommend(starvation={"gain_per_doubling": 3.5}, thresholds=PlannerThresholds(starvation_gain_per_doubling=3.5))
    assert rec.rationale[-1] == "More labels would pay: the task is data-starved (3.5 points per doubling ≥ 3.5)."
    assert rec.modifiers == ["early-stopping"]  # a sentence, not a modifier


def test_every_modifier_at_once_in_order():
    rec = _recommend(
        imbalance={"imbalance_ratio": 5.0}, starvation={"gain_per_doubling": 4.0}, domain_shift={"auc": 0.9},
    )
    assert rec.modifiers == ["class-weighted-loss", "early-stopping", "add-production-data"]
    assert [s.split(":")[0] for s in rec.rationale[4:]] == [
        "Use class-weighted loss", "Stop early on validation loss", "More labels would pay", "Production is shifted (domain AUC 0.90 > max_shift_auc=0.75)",
    ]


# --- fine-tuning sentences -----------------------------------------------------------------------------------------------

def test_measured_fine_tuning_sentence_names_the_reading_calibration():
    rec = _recommend(fine_tuning={})
    assert rec.rationale[3] == (
        "Fine-tuning, measured: a probe on 6-block hidden states in 3-fold cross-fitting moved out-of-fold accuracy "
        "+3.0 points over the frozen probe (80.0% -> 83.0%); full fine-tuning is predicted to add +2.4 points at the "
        "target size (its log-odds shift is +0.30 + 0.50 x the reading; calibration hand-set)."
    )
    assert rec.rationale[4] == BEST_DEAR
    fitted = Priors(reading_intercept=0.25, reading_slope=0.4, reading_fitted_on=("a", "b", "c"))
    rec = _recommend(fine_tuning={"gain_at_calibration": -0.5, "tuned_accuracy": 0.795}, priors=fitted)
    assert rec.rationale[3].endswith(
        "-0.5 points over the frozen probe (80.0% -> 79.5%); full fine-tuning is predicted to add +2.4 points at the "
        "target size (its log-odds shift is +0.25 + 0.40 x the reading; calibration fitted on 3 data sets' plans "
        "against their trained candidates)."
    )


def test_unmeasured_fine_tuning_sentence_and_none_without_the_signal():
    rec = _recommend(fine_tuning={"measured": False, "method": "prior (--fast)", "recovered_share": 0.25, "predicted_gain_at_target": 2.5})
    assert rec.rationale[3] == (
        "Fine-tuning, not measured (prior (--fast)): its gain is the prior log-odds shift +0.30 "
        "(+2.5 points); run without --fast to measure it."
    )
    assert not any(s.startswith("Fine-tuning") for s in _recommend().rationale)


# --- the choice sentence, lora_rank, chosen_candidate --------------------------------------------------------------------

def test_best_with_nothing_cheaper_within_tolerance():
    table = {"embedding-probe": (0.80, 10.0), "lora/r8": (0.84, 190.0), "full-finetune": (0.86, 200.0)}
    rec = _recommend(table)
    assert rec.rationale[3] == (
        "Choose full-finetune: it has the best predicted accuracy (86.0%) and no cheaper candidate is within tolerance=1 points."
    )
    # an ineligible cheap candidate within tolerance is not offered as a saving
    cands = [*candidates(table), candidate("retrieval", 0.859, 5.0, eligible=False)]
    rec = recommend(signals(), cands, PlannerThresholds())
    assert rec.chosen_candidate == "full-finetune"
    assert rec.rationale[3] == (
        "Choose full-finetune: it has the best predicted accuracy (86.0%) and no cheaper candidate is within tolerance=1 points."
    )


def test_a_cheaper_candidate_chosen_names_the_best_and_both_times():
    rec = _recommend(thresholds=PlannerThresholds(tolerance=6.0))
    assert rec.strategy == "embedding-probe" and rec.chosen_candidate == "embedding-probe" and rec.lora_rank is None
    assert rec.rationale[3] == (
        "Choose embedding-probe: predicted 80.0%, within tolerance=6 points of the best (full-finetune, 86.0%), "
        "at ~10 s of training instead of ~200 s."
    )
    assert rec.modifiers == [] and rec.tolerance == 6.0


def test_a_chosen_lora_records_its_rank_and_key():
    table = {"embedding-probe": (0.80, 10.0), "lora/r16": (0.86, 150.0), "full-finetune": (0.861, 200.0)}
    rec = _recommend(table, thresholds=PlannerThresholds(tolerance=0.5))
    assert (rec.strategy, rec.lora_rank, rec.chosen_candidate) == ("lora", 16, "lora/r16")
    assert rec.rationale[3] == (
        "Choose lora/r16: predicted 86.0%, within tolerance=0.5 points of the best (full-finetune, 86.1%), "
        "at ~150 s of training instead of ~200 s."
    )
    assert "early-stopping" in rec.modifiers


def test_a_data_gate_over_a_chosen_lora_drops_the_rank_but_keeps_the_key():
    table = {"embedding-probe": (0.80, 10.0), "lora/r8": (0.86, 150.0), "full-finetune": (0.861, 200.0)}
    rec = _recommend(table, label_noise={"estimated_rate": 0.2})
    assert (rec.strategy, rec.lora_rank, rec.chosen_candidate) == ("fix-labels", None, "lora/r8")


def test_a_plan_where_no_candidate_fits_the_time_limit_says_so_before_choosing():
    table = {key: (acc, seconds) for key, (acc, seconds) in TABLE.items()}
    every = [candidate(key, acc, seconds, eligible=False) for key, (acc, seconds) in table.items()]
    rec = recommend(signals(), every, PlannerThresholds(max_train_seconds=5))
    warning = (
        "No candidate fits max_train_seconds=5 s (the cheapest, retrieval, needs ~6 s): the choice below ignores the "
        "limit; raise it or train on fewer examples."
    )
    assert rec.rationale[3] == warning and rec.rationale[4] == BEST_DEAR
    assert warning not in _recommend(thresholds=PlannerThresholds(max_train_seconds=5000)).rationale
