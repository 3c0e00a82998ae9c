"""Label noise: confident learning on out-of-fold probabilities, corrected for class overlap.

Plain confident learning (Northcutt et al. 2021, "Confident Learning:
Estimating Uncertainty in Dataset Labels", via cleanlab) on a weak probe
flags hard-but-correct examples as noise: measured here on clean banking77
and sst2 samples, it flagged 14-25% of correct labels. A wrong label and a
hard example differ in what *several views* say about them:

* both views (a linear probe and cosine kNN, out of fold) agree on one
  other class, and confidently: a typical member of another class carrying
  the wrong label;
* a hard example near a boundary splits the views or leaves the given label
  a close second, and its confusion is reciprocal (the two classes are
  confused both ways: class overlap).

The linear view is the probe on the encoder's per-layer hidden states when
the plan measured it (:mod:`calibgate.training.hidden_view`), else the
frozen sentence-embedding probe (``--fast``). A better classifier is a better
noise detector (Chong et al. 2022, "Detecting Label Errors by Using
Pre-Trained Language Models"): on planted 10% flips over the eight shared
data sets the hidden-state view moved the estimate's mean error from 4.2 to
3.2 points and the false alarm on published labels from 6.3% to 5.8%
(benchmarks/RESULTS-label-noise.md).

The reported ``estimated_rate`` counts only examples that pass the
multi-view test, so it is a conservative (high-precision) estimate; the raw
confident-learning rate is reported beside it as an upper bound, and the
gap is attributed to class overlap. Trust warnings say when the probe is too
weak or the classes too small for either number to mean much.
"""

from __future__ import annotations

import numpy as np

from calibgate.records.plan import ConfusionPair, Interval, LabelNoise, Suspect
from calibgate.signals.base import Signal, SignalContext, register_signal

MAX_SUSPECTS = 200
DOMINANCE = 2.5  # suggested class at least this many times as probable as the given one


def _confident_learning_flags(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    from cleanlab.filter import find_label_issues

    try:
        return find_label_issues(labels, pred_probs, filter_by="prune_by_noise_rate")
    except (ValueError, ZeroDivisionError):
        return np.zeros(len(labels), dtype=bool)


def multi_view_suspects(labels: np.ndarray, probe: np.ndarray, knn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(suspect mask, confident-learning flags, ensemble probabilities) for out-of-fold probe and kNN views."""
    n = len(labels)
    ensemble = (probe + knn) / 2
    flags = _confident_learning_flags(labels, ensemble)
    rows = np.arange(n)
    suggested = ensemble.argmax(axis=1)
    views_agree = (probe.argmax(axis=1) == suggested) & (knn.argmax(axis=1) == suggested)
    dominant = ensemble[rows, suggested] >= DOMINANCE * ensemble[rows, labels]
    return flags & views_agree & dominant & (suggested != labels), flags, ensemble


def label_quality(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Self-confidence label quality score (cleanlab's ``rank`` default), in [0, 1]."""
    return pred_probs[np.arange(len(labels)), labels]


@register_signal
class LabelNoiseSignal(Signal):
    name = "label_noise"

    def compute(self, ctx: SignalContext) -> LabelNoise:
        labels = ctx.labels
        hidden = ctx.hidden_proba is not None
        linear = ctx.hidden_proba if hidden else ctx.oof_probe
        view = "hidden-state probe" if hidden else "logistic probe"
        suspects_mask, flags, ensemble = multi_view_suspects(labels, linear, ctx.oof_knn)
        n = ctx.n
        rate = float(suspects_mask.mean())
        raw = float(flags.mean())
        overlap = max(0.0, raw - rate)
        suggested = ensemble.argmax(axis=1)
        quality = label_quality(labels, ensemble)
        order = np.flatnonzero(suspects_mask)[np.argsort(quality[suspects_mask])]
        suspects = [
            Suspect(
                index=int(i),
                line=ctx.line_numbers[i] if ctx.line_numbers else None,
                text=ctx.texts[i][:300],
                given_label=ctx.label_names[labels[i]],
                suggested_label=ctx.label_names[suggested[i]],
                score=float(quality[i]),
            )
            for i in order[:MAX_SUSPECTS]
        ]
        confusions = _confusions(labels, ensemble.argmax(axis=1), flags, ctx.label_names)
        rng = np.random.default_rng(ctx.seed)
        boots = suspects_mask[rng.integers(0, n, size=(500, n))].mean(axis=1)
        interval = Interval(
            low=float(np.quantile(boots, 0.025)), high=float(np.quantile(boots, 0.975)),
            method="percentile bootstrap of the suspect rate over 500 resamples",
        )
        trust = []
        probe_acc = float((linear.argmax(1) == labels).mean())
        per_class = n / ctx.n_classes
        if per_class < 10:
            trust.append(
                f"{per_class:.1f} examples per class: too few to tell wrong labels from hard examples; "
                "the estimate may miss real noise"
            )
        if probe_acc < 0.8:
            trust.append(
                f"the {view} is weak ({probe_acc:.0%}), so wrong labels hide among hard examples: "
                f"the estimate ({rate:.1%}) is a lower bound and the raw rate ({raw:.1%}) an upper bound"
            )
        limit = ctx.thresholds.max_label_noise
        if rate > limit:
            status = "alert"
            reading = (
                f"About {rate:.1%} of labels look wrong (policy limit {limit:.0%}): "
                f"{len(order)} examples sit confidently in another class under two views."
            )
        elif raw > limit:
            status = "ok"
            reading = (
                f"Confident learning flags {raw:.1%}, but only {rate:.1%} look wrong under two views; "
                "the rest is class overlap (hard examples), not bad labels."
            )
        else:
            status = "ok"
            reading = f"Labels look clean: {rate:.1%} suspect (policy limit {limit:.0%})."
        return LabelNoise(
            status=status,
            reading=reading,
            evidence=[
                f"confident learning (cleanlab, prune_by_noise_rate) on the {view}+kNN ensemble flags {flags.sum()} "
                f"of {n} ({raw:.1%})",
                f"{suspects_mask.sum()} of those: both views agree on one other class with ≥{DOMINANCE:g}x the "
                f"given label's probability ({rate:.1%}, 95% CI {interval.low:.1%}-{interval.high:.1%})",
                *(
                    f"{'overlap' if c.symmetric else 'one-way'} confusion {c.given_label} → {c.predicted_label}: {c.count}"
                    for c in confusions[:3]
                ),
            ],
            trust_warnings=trust,
            estimated_rate=rate,
            estimated_rate_ci=interval,
            raw_issue_rate=raw,
            overlap_rate=overlap,
            method=f"two-view confident learning ({view} + cosine kNN, out of fold)",
            suspects=suspects,
            confusions=confusions,
        )


def _confusions(labels, predicted, flags, names) -> list[ConfusionPair]:
    """The most frequent flagged (given -> predicted) pairs, with whether the reverse confusion is comparable."""
    k = len(names)
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (labels, predicted), 1)
    np.fill_diagonal(matrix, 0)
    flagged = np.zeros((k, k), dtype=int)
    np.add.at(flagged, (labels[flags], predicted[flags]), 1)
    pairs = []
    for a, b in zip(*np.nonzero(flagged)):
        forward, backward = matrix[a, b], matrix[b, a]
        symmetric = backward > 0 and min(forward, backward) / max(forward, backward) >= 0.5
        pairs.append(ConfusionPair(given_label=names[a], predicted_label=names[b], count=int(flagged[a, b]), symmetric=bool(symmetric)))
    pairs.sort(key=lambda p: -p.count)
    return pairs[:20]
