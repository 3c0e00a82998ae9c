"""Planner thresholds: the ``planner:`` section of a policy file.

Each decision sentence in a plan names the threshold it compared against, so
an auditor can trace it back to this section of the policy in git.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
    lora_ranks: list[int] = Field(default_factory=lambda: [8, 16], description="LoRA ranks the planner considers")
    max_train_seconds: float | None = Field(
        None, ge=0, description="candidates estimated to train longer than this are not eligible"
    )
