import numpy as np
import pytest

from calibgate.data.sampling import stratified_rows


@pytest.mark.parametrize("size", [1, 9, 15, 16, 230, 238, 239, 240])
def test_any_size_keeps_classes_and_shares(size):
    # 15 classes of 16 rows: sklearn's stratified split raised when fewer than 15 rows were left out
    labels = np.repeat(np.arange(15), 16)
    rows = stratified_rows(labels, size, seed=3)
    assert len(rows) == min(size, len(labels)) and len(set(rows)) == len(rows)
    counts = np.bincount(labels[rows], minlength=15)
    assert (counts > 0).sum() == min(size, 15)
    assert counts.max() - counts.min() <= 1


def test_proportional_on_unbalanced_labels_and_seeded():
    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    rows = stratified_rows(labels, 50, seed=0)
    counts = np.bincount(labels[rows], minlength=3)
    assert counts[2] == 1 and abs(counts[0] - 45) <= 1 and abs(counts[1] - 4.5) <= 1
    assert np.array_equal(rows, stratified_rows(labels, 50, seed=0))
    assert not np.array_equal(rows, stratified_rows(labels, 50, seed=1))
