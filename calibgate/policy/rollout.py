"""The policy's optional ``rollout:`` and ``monitor:`` sections: staged rollout order and live-traffic thresholds.

``rollout.order`` is the ordered list of stages a version walks through
(e.g. ``[shadow, canary, production]``); ``registry promote`` refuses to put
a version into a stage unless it was promoted to the stage before it, and
``rollout.stages.<stage>`` names the evidence that promotion needs: a shadow
monitor report (the version ran as ``--shadow`` beside the served model) or
a canary window (the version served a ``--share`` of traffic), each with its
figures. ``monitor:`` holds the thresholds ``calibgate monitor`` checks.

A policy without these sections keeps the registry's old behaviour: any
stage, in any order, with approvals (and a gate decision) only.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# gto's name grammar for stages (gto/constants.py: name); schema.py keeps its own copy for approvals
_STAGE_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9\-/_]*[a-zA-Z0-9])?$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShadowEvidence(_Section):
    """What a shadow monitor report must show for the version that ran as the shadow model."""

    min_requests: int = Field(100, ge=1, description="requests the shadow model answered beside the served model")
    min_agreement: float = Field(0.9, ge=0.0, le=1.0, description="share of texts where shadow and served labels agree")
    max_latency_ratio: float = Field(
        2.0, gt=0.0, le=100.0, description="shadow p95 latency / served p95 latency, from the same requests"
    )


class CanaryEvidence(_Section):
    """What a canary window must show for the version that served a share of traffic."""

    min_requests: int = Field(500, ge=1, description="requests the canary served in the window")
    max_error_rate: float = Field(0.01, ge=0.0, le=1.0, description="server errors / requests the canary served")


class StageEvidence(_Section):
    """The evidence a promotion to one stage needs; a kind left out is not required."""

    shadow: ShadowEvidence | None = Field(None, description="a shadow monitor report ('calibgate monitor --json')")
    canary: CanaryEvidence | None = Field(None, description="a canary monitor report ('calibgate monitor --json')")


class Rollout(_Section):
    """Ordered stages and per-stage evidence for ``registry promote``."""

    order: list[str] = Field(
        description="stages in rollout order; promotion to one needs the version to have been promoted to the one before",
        json_schema_extra={"bound": "steps"},  # a stage dropped from the order is a step skipped: weaker
    )
    stages: dict[str, StageEvidence] = Field(
        default_factory=dict, description="stage -> evidence a promotion to it needs (stages left out need none)"
    )

    @field_validator("order")
    @classmethod
    def _order_names(cls, v: list[str]) -> list[str]:
        if len(v) < 2:
            raise ValueError("a rollout order needs at least two stages, e.g. [shadow, production]")
        for stage in v:
            if not _STAGE_RE.match(stage):
                raise ValueError(f"stage '{stage}' is not a valid gto stage name (letters, digits, '-', '_', '/')")
        duplicates = sorted({s for s in v if v.count(s) > 1})
        if duplicates:
            raise ValueError(f"stage '{duplicates[0]}' appears twice in the rollout order")
        return v

    @model_validator(mode="after")
    def _stages_in_order(self):
        for stage, evidence in self.stages.items():
            if stage not in self.order:
                raise ValueError(f"rollout.stages names '{stage}', which is not in rollout.order {self.order}")
            if evidence.shadow is None and evidence.canary is None:
                raise ValueError(f"rollout.stages.{stage} asks for no evidence; add shadow: or canary:, or drop it")
        return self

    def previous(self, stage: str) -> str | None:
        """The stage before ``stage`` in the order (None: first, or not a rollout stage)."""
        if stage not in self.order:
            return None
        i = self.order.index(stage)
        return self.order[i - 1] if i else None


class MonitorThresholds(_Section):
    """Thresholds ``calibgate monitor`` checks on a prediction log; a threshold left out is not checked."""

    log_text: bool = Field(False, description="'calibgate serve' logs the raw text (true) or only its sha256 (false)",
                           json_schema_extra={"decides": False})
    # raised, more predictions count as low against max_low_confidence_rate: a floor
    low_confidence: float = Field(0.5, ge=0.0, le=1.0, description="a prediction below this confidence counts as low",
                                  json_schema_extra={"bound": "min"})
    max_error_rate: float | None = Field(0.01, ge=0.0, le=1.0, description="server errors / requests, per served model")
    max_p95_ms: float | None = Field(None, gt=0.0, description="p95 request latency in ms, per served model")
    max_low_confidence_rate: float | None = Field(None, ge=0.0, le=1.0, description="share of predictions below low_confidence")
    max_confidence_drop: float | None = Field(
        None, ge=0.0, le=1.0, description="evaluation mean confidence minus live mean confidence (needs the evaluation's confidences)"
    )
    max_label_shift: float | None = Field(
        None, ge=0.0, le=1.0, description="total variation distance between live and evaluation predicted-label shares"
    )
    min_shadow_agreement: float | None = Field(None, ge=0.0, le=1.0, description="shadow vs served label agreement")
    max_shadow_latency_ratio: float | None = Field(None, gt=0.0, description="shadow p95 / served p95")


def monitor_checks(models, shadow, t: MonitorThresholds) -> list:
    """The checks ``t`` makes of a monitor report's figures (``ModelStats`` per served model, ``ShadowStats``): what
    ``calibgate monitor`` reports, and what ``registry promote`` re-derives from the figures of the evidence it reads."""
    from calibgate.records.monitor import MonitorCheck

    def check(id_: str, subject: str, value: float | None, threshold: float, direction: str) -> MonitorCheck:
        return MonitorCheck(id=id_, subject=subject, value=value, threshold=threshold, direction=direction,
                            status=MonitorCheck.judge(value, threshold, direction))

    out = []
    for m in models:
        if t.max_error_rate is not None:
            out.append(check("error_rate", m.model, m.error_rate, t.max_error_rate, "max"))
        if t.max_p95_ms is not None:
            out.append(check("p95_ms", m.model, m.latency.p95_ms if m.latency else None, t.max_p95_ms, "max"))
        if t.max_low_confidence_rate is not None:
            out.append(check("low_confidence_rate", m.model, m.low_confidence_rate, t.max_low_confidence_rate, "max"))
        if t.max_label_shift is not None:
            out.append(check("label_shift", m.model, m.evaluation.label_shift if m.evaluation else None, t.max_label_shift, "max"))
        if t.max_confidence_drop is not None:
            drop = None
            if m.evaluation is not None and m.evaluation.mean_confidence is not None and m.mean_confidence is not None:
                drop = round(m.evaluation.mean_confidence - m.mean_confidence, 6)
            out.append(check("confidence_drop", m.model, drop, t.max_confidence_drop, "max"))
    if shadow is not None:
        if t.min_shadow_agreement is not None:
            out.append(check("shadow_agreement", shadow.model, shadow.agreement, t.min_shadow_agreement, "min"))
        if t.max_shadow_latency_ratio is not None:
            out.append(check("shadow_latency_ratio", shadow.model, shadow.latency_ratio, t.max_shadow_latency_ratio, "max"))
    return out
