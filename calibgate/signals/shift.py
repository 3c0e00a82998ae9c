"""Domain shift between the calibration set and a production sample.

Two views: a domain classifier (cross-validated AUC of telling the sets
apart from their embeddings; 0.5 = indistinguishable; Lipton et al. 2018
"Detecting and correcting for label shift", Rabanser et al. 2019 "Failing
loudly") and a kernel two-sample test (MMD with an RBF kernel, median
bandwidth, permutation p-value; Gretton et al. 2012). Without a production
sample the signal says "not measured", never "no shift".
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold

from calibgate.records.plan import DomainShift, Interval
from calibgate.signals.base import Signal, SignalContext, register_signal
from calibgate.signals.probes import fit_proba, logistic
from calibgate.signals.stats import roc_auc

MAX_PER_SIDE = 1500
PERMUTATIONS = 100


def domain_auc(reference: np.ndarray, production: np.ndarray, *, seed: int = 0, repeats: int = 3) -> tuple[float, Interval]:
    """Cross-validated AUC of a logistic domain classifier, mean over ``repeats`` shuffles."""
    X = np.vstack([reference, production])
    y = np.r_[np.zeros(len(reference), dtype=int), np.ones(len(production), dtype=int)]
    folds = int(min(5, max(2, min(len(reference), len(production)) // 2)))
    aucs = []
    for r in range(repeats):
        scores = np.zeros(len(y))
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=(seed + r) % 2**32).split(X, y):
            scores[test] = fit_proba(logistic(1.0), X[train], y[train], X[test], 2)[:, 1]
        aucs.append(roc_auc(scores, y == 1))
    mean = float(np.mean(aucs))
    spread = float(np.std(aucs))
    return mean, Interval(
        low=max(0.0, mean - 1.96 * spread - 0.5 / np.sqrt(len(y))),
        high=min(1.0, mean + 1.96 * spread + 0.5 / np.sqrt(len(y))),
        method=f"{repeats} repeats of {folds}-fold CV, widened by the AUC's sampling error",
    )


def mmd_test(reference: np.ndarray, production: np.ndarray, *, seed: int = 0, permutations: int = PERMUTATIONS) -> tuple[float, float]:
    """Unbiased-ish MMD^2 with an RBF kernel (median heuristic) and its permutation p-value."""
    X = np.vstack([reference, production]).astype(np.float64)
    sq = np.clip((X * X).sum(1)[:, None] + (X * X).sum(1)[None, :] - 2 * X @ X.T, 0, None)
    bandwidth = np.median(sq[np.triu_indices_from(sq, k=1)]) or 1.0
    K = np.exp(-sq / bandwidth)
    n = len(reference)

    def stat(index: np.ndarray) -> float:
        a, b = index[:n], index[n:]
        kaa, kbb, kab = K[np.ix_(a, a)], K[np.ix_(b, b)], K[np.ix_(a, b)]
        return (kaa.sum() - np.trace(kaa)) / (len(a) * (len(a) - 1)) + (kbb.sum() - np.trace(kbb)) / (
            len(b) * (len(b) - 1)
        ) - 2 * kab.mean()

    observed = stat(np.arange(len(X)))
    rng = np.random.default_rng(seed)
    null = np.array([stat(rng.permutation(len(X))) for _ in range(permutations)])
    p_value = float((1 + (null >= observed).sum()) / (1 + permutations))
    return float(observed), p_value


def measure_shift(
    reference: np.ndarray,
    production: np.ndarray,
    *,
    max_shift_auc: float = 0.75,
    seed: int = 0,
    reference_name: str = "calibration set",
) -> DomainShift:
    """The domain-shift record for two sets of L2-normalised embeddings (used by ``plan`` and ``drift``)."""
    rng = np.random.default_rng(seed)
    if len(reference) > MAX_PER_SIDE:
        reference = reference[rng.choice(len(reference), MAX_PER_SIDE, replace=False)]
    n_production = len(production)
    if len(production) > MAX_PER_SIDE:
        production = production[rng.choice(len(production), MAX_PER_SIDE, replace=False)]
    if len(reference) < 4 or len(production) < 4:
        return DomainShift(
            status="not-measured", measured=False, n_production=n_production,
            reading="Not measured: fewer than 4 texts on one side.",
            trust_warnings=["give at least 50 production texts for a usable shift estimate"],
        )
    auc, interval = domain_auc(reference, production, seed=seed)
    mmd, p_value = mmd_test(reference, production, seed=seed)
    trust = []
    if min(len(reference), len(production)) < 50:
        trust.append(f"only {min(len(reference), len(production))} texts on one side: AUC and p-value are rough")
    if auc > max_shift_auc:
        status = "alert"
        reading = (
            f"Production differs from the {reference_name}: a classifier tells them apart with AUC {auc:.2f} "
            f"(policy limit {max_shift_auc:.2f}); accuracy measured on the {reference_name} may not hold in production."
        )
    elif p_value < 0.01 and auc > 0.6:
        status = "warn"
        reading = f"Mild but real shift (AUC {auc:.2f}, MMD permutation p={p_value:.3f}); watch production accuracy."
    else:
        status = "ok"
        reading = f"No material shift detected (AUC {auc:.2f}, MMD p={p_value:.2f})."
    return DomainShift(
        status=status,
        reading=reading,
        evidence=[
            f"domain-classifier AUC {auc:.3f} [{interval.low:.3f}, {interval.high:.3f}] on {len(reference)} "
            f"{reference_name} vs {len(production)} production texts",
            f"MMD² {mmd:.4f}, permutation p-value {p_value:.3f} ({PERMUTATIONS} permutations)",
        ],
        trust_warnings=trust,
        measured=True,
        auc=auc,
        auc_ci=interval,
        p_value=p_value,
        mmd=mmd,
        n_production=n_production,
    )


@register_signal
class DomainShiftSignal(Signal):
    name = "domain_shift"

    def compute(self, ctx: SignalContext) -> DomainShift:
        if ctx.production_embeddings is None or len(ctx.production_embeddings) == 0:
            return DomainShift(
                status="not-measured",
                measured=False,
                reading="Not measured: no production sample was given (this is not the same as 'no shift').",
                trust_warnings=["pass --production a sample of unlabeled production texts to measure shift"],
            )
        result = measure_shift(
            ctx.embeddings, ctx.production_embeddings, max_shift_auc=ctx.thresholds.max_shift_auc, seed=ctx.seed
        )
        if not result.measured:
            return result
        # which classes production over- or under-represents, by the probe's predictions
        predicted = fit_proba(logistic(ctx.probe_C), ctx.embeddings, ctx.labels, ctx.production_embeddings, ctx.n_classes)
        prod_share = np.bincount(predicted.argmax(1), minlength=ctx.n_classes) / len(predicted)
        cal_share = ctx.counts / ctx.n
        delta = prod_share - cal_share
        moved = [i for i in np.argsort(-np.abs(delta))[:5] if abs(delta[i]) >= 0.05]
        shifted = [ctx.label_names[i] for i in moved]
        if moved:
            result.evidence.append(
                "predicted class shares that moved most: "
                + ", ".join(f"{ctx.label_names[i]} {cal_share[i]:.0%}→{prod_share[i]:.0%}" for i in moved)
            )
        return result.model_copy(update={"shifted_classes": shifted})
