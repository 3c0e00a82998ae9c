"""suggest_labels: uncertain texts first, shifted regions favoured, no near-duplicate picked twice."""

from __future__ import annotations

import numpy as np
import pytest

from calibgate.drift.suggest import margin_uncertainty, normalized_entropy, suggest_labels
from calibgate.errors import DataError


def _cluster(rng, center, n, spread=0.01):
    return center + spread * rng.standard_normal((n, len(center)))


def test_margin_and_entropy():
    p = np.array([[0.5, 0.5], [1.0, 0.0], [0.7, 0.3]])
    assert margin_uncertainty(p) == pytest.approx([1.0, 0.0, 0.6])
    assert normalized_entropy(p)[0] == pytest.approx(1.0) and normalized_entropy(p)[1] == pytest.approx(0.0, abs=1e-9)


def test_uncertain_diverse_picks_and_reasons():
    rng = np.random.default_rng(0)
    dim = 16
    centers = np.eye(dim)[:4]
    x = np.vstack([_cluster(rng, c, 25) for c in centers])
    texts = [f"text {i}" for i in range(len(x))]
    probs = np.tile([0.95, 0.05], (len(x), 1))
    probs[25:50] = [0.52, 0.48]  # cluster 1 is where the model is unsure
    picks = suggest_labels(texts, x, budget=4, pred_probs=probs, label_names=["a", "b"], seed=0)
    clusters = [p.index // 25 for p in picks]
    assert clusters[0] == 1, "the first pick is an uncertain text"
    assert sorted(clusters) == [0, 1, 2, 3], "k-center: one pick per cluster, never two near-duplicates"
    assert "uncertain: a vs b" in picks[0].reason and picks[0].record()["label"] is None
    assert [p.rank for p in picks] == [1, 2, 3, 4]


def test_shifted_region_is_favoured():
    rng = np.random.default_rng(0)
    dim = 16
    reference = _cluster(rng, np.eye(dim)[0], 60)
    pool = np.vstack([_cluster(rng, np.eye(dim)[0], 30), _cluster(rng, np.eye(dim)[5], 30)])
    picks = suggest_labels([str(i) for i in range(60)], pool, budget=1, reference_embeddings=reference, seed=0)
    assert picks[0].index >= 30 and picks[0].shift_score > 0.5 and "unlike the training data" in picks[0].reason


def test_budget_larger_than_pool_and_bad_input():
    x = np.eye(3)
    assert len(suggest_labels(["a", "b", "c"], x, budget=10)) == 3
    with pytest.raises(DataError, match="budget"):
        suggest_labels(["a"], x[:1], budget=0)
    with pytest.raises(DataError, match="embeddings"):
        suggest_labels(["a", "b"], x, budget=1)


def test_a_repeated_text_is_suggested_once():
    texts = ["Card lost", "card  LOST", "card lost", "refund please", "where is my money"]
    x = np.eye(5)  # distinct embeddings, so only the text itself says they are copies
    picks = suggest_labels(texts, x, budget=5)
    assert len(picks) == 3
    assert sorted(p.text.casefold().split()[0] for p in picks) == ["card", "refund", "where"]
