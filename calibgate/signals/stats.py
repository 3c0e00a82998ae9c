"""Small statistics shared by signals: bootstrap intervals, learning-curve fits, AUC."""

from __future__ import annotations

import numpy as np

from calibgate.records.plan import Interval


def bootstrap_mean(values: np.ndarray, *, resamples: int = 500, level: float = 0.95, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean of per-example values (e.g. correctness)."""
    rng = np.random.default_rng(seed)
    values = np.asarray(values, dtype=float)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    alpha = (1 - level) / 2
    return Interval(
        low=float(np.quantile(means, alpha)),
        high=float(np.quantile(means, 1 - alpha)),
        level=level,
        method=f"percentile bootstrap over {resamples} resamples",
    )


def power_law(n, a, b, c):
    """Learning curve acc(n) = a - b * n^-c (Hestness et al. 2017; Figueroa et al. 2012)."""
    return a - b * np.power(n, -c)


def fit_learning_curve(sizes: np.ndarray, accuracies: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """Fit :func:`power_law` with a <= 1 and 0.05 <= c <= 1.5; falls back to a flat curve."""
    from scipy.optimize import curve_fit

    sizes = np.asarray(sizes, dtype=float)
    accuracies = np.asarray(accuracies, dtype=float)
    sigma = None if weights is None else 1.0 / np.clip(weights, 1e-3, None)
    start = (min(1.0, accuracies.max() + 0.05), 1.0, 0.5)
    try:
        (a, b, c), _ = curve_fit(
            power_law, sizes, accuracies, p0=start, sigma=sigma,
            bounds=([0.0, 0.0, 0.05], [1.0, 50.0, 1.5]), maxfev=20000,
        )
    except (RuntimeError, ValueError):
        return {"a": float(accuracies[-1]), "b": 0.0, "c": 0.5}
    return {"a": float(a), "b": float(b), "c": float(c)}


def roc_auc(scores: np.ndarray, is_positive: np.ndarray) -> float:
    """AUC by the rank-sum (Mann-Whitney U) formula, ties averaged."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    pos = is_positive.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return 0.5
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
