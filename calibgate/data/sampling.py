"""Stratified row samples that work at any size.

sklearn's stratified split needs every class on both sides of the split, so a
sample that leaves fewer rows out than there are classes raises. Here each
row's place is its rank within its own class (shuffled, from 0) divided by the
class size: the first rows in that order are one per class, and after them
every class keeps its share to within a row, whatever the size.
"""

from __future__ import annotations

import numpy as np


def stratified_rows(labels: np.ndarray, size: int, *, seed: int) -> np.ndarray:
    """Sorted indices of ``size`` rows (all rows when ``size`` is at least their number): every class present
    once ``size`` allows, then each class in proportion; ties are broken at random."""
    labels = np.asarray(labels)
    if size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    position = np.empty(len(labels))
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        position[rng.permutation(rows)] = np.arange(len(rows)) / len(rows)
    order = np.lexsort((rng.random(len(labels)), position))
    return np.sort(order[:size])
