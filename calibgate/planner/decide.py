"""From signals and candidate predictions to a recommendation with reasons.

The usual decision tree (too few examples -> collect labels; noisy -> fix
labels; imbalanced -> weighted loss; shift -> production-like data) gates
the data; among trainable candidates the plan picks the cheapest whose
predicted accuracy is within the policy's tolerance of the best predicted
one. Every step is one sentence naming the signal and the threshold.
"""

from __future__ import annotations

from calibgate.planner.candidates import Prediction
from calibgate.planner.costs import CostModel, latency_class
from calibgate.planner.priors import Priors, load_priors
from calibgate.records.plan import Candidate, Interval, Recommendation, Signals
from calibgate.records.strategies import STRATEGIES, candidate_key, tunes_encoder
from calibgate.records.thresholds import PlannerThresholds

# Slack for the inclusive boundaries: accuracies are rounded to 4 decimals and seconds to 0.1 s, so a candidate exactly
# ``tolerance`` points below the best (0.4956 against 0.5056 at 1 point) or saving exactly ``min_cost_saving`` (2.1 s
# against 3.0 s at 0.3) must not be lost to binary rounding of the subtraction.
_EPS = 1e-9


def _within_tolerance(c: Candidate, best: Candidate, tolerance_points: float) -> bool:
    return c.predicted_accuracy >= best.predicted_accuracy - tolerance_points / 100 - _EPS


def build_candidates(predictions: list[Prediction], *, costs: CostModel, target_size: int, n_classes: int, thresholds: PlannerThresholds) -> list[Candidate]:
    out = []
    for p in predictions:
        seconds = costs.train_seconds(p.strategy, target_size, lora_rank=p.lora_rank, n_classes=n_classes)
        eligible = thresholds.max_train_seconds is None or seconds <= thresholds.max_train_seconds
        note = p.basis if eligible else f"over the policy's max_train_seconds ({thresholds.max_train_seconds:g} s); {p.basis}"
        out.append(
            Candidate(
                strategy=p.strategy,
                lora_rank=p.lora_rank,
                predicted_accuracy=round(p.accuracy, 4),
                predicted_accuracy_ci=Interval(low=p.low, high=p.high, method="learning-curve fits across repeats"),
                estimated_train_seconds=round(seconds, 1),
                latency_class=latency_class(p.strategy),
                eligible=eligible,
                basis=p.evidence,
                note=note,
            )
        )
    return out


def _pool(candidates: list[Candidate]) -> list[Candidate]:
    """What the choice is made from: the eligible candidates, or all of them when none is (the plan then says so)."""
    return [c for c in candidates if c.eligible] or candidates


def choose(candidates: list[Candidate], tolerance_points: float, min_cost_saving: float = 0.0) -> tuple[Candidate, Candidate]:
    """(chosen, best): step down from the best prediction to cheaper eligible candidates within ``tolerance_points`` of
    it, each step saving at least ``min_cost_saving`` of the current choice's training time.

    Stepwise, so a trivial saving never buys a less accurate candidate at any step (retrieval 7% cheaper than
    the probe does not replace it), while a large one (the probe at a fifth of fine-tuning's time) does.
    """
    eligible = _pool(candidates)
    # equal accuracy and cost: the catalogue's simpler strategy, whatever order the candidates come in
    best = max(eligible, key=lambda c: (c.predicted_accuracy, -c.estimated_train_seconds, -STRATEGIES[c.strategy].order))
    within = [c for c in eligible if _within_tolerance(c, best, tolerance_points)]
    chosen = best
    for c in sorted(within, key=lambda c: (-c.estimated_train_seconds, -STRATEGIES[c.strategy].order)):
        if c.estimated_train_seconds <= (1 - min_cost_saving) * chosen.estimated_train_seconds + _EPS and c is not chosen:
            chosen = c
    return chosen, best


def _conflict_sentence(signals: Signals) -> str | None:
    """The sentence naming duplicates that carry different labels, or None without any. It names them and does not
    gate: the signal mixes exact copies with near duplicates (cosine >= 0.97), and a weak encoder puts distinct texts
    of different classes that close."""
    dup = signals.duplicates
    if not dup.conflicting_label_groups:
        return None
    rows = len({i for group in dup.conflicting_examples for i in group})
    n = sum(signals.imbalance.counts.values()) or 1
    at_least = "at least " if dup.conflicting_label_groups > len(dup.conflicting_examples) else ""
    return (
        f"Resolve conflicting duplicates: {at_least}{rows} rows ({rows / n:.1%}) in {dup.conflicting_label_groups} "
        "group(s) of identical or near-identical texts carry different labels (rows in "
        "signals.duplicates.conflicting_examples)."
    )


def _exact_conflict_sentence(signals: Signals, thresholds: PlannerThresholds) -> str | None:
    """The sentence gating on identical texts with different labels, when they are more than max_label_noise."""
    rows = signals.duplicates.exact_conflict_rows
    share = rows / (sum(signals.imbalance.counts.values()) or 1)
    if share <= thresholds.max_label_noise:
        return None
    return (f"Fix labels first: {rows} rows ({share:.1%}, over max_label_noise={thresholds.max_label_noise:.0%}) share "
            "their exact text (case and spaces aside) with a row of another label.")


NOTHING_TO_LEARN_POINTS = 1.0  # every view within this of always answering the majority class


def _nothing_to_learn(signals: Signals) -> str | None:
    """The sentence saying no view of the texts predicts the labels, or None.

    The frozen probe, kNN and (when measured) the hidden-state probe all at the majority class's accuracy mean the
    labels carry nothing the encoder sees in the texts (labels joined to the wrong texts, identical texts): training
    anything would learn the class shares. The plan said 'lora/r16, stable 100%' for 30 identical texts.
    """
    sep, ft = signals.separability, signals.fine_tuning
    views = [sep.probe_accuracy, sep.knn_accuracy] + ([ft.tuned_accuracy] if ft is not None and ft.tuned_accuracy is not None else [])
    if max(views) * 100 > sep.majority_accuracy * 100 + NOTHING_TO_LEARN_POINTS:
        return None
    m, k = sep.majority_accuracy, max(len(signals.imbalance.counts), 2)
    if sep.probe_macro_f1 > (2 * m / (1 + m)) / k + 0.02:  # a rare class found at all (a 95/5 moderation task)
        return None
    return (
        f"Fix labels first: no view of the texts predicts the labels better than always answering the majority class "
        f"({sep.majority_accuracy:.1%}; probe {sep.probe_accuracy:.1%}, kNN {sep.knn_accuracy:.1%}"
        + (f", hidden states {ft.tuned_accuracy:.1%}" if ft is not None and ft.tuned_accuracy is not None else "")
        + "): check that each label belongs to its text before training anything."
    )


def recommend(signals: Signals, candidates: list[Candidate], thresholds: PlannerThresholds, priors: Priors | None = None) -> Recommendation:
    tol = thresholds.tolerance
    prior = priors or load_priors()
    prior_shift = prior.shift
    chosen, best = choose(candidates, tol, thresholds.min_cost_saving)
    rationale: list[str] = []
    modifiers: list[str] = []
    sep, noise, imb, starv, shift = (
        signals.separability, signals.label_noise, signals.imbalance, signals.starvation, signals.domain_shift,
    )
    strategy = chosen.strategy

    # 1. data gates
    if imb.classes_under_min:
        strategy = "collect-more-labels"
        rationale.append(
            f"Collect labels first: {len(imb.classes_under_min)} class(es) ({', '.join(imb.classes_under_min[:5])}) have "
            f"fewer than min_examples_per_class={thresholds.min_examples_per_class} calibration examples (smallest: {imb.min_count})."
        )
    noisy = noise.estimated_rate > thresholds.max_label_noise
    trusted_noise = not noise.trust_warnings
    conflicts = _conflict_sentence(signals)
    label_gate = _exact_conflict_sentence(signals, thresholds) or _nothing_to_learn(signals)
    if label_gate is not None:  # certain whatever the probe's strength, so trusted where the noise estimate is not
        rationale.append(label_gate)
        if strategy != "collect-more-labels":
            strategy = "fix-labels"
    if noisy and trusted_noise and strategy != "collect-more-labels":
        strategy = "fix-labels"
        rationale.append(
            f"Fix labels first: estimated label noise {noise.estimated_rate:.1%} exceeds max_label_noise="
            f"{thresholds.max_label_noise:.0%}; review the {len(noise.suspects)} suspects, then retrain."
        )
    elif noisy and trusted_noise:  # collecting labels comes first, but the noise is real: say so
        rationale.append(
            f"Fix labels too: estimated label noise {noise.estimated_rate:.1%} exceeds max_label_noise="
            f"{thresholds.max_label_noise:.0%}; review the {len(noise.suspects)} suspects while collecting labels."
        )
    elif noisy:
        rationale.append(
            f"Label noise estimate {noise.estimated_rate:.1%} exceeds max_label_noise={thresholds.max_label_noise:.0%}, "
            f"but it is not trustworthy here ({noise.trust_warnings[0]}); review the suspects before relabelling."
        )
    elif label_gate is None:
        rationale.append(
            f"Labels pass: estimated noise {noise.estimated_rate:.1%} ≤ max_label_noise={thresholds.max_label_noise:.0%}"
            + (f" (confident learning alone flags {noise.raw_issue_rate:.1%}; the difference is class overlap)." if noise.raw_issue_rate > noise.estimated_rate + 0.02 else ".")
        )
    if conflicts is not None:
        rationale.append(conflicts)

    # 2. the trainable choice
    rationale.append(
        f"Separability: the frozen-embedding probe reaches {sep.probe_accuracy:.1%} in {sep.folds}-fold CV "
        f"(kNN {sep.knn_accuracy:.1%}, majority class {sep.majority_accuracy:.1%})."
    )
    rationale.append(
        f"Starvation: doubling the data adds {starv.gain_per_doubling:.1f} points to the probe "
        f"(threshold starvation_gain_per_doubling={thresholds.starvation_gain_per_doubling:g}); at the target size "
        f"{starv.target_size} it is predicted to reach {starv.predicted_probe_accuracy_at_target:.1%}."
    )
    ft = signals.fine_tuning
    if ft is not None and ft.measured:
        reading = f"{prior.reading_intercept:+.2f} + {prior.reading_slope:.2f} x the reading"
        rationale.append(
            f"Fine-tuning, measured: a probe on {ft.n_layers}-block hidden states in {ft.folds}-fold cross-fitting moved "
            f"out-of-fold accuracy {ft.gain_at_calibration:+.1f} points over the frozen probe "
            f"({ft.probe_accuracy:.1%} -> {ft.tuned_accuracy:.1%}); full fine-tuning is predicted to add "
            f"{ft.predicted_gain_at_target:+.1f} points at the target size (its log-odds shift is {reading}; "
            f"calibration {prior.reading_source})."
        )
    elif ft is not None:
        rationale.append(
            f"Fine-tuning, not measured ({ft.method}): its gain is the prior log-odds shift {prior_shift:+.2f} "
            f"({ft.predicted_gain_at_target:+.1f} points); run without --fast to measure it."
        )
    best_key = candidate_key(best.strategy, best.lora_rank)
    chosen_key = candidate_key(chosen.strategy, chosen.lora_rank)
    if not any(c.eligible for c in candidates):
        cheapest = min(candidates, key=lambda c: c.estimated_train_seconds)
        rationale.append(
            f"No candidate fits max_train_seconds={thresholds.max_train_seconds:g} s (the cheapest, "
            f"{candidate_key(cheapest.strategy, cheapest.lora_rank)}, needs ~{cheapest.estimated_train_seconds:.0f} s): "
            "the choice below ignores the limit; raise it or train on fewer examples."
        )
    pool = _pool(candidates)
    close_but_dear = [
        c for c in pool
        if c is not best and c.estimated_train_seconds < best.estimated_train_seconds
        and _within_tolerance(c, best, tol)
    ]
    if chosen_key == best_key and close_but_dear:
        rationale.append(
            f"Choose {chosen_key}: it has the best predicted accuracy ({chosen.predicted_accuracy:.1%}); the cheaper "
            f"candidates within tolerance={tol:g} points ({', '.join(candidate_key(c.strategy, c.lora_rank) for c in close_but_dear)}) "
            f"would save less than min_cost_saving={thresholds.min_cost_saving:.0%} of its ~{best.estimated_train_seconds:.0f} s."
        )
    elif chosen_key == best_key:
        rationale.append(
            f"Choose {chosen_key}: it has the best predicted accuracy ({chosen.predicted_accuracy:.1%}) "
            f"and no cheaper candidate is within tolerance={tol:g} points."
        )
    else:
        rationale.append(
            f"Choose {chosen_key}: predicted {chosen.predicted_accuracy:.1%}, within tolerance={tol:g} points of the best "
            f"({best_key}, {best.predicted_accuracy:.1%}), at ~{chosen.estimated_train_seconds:.0f} s of training "
            f"instead of ~{best.estimated_train_seconds:.0f} s."
        )

    # 3. modifiers
    if imb.imbalance_ratio > thresholds.max_imbalance_ratio:
        modifiers.append("class-weighted-loss")
        rationale.append(
            f"Use class-weighted loss: largest/smallest class = {imb.imbalance_ratio:.1f}x exceeds "
            f"max_imbalance_ratio={thresholds.max_imbalance_ratio:g}."
        )
    if tunes_encoder(chosen.strategy):
        modifiers.append("early-stopping")
        rationale.append("Stop early on validation loss: tuning a pretrained encoder on a small set overfits quickly.")
    if starv.gain_per_doubling >= thresholds.starvation_gain_per_doubling:
        rationale.append(
            f"More labels would pay: the task is data-starved ({starv.gain_per_doubling:.1f} points per doubling ≥ "
            f"{thresholds.starvation_gain_per_doubling:g})."
        )
    if shift.measured and shift.auc is not None and shift.auc > thresholds.max_shift_auc:
        modifiers.append("add-production-data")
        rationale.append(
            f"Production is shifted (domain AUC {shift.auc:.2f} > max_shift_auc={thresholds.max_shift_auc:.2f}): label a "
            "sample of production texts and add it; retrieval can absorb new labeled neighbours without retraining."
        )
    elif not shift.measured:
        rationale.append("Domain shift not measured (no production sample): the test set may overstate production accuracy.")
    return Recommendation(
        strategy=strategy,
        lora_rank=chosen.lora_rank if strategy == "lora" else None,
        modifiers=modifiers,
        rationale=rationale,
        candidates=candidates,
        tolerance=tol,
        chosen_candidate=chosen_key,
    )
