"""Threshold rules a policy entry is made of: absolute, relative to the baseline, or both.

A floor rule (higher is better) holds when the candidate is at least ``min``
and, with a baseline, at least ``baseline - max_drop``; the effective
threshold is the larger of the two. A ceiling rule (lower is better) holds
when the candidate is at most ``max`` and, with a baseline, at most
``baseline * max_ratio``; the effective threshold is the smaller.
Relative parts are ignored for the first model (no baseline).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Severity = Literal["fail", "warn"]


class Rule(BaseModel):
    # a NaN threshold compares false with everything and an infinite one is no threshold: both are typos
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    severity: Severity = Field("fail", description="'fail' blocks the gate; 'warn' reports without blocking")


class FloorRule(Rule):
    """Higher is better: an absolute floor and/or a tolerated drop against the baseline."""

    min: float | None = Field(None, description="absolute floor the candidate must reach")
    max_drop: float | None = Field(
        None, ge=0, description="largest drop below the baseline's value, in the metric's units (0.01 = 1 point)"
    )

    @model_validator(mode="after")
    def _one_bound(self):
        if self.min is None and self.max_drop is None:
            raise ValueError("set 'min' (absolute), 'max_drop' (relative to the baseline), or both")
        return self

    def effective(self, baseline: float | None) -> float | None:
        bounds = [b for b in (self.min, None if baseline is None or self.max_drop is None else baseline - self.max_drop) if b is not None]
        return max(bounds) if bounds else None


class CeilingRule(Rule):
    """Lower is better: an absolute ceiling and/or a tolerated growth against the baseline."""

    max: float | None = Field(None, description="absolute ceiling the candidate must stay under")
    max_ratio: float | None = Field(None, gt=0, description="largest candidate/baseline ratio (1.2 = at most 20% above)")

    @model_validator(mode="after")
    def _one_bound(self):
        if self.max is None and self.max_ratio is None:
            raise ValueError("set 'max' (absolute), 'max_ratio' (relative to the baseline), or both")
        return self

    def effective(self, baseline: float | None) -> float | None:
        bounds = [b for b in (self.max, None if baseline is None or self.max_ratio is None else baseline * self.max_ratio) if b is not None]
        return min(bounds) if bounds else None


class MetricRule(Rule):
    """A metric named by key in ``evaluation.json`` (built-in or from a local evaluate module)."""

    min: float | None = Field(None, description="absolute floor (metrics where higher is better)")
    max: float | None = Field(None, description="absolute ceiling (metrics where lower is better, e.g. ece)")
    max_drop: float | None = Field(None, ge=0, description="largest drop below the baseline (higher is better)")
    max_increase: float | None = Field(None, ge=0, description="largest rise above the baseline (lower is better)")

    @model_validator(mode="after")
    def _consistent(self):
        if all(v is None for v in (self.min, self.max, self.max_drop, self.max_increase)):
            raise ValueError("set at least one of 'min', 'max', 'max_drop', 'max_increase'")
        if (self.min is not None or self.max_drop is not None) and (self.max is not None or self.max_increase is not None):
            raise ValueError("a metric is either higher-is-better (min, max_drop) or lower-is-better (max, max_increase)")
        return self

    @property
    def higher_is_better(self) -> bool:
        return self.min is not None or self.max_drop is not None

    @property
    def uses_baseline(self) -> bool:
        return self.max_drop is not None or self.max_increase is not None

    def effective(self, baseline: float | None) -> float | None:
        if self.higher_is_better:
            rel = None if baseline is None or self.max_drop is None else baseline - self.max_drop
            bounds = [b for b in (self.min, rel) if b is not None]
            return max(bounds) if bounds else None
        rel = None if baseline is None or self.max_increase is None else baseline + self.max_increase
        bounds = [b for b in (self.max, rel) if b is not None]
        return min(bounds) if bounds else None
