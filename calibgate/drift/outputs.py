"""Black-box shift detection on the production model's outputs (BBSD).

Rabanser, Günnemann and Lipton 2019, "Failing Loudly: An Empirical Study of
Methods for Detecting Dataset Shift": the model's own softmax outputs are a
cheap, well-performing dimensionality reduction. Two tests, as in the paper:

* **predicted-label shares**: a chi-square test of homogeneity on the 2 x k
  table of predicted-label counts (training texts vs production texts); the
  adjusted standardised residual of each cell (Haberman 1973) says which
  classes moved;
* **confidence**: a two-sample Kolmogorov-Smirnov test on the top-class
  probability (a model meeting unfamiliar text usually becomes less sure).

Bonferroni correction over the two tests: drift when either p-value is below
``alpha / 2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RESIDUAL_Z = 1.96  # |adjusted residual| above which a class's share change is called significant (after the omnibus test)


@dataclass(frozen=True)
class ClassMove:
    label: str
    reference_share: float
    production_share: float
    residual: float  # adjusted standardised residual of the production cell

    def describe(self) -> str:
        return f"{self.label} {self.reference_share:.0%}→{self.production_share:.0%}"


@dataclass(frozen=True)
class OutputShift:
    """Result of :func:`output_shift`; ``drifted`` applies the Bonferroni-split ``alpha``."""

    alpha: float
    label_p_value: float
    confidence_p_value: float
    chi2: float
    ks: float
    mean_confidence_reference: float
    mean_confidence_production: float
    n_reference: int
    n_production: int
    moved: list[ClassMove] = field(default_factory=list)

    @property
    def p_value(self) -> float:
        """Bonferroni-adjusted p-value of the two tests together."""
        return min(1.0, 2 * min(self.label_p_value, self.confidence_p_value))

    @property
    def drifted(self) -> bool:
        return self.p_value < self.alpha

    def evidence(self) -> list[str]:
        lines = [
            f"predicted-label shares: chi-square {self.chi2:.1f}, p={self.label_p_value:.3g}",
            f"top-class confidence: mean {self.mean_confidence_reference:.2f} on training texts vs "
            f"{self.mean_confidence_production:.2f} on production, KS {self.ks:.3f}, p={self.confidence_p_value:.3g}",
            f"Bonferroni-adjusted p={self.p_value:.3g} (alpha {self.alpha:g}; {self.n_reference} training vs "
            f"{self.n_production} production texts)",
        ]
        if self.moved:
            lines.append("classes that moved: " + ", ".join(m.describe() for m in self.moved))
        return lines


def output_shift(
    reference_probs: np.ndarray,
    production_probs: np.ndarray,
    label_names: list[str],
    *,
    alpha: float = 0.05,
    min_class_shift: float = 0.05,
) -> OutputShift:
    """Compare the model's outputs on training texts and production texts (see the module docstring)."""
    reference_probs = np.asarray(reference_probs, dtype=np.float64)
    production_probs = np.asarray(production_probs, dtype=np.float64)
    k = len(label_names)
    if reference_probs.ndim != 2 or production_probs.ndim != 2 or reference_probs.shape[1] != k or production_probs.shape[1] != k:
        raise ValueError(f"probabilities must be (n, {k}); got {reference_probs.shape} and {production_probs.shape}")
    if len(reference_probs) < 2 or len(production_probs) < 2:
        raise ValueError("output shift needs at least 2 texts on each side")
    table = np.vstack(
        [np.bincount(reference_probs.argmax(1), minlength=k), np.bincount(production_probs.argmax(1), minlength=k)]
    ).astype(np.float64)
    chi2, label_p, residuals = _chi_square(table)
    ks, confidence_p = _ks(reference_probs.max(1), production_probs.max(1))
    shares = table / table.sum(axis=1, keepdims=True)
    # classes are named only once the omnibus test rejects (post-hoc residuals after a significant chi-square)
    moved = [] if label_p >= alpha / 2 else [
        ClassMove(label_names[j], float(shares[0, j]), float(shares[1, j]), float(residuals[j]))
        for j in np.argsort(-np.abs(shares[1] - shares[0]), kind="stable")
        if abs(shares[1, j] - shares[0, j]) >= min_class_shift and abs(residuals[j]) >= RESIDUAL_Z
    ]
    return OutputShift(
        alpha=alpha, label_p_value=label_p, confidence_p_value=confidence_p, chi2=chi2, ks=ks,
        mean_confidence_reference=float(reference_probs.max(1).mean()),
        mean_confidence_production=float(production_probs.max(1).mean()),
        n_reference=len(reference_probs), n_production=len(production_probs), moved=moved,
    )


def _chi_square(table: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Chi-square homogeneity test over the predicted classes either side uses; residuals for every class."""
    from scipy.stats import chi2 as chi2_dist

    used = table.sum(axis=0) > 0
    residuals = np.zeros(table.shape[1])
    if used.sum() < 2:
        return 0.0, 1.0, residuals
    t = table[:, used]
    n = t.sum()
    rows, cols = t.sum(axis=1, keepdims=True), t.sum(axis=0, keepdims=True)
    expected = rows @ cols / n
    stat = float(((t - expected) ** 2 / expected).sum())
    dof = (t.shape[0] - 1) * (t.shape[1] - 1)
    p = float(chi2_dist.sf(stat, dof))
    adjusted = (t - expected) / np.sqrt(expected * (1 - rows / n) * (1 - cols / n))
    residuals[used] = adjusted[1]
    return stat, p, residuals


def _ks(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    from scipy.stats import ks_2samp

    result = ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)
