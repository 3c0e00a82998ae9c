"""Unit tests of the planner pin its priors to the hand-set defaults, so their exact figures do not move when the
benchmark refits ``calibgate/planner/priors.json``; end-to-end plan tests use the shipped file."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def hand_set_priors(monkeypatch):
    from calibgate.planner import priors

    monkeypatch.setattr(priors, "PRIORS_FILE", Path("/nonexistent/calibgate-priors.json"))
    priors.load_priors.cache_clear()
    yield priors.Priors()
    priors.load_priors.cache_clear()
