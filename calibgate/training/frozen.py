"""Heads on frozen, L2-normalised embeddings: the logistic-regression probe and the kNN index.

* Probe: multinomial logistic regression, ``C`` chosen by stratified k-fold
  CV accuracy. sklearn runs under ``threadpool_limits(1, "blas")``: on small
  matrices BLAS threading only adds contention (15x faster on 2 shared cores).
* kNN: cosine neighbours with the exact vote of :class:`calibgate.modeling.KNNHead`;
  ``k`` and uniform/similarity weighting chosen by leave-one-out accuracy,
  which for kNN costs one similarity matrix (computed in row chunks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

C_GRID = (1.0, 4.0, 16.0, 64.0, 256.0)
K_GRID = (1, 3, 5, 7, 10, 15, 20, 30)
WEIGHTINGS = ("uniform", "similarity")
_ABSENT_BIAS = -30.0  # logit of a label with no training rows: never predicted, label space stays closed


@dataclass(frozen=True)
class ProbeFit:
    weight: np.ndarray  # (n_classes, dim) float32
    bias: np.ndarray  # (n_classes,) float32
    C: float
    cv_accuracy: float | None
    folds: int


@dataclass(frozen=True)
class KNNFit:
    k: int
    weighting: str
    loo_accuracy: float


def normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def fit_probe(x: np.ndarray, labels: np.ndarray, n_classes: int, *, seed: int = 0, c_grid=C_GRID) -> ProbeFit:
    """Logistic regression on normalised ``x``; ``C`` by stratified CV; weights over all ``n_classes``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    x = normalize_rows(x)
    counts = np.bincount(labels, minlength=n_classes)
    present = counts[counts > 0]
    folds = int(min(5 if len(x) <= 5000 else 3, present.min()))
    with threadpool_limits(1, "blas"):
        best_c, best_score = c_grid[len(c_grid) // 2], None
        if folds >= 2 and len(c_grid) > 1:
            cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
            for c in c_grid:
                score = cross_val_score(LogisticRegression(C=c, max_iter=2000), x, labels, cv=cv).mean()
                if best_score is None or score > best_score + 1e-9:
                    best_c, best_score = c, float(score)
        model = LogisticRegression(C=best_c, max_iter=2000).fit(x, labels)
    weight = np.zeros((n_classes, x.shape[1]), dtype=np.float32)
    bias = np.full(n_classes, _ABSENT_BIAS, dtype=np.float32)
    classes = model.classes_.astype(int)
    if len(classes) == 2 and model.coef_.shape[0] == 1:
        # sklearn's binary form: softmax([-z/2, z/2]) == sigmoid(z)
        coef = np.vstack([-model.coef_[0] / 2, model.coef_[0] / 2])
        intercept = np.array([-model.intercept_[0] / 2, model.intercept_[0] / 2])
    else:
        coef, intercept = model.coef_, model.intercept_
    weight[classes] = coef
    bias[classes] = intercept
    return ProbeFit(weight, bias, float(best_c), best_score, folds)


def probe_logits(fit: ProbeFit, x: np.ndarray) -> np.ndarray:
    return normalize_rows(x) @ fit.weight.T + fit.bias


def fit_knn(x: np.ndarray, labels: np.ndarray, n_classes: int, *, k_grid=K_GRID, chunk: int = 1024) -> KNNFit:
    """Leave-one-out choice of ``k`` and weighting for the cosine kNN vote."""
    x = normalize_rows(x)
    n = len(x)
    ks = [k for k in k_grid if k < n] or [1]
    kmax = max(ks)
    correct = {(k, w): 0 for k in ks for w in WEIGHTINGS}
    onehot = np.eye(n_classes, dtype=np.float32)[labels]
    for start in range(0, n, chunk):
        sims = x[start : start + chunk] @ x.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # leave the row itself out
        idx = np.argpartition(-sims, kmax - 1, axis=1)[:, :kmax] if kmax < n - 1 else np.argsort(-sims, axis=1)[:, :kmax]
        top = np.take_along_axis(sims, idx, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        idx, top = np.take_along_axis(idx, order, axis=1), np.take_along_axis(top, order, axis=1)
        truth = labels[start : start + chunk]
        for k in ks:
            for weighting in WEIGHTINGS:
                w = np.clip(top[:, :k], 0, None) + 1e-6 if weighting == "similarity" else np.ones_like(top[:, :k])
                votes = (onehot[idx[:, :k]] * w[..., None]).sum(axis=1)
                correct[(k, weighting)] += int((votes.argmax(axis=1) == truth).sum())
    (k, weighting), hits = max(correct.items(), key=lambda item: (item[1], -item[0][0], item[0][1] == "uniform"))
    return KNNFit(k=int(k), weighting=weighting, loo_accuracy=hits / n)
