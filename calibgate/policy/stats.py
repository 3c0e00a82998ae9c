"""Paired significance tests for "is the candidate worse than production on the same test rows?".

* McNemar's exact test (McNemar 1947; exact binomial form, Edwards 1948):
  of the rows where exactly one model is right, ``b`` favour the baseline and
  ``c`` the candidate; under H0 (equal error rates) ``b ~ Binomial(b + c, 1/2)``.
  One-sided: p = P(X >= b). Only for accuracy.
* Paired bootstrap (Efron & Tibshirani 1993; Koehn 2004 for NLP): resample the
  test rows with replacement, recompute ``metric(candidate) - metric(baseline)``
  on the same rows; the one-sided p-value is the share of resamples in which
  the candidate is not worse. Works for any row-decomposable or corpus metric
  (accuracy, macro-F1).

Both assume the two prediction lists are aligned row by row; the caller
checks that (same test set sha256 and labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedTest:
    method: str
    candidate: float  # metric on the full test set
    baseline: float
    p_value: float  # one-sided: small means the candidate is significantly worse
    detail: str


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    return float(np.mean(labels == predictions)) if len(labels) else 0.0


def macro_f1(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> float:
    """Unweighted mean of per-class F1 over classes present in labels or predictions (sklearn's 'macro')."""
    tp = np.bincount(labels[labels == predictions], minlength=n_classes).astype(float)
    pred_count = np.bincount(predictions, minlength=n_classes).astype(float)
    true_count = np.bincount(labels, minlength=n_classes).astype(float)
    present = (pred_count + true_count) > 0
    denom = pred_count + true_count
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def mcnemar_exact(labels, candidate, baseline) -> PairedTest:
    """One-sided exact McNemar test that the candidate makes more errors than the baseline."""
    from scipy.stats import binomtest

    labels, candidate, baseline = (np.asarray(x) for x in (labels, candidate, baseline))
    cand_ok, base_ok = candidate == labels, baseline == labels
    b = int(np.sum(base_ok & ~cand_ok))  # baseline right, candidate wrong
    c = int(np.sum(~base_ok & cand_ok))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5, alternative="greater").pvalue)
    return PairedTest(
        "mcnemar-exact", accuracy(labels, candidate), accuracy(labels, baseline), p,
        f"{b} rows only production gets right, {c} only the candidate gets right",
    )


def paired_bootstrap(labels, candidate, baseline, *, metric: str, n_classes: int, resamples: int = 2000, seed: int = 0) -> PairedTest:
    """One-sided paired bootstrap p-value that ``metric`` is lower for the candidate."""
    labels, candidate, baseline = (np.asarray(x) for x in (labels, candidate, baseline))

    def score(idx, preds):
        if metric == "accuracy":
            return accuracy(labels[idx], preds[idx])
        return macro_f1(labels[idx], preds[idx], n_classes)

    full = np.arange(len(labels))
    cand, base = score(full, candidate), score(full, baseline)
    rng = np.random.default_rng(seed)
    not_worse = 0
    diffs = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, len(labels), len(labels))
        diffs[i] = score(idx, candidate) - score(idx, baseline)
        not_worse += diffs[i] >= 0
    low, high = np.quantile(diffs, [0.025, 0.975])
    return PairedTest(
        "paired-bootstrap", cand, base, (not_worse + 1) / (resamples + 1),
        f"{metric} difference 95% interval [{low:+.4f}, {high:+.4f}] over {resamples} resamples",
    )
