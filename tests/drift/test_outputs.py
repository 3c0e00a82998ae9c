"""Black-box shift on model outputs: quiet on the same distribution, loud on moved label shares or confidence."""

from __future__ import annotations

import numpy as np
import pytest

from calibgate.drift.outputs import output_shift

LABELS = ["billing", "card", "refund"]


def _probs(rng, n, shares, sure=0.9):
    """n rows predicting class c with probability ``shares[c]``; the top class gets ``sure``."""
    top = rng.choice(len(shares), n, p=shares)
    out = np.full((n, len(shares)), (1 - sure) / (len(shares) - 1))
    out[np.arange(n), top] = sure
    return out


def test_same_distribution_is_not_drift():
    rng = np.random.default_rng(0)
    result = output_shift(_probs(rng, 400, [0.3, 0.4, 0.3]), _probs(rng, 300, [0.3, 0.4, 0.3]), LABELS)
    assert not result.drifted and result.p_value > 0.05 and result.moved == []


def test_moved_label_shares_are_drift_and_named():
    rng = np.random.default_rng(0)
    result = output_shift(_probs(rng, 400, [0.3, 0.4, 0.3]), _probs(rng, 300, [0.1, 0.3, 0.6]), LABELS)
    assert result.drifted and result.label_p_value < 1e-6
    assert [m.label for m in result.moved][:2] == ["refund", "billing"]
    refund = result.moved[0]
    assert refund.production_share > refund.reference_share and refund.residual > 1.96
    assert any("refund" in line for line in result.evidence())


def test_falling_confidence_is_drift_even_with_the_same_shares():
    rng = np.random.default_rng(1)
    result = output_shift(_probs(rng, 400, [0.3, 0.4, 0.3], 0.9), _probs(rng, 300, [0.3, 0.4, 0.3], 0.5), LABELS)
    assert result.confidence_p_value < 1e-6 and result.drifted and result.moved == []
    assert result.mean_confidence_production < result.mean_confidence_reference


def test_alpha_is_bonferroni_split():
    rng = np.random.default_rng(0)
    result = output_shift(_probs(rng, 400, [0.3, 0.4, 0.3]), _probs(rng, 300, [0.1, 0.3, 0.6]), LABELS, alpha=1e-30)
    assert result.p_value == pytest.approx(min(1.0, 2 * min(result.label_p_value, result.confidence_p_value)))
    assert result.drifted == (result.p_value < 1e-30)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="probabilities"):
        output_shift(np.ones((5, 2)) / 2, np.ones((5, 3)) / 3, LABELS)
