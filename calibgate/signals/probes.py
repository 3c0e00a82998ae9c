"""Linear and kNN probes on frozen embeddings, with out-of-fold predictions.

scikit-learn's lbfgs logistic regression is ~15x faster here with BLAS
limited to one thread (threadpoolctl), so every fit runs under that limit.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold
from threadpoolctl import threadpool_limits

C_GRID = (1.0, 10.0, 100.0)


def logistic(C: float = 10.0, *, class_weight: str | None = None) -> Callable[[], BaseEstimator]:
    return lambda: LogisticRegression(C=C, max_iter=2000, class_weight=class_weight)


class CosineKNN(ClassifierMixin, BaseEstimator):
    """kNN on L2-normalised rows with similarity-weighted votes; dense matmul, no index needed at this size."""

    def __init__(self, k: int = 10):
        self.k = k

    def fit(self, X, y):
        self.X_ = np.asarray(X, dtype=np.float32)
        self.y_ = np.asarray(y)
        self.classes_ = np.unique(self.y_)
        return self

    def predict_proba(self, X):
        sims = np.asarray(X, dtype=np.float32) @ self.X_.T
        k = min(self.k, self.X_.shape[0])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        weights = np.clip(np.take_along_axis(sims, top, axis=1), 0, None) + 1e-6
        index = np.searchsorted(self.classes_, self.y_[top])
        votes = np.zeros((X.shape[0], len(self.classes_)))
        np.add.at(votes, (np.arange(X.shape[0])[:, None], index), weights)
        return votes / votes.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def knn(k: int) -> Callable[[], BaseEstimator]:
    return lambda: CosineKNN(k=k)


def choose_k(counts: np.ndarray) -> int:
    """A neighbourhood no larger than a typical class: sqrt rule capped by the median class size."""
    median = float(np.median(counts[counts > 0])) if counts.any() else 1.0
    return int(max(1, min(10, round(np.sqrt(counts.sum()) / 2), median)))


def _splitter(labels: np.ndarray, folds: int, seed: int):
    counts = np.bincount(labels)
    if counts[counts > 0].min() >= folds:
        return StratifiedKFold(folds, shuffle=True, random_state=seed)
    return KFold(folds, shuffle=True, random_state=seed)


def fit_proba(factory, X_train, y_train, X_test, n_classes: int) -> np.ndarray:
    """Fit on the training rows and return (len(X_test), n_classes) probabilities, zero for unseen classes."""
    out = np.zeros((X_test.shape[0], n_classes))
    present = np.unique(y_train)
    if len(present) == 1:
        out[:, present[0]] = 1.0
        return out
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = factory().fit(X_train, y_train)
        out[:, model.classes_] = model.predict_proba(X_test)
    return out


def oof_proba(X, labels, n_classes: int, factory, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predicted probabilities (every row predicted by a model that did not see it)."""
    out = np.zeros((len(labels), n_classes))
    for train, test in _splitter(labels, folds, seed).split(X, labels):
        out[test] = fit_proba(factory, X[train], labels[train], X[test], n_classes)
    return out


def select_C(X, labels, n_classes: int, *, grid=C_GRID, folds: int = 3, seed: int = 0) -> float:
    """Inverse regularisation strength with the best out-of-fold log-loss."""
    if len(labels) < 2 * folds:
        return 10.0
    best, best_loss = grid[0], np.inf
    for C in grid:
        proba = oof_proba(X, labels, n_classes, logistic(C), folds=folds, seed=seed)
        loss = -np.mean(np.log(np.clip(proba[np.arange(len(labels)), labels], 1e-6, 1)))
        if loss < best_loss:
            best, best_loss = C, loss
    return best


def accuracy(proba: np.ndarray, labels: np.ndarray) -> float:
    return float((proba.argmax(axis=1) == labels).mean())
