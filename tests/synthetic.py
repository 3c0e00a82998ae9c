"""Synthetic embeddings with planted truth: separable or overlapping classes, label noise, shift, imbalance.

Modelled on cleanlab's ``benchmarking/noise_generation.py``: tests plant a
known defect and assert the signal recovers it.
"""

from __future__ import annotations

import numpy as np


def blobs(n_per_class, n_classes: int, *, dim: int = 32, spread: float = 0.35, seed: int = 0, centers=None):
    """L2-normalised Gaussian clusters; ``n_per_class`` is an int or one count per class. Returns (X, y, centers)."""
    rng = np.random.default_rng(seed)
    counts = [n_per_class] * n_classes if np.isscalar(n_per_class) else list(n_per_class)
    if centers is None:
        centers = rng.normal(size=(n_classes, dim))
        centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    X = np.vstack([centers[k] + spread * rng.normal(size=(c, dim)) / np.sqrt(dim) * 4 for k, c in enumerate(counts)])
    y = np.repeat(np.arange(n_classes), counts)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    order = rng.permutation(len(y))
    return X[order].astype(np.float32), y[order], centers


def flip_labels(y: np.ndarray, rate: float, n_classes: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly round(rate * n) labels to a uniformly chosen other class. Returns (noisy, flipped mask)."""
    rng = np.random.default_rng(seed)
    noisy = y.copy()
    chosen = rng.choice(len(y), int(round(rate * len(y))), replace=False)
    for i in chosen:
        noisy[i] = rng.choice([k for k in range(n_classes) if k != y[i]])
    return noisy, noisy != y


def context(X, y, n_classes, **kwargs):
    from calibgate.signals.base import SignalContext

    names = tuple(f"class_{k}" for k in range(n_classes))
    texts = kwargs.pop("texts", tuple(f"text {i}" for i in range(len(y))))
    return SignalContext(embeddings=X, labels=y, label_names=names, texts=texts, **kwargs)
