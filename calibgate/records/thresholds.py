"""Thresholds from a policy file that producers and readers below the policy package share.

``PlannerThresholds`` is the ``planner:`` section: each decision sentence in a
plan names the threshold it compared against, so an auditor can trace it back
to this section of the policy in git. ``DriftThresholds`` is the ``drift:``
section, read by the scheduled drift job and not by the PR gate; every field
is optional, and an absent section means the defaults.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_LORA_RANK = 4096  # past any encoder's width: a typo, and an adapter of terabytes


class PlannerThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tolerance: float = Field(
        1.0, ge=0, le=20, description="accuracy points: the cheapest candidate predicted within this of the best wins"
    )
    max_label_noise: float = Field(
        0.08, ge=0, le=1, description="estimated wrong-label rate above which the plan says fix labels first"
    )
    min_examples_per_class: int = Field(
        5, ge=1, description="classes with fewer calibration examples than this make the plan say collect labels"
    )
    max_imbalance_ratio: float = Field(
        3.0, ge=1, description="largest/smallest class count above which class-weighted loss is recommended"
    )
    max_shift_auc: float = Field(
        0.75, ge=0.5, le=1, description="domain-classifier AUC above which production data is called shifted"
    )
    starvation_gain_per_doubling: float = Field(
        2.0, ge=0, description="accuracy points per doubling of data above which the task is called data-starved"
    )
    min_cost_saving: float = Field(
        0.2, ge=0, le=1,
        description="a cheaper candidate within tolerance replaces the best only if it saves at least this share of its training time",
    )
    lora_ranks: list[Annotated[int, Field(ge=1, le=MAX_LORA_RANK)]] = Field(
        default_factory=lambda: [8, 16], description="LoRA ranks the planner considers"
    )
    max_train_seconds: float | None = Field(
        None, ge=0, description="candidates estimated to train longer than this are not eligible"
    )

    @field_validator("lora_ranks")
    @classmethod
    def _distinct(cls, ranks: list[int]) -> list[int]:
        if len(set(ranks)) != len(ranks):
            raise ValueError(f"lists a rank twice ({ranks}): each rank is one candidate")
        return ranks


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
