"""The ``drift:`` section of a policy file: when production counts as drifted, and how many texts to suggest.

Kept apart from the gate's checks: the scheduled drift job reads it, the PR
gate does not. Every field is optional; an absent section means the defaults.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DriftThresholds(BaseModel):
    """Thresholds of ``calibgate drift``, ``calibgate suggest-labels`` and ``calibgate retrain``."""

    model_config = ConfigDict(extra="forbid")

    max_domain_auc: float | None = Field(
        None,
        ge=0.5,
        le=1,
        description="domain-classifier AUC above which production is called drifted; default: planner.max_shift_auc",
    )
    alpha: float = Field(
        0.05,
        gt=0,
        le=0.5,
        description="significance level of the output-shift tests (label shares chi-square, confidence KS), "
        "Bonferroni-split between the two",
    )
    min_production: int = Field(
        50, ge=10, le=1_000_000, description="fewer production texts than this: the drift check refuses to decide"
    )
    max_reference: int = Field(
        2000, ge=50, le=1_000_000, description="training texts compared at most (a seeded random subsample)"
    )
    min_class_shift: float = Field(
        0.05, gt=0, le=1, description="change in a class's predicted share (0.05 = 5 points) for it to be named as moved"
    )
    suggest: int = Field(
        20, ge=0, le=1000, description="texts to suggest for labeling in the drift report and the retraining PR"
    )
    retrain_branch: str = Field(
        "calibgate/retrain",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,100}$",
        description="branch prefix of the retraining pull request (the model name is appended)",
    )
