"""Results of gate checks: a failed gate is a result, not an exception.

Every check returns its id, the measured value, the threshold, the baseline
value, a status and the config that produced it. ERROR never counts as a
pass: a gate that cannot decide blocks.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from calibgate.records.base import Record
from calibgate.records.versions import known_version

DECISION_SCHEMA_VERSION = 1

CheckStatus = Literal["PASS", "WARN", "FAIL", "ERROR", "SKIPPED"]


class CheckResult(Record):
    id: str = Field(description="check name as registered, e.g. 'accuracy_floor' or 'class_recall_floor:card_arrival'")
    status: CheckStatus
    value: float | None = Field(None, description="the candidate's measured value")
    threshold: float | None = Field(None, description="the effective threshold (absolute, after any baseline-relative rule)")
    baseline: float | None = Field(None, description="the production model's value, when there is one")
    message: str = Field(description="one sentence an auditor can follow")
    config: dict[str, Any] = Field(default_factory=dict, description="the policy entry that produced the check")


def decide(checks: list[CheckResult]) -> Literal["promote", "block", "error"]:
    """The decision the checks make: any FAIL blocks, any ERROR errs, and no check at all cannot promote."""
    statuses = {c.status for c in checks}
    if "FAIL" in statuses:
        return "block"
    if "ERROR" in statuses or not checks:
        return "error"
    return "promote"


class GateDecision(Record):
    schema_version: int = DECISION_SCHEMA_VERSION
    decision: Literal["promote", "block", "error"]
    candidate: str = Field(description="run id or registry version of the candidate")
    candidate_manifest_sha256: str | None = Field(
        None, description="digest of the candidate run's manifest (calibgate-run.json): the decision is about exactly "
        "these files; the registry refuses it for any other version")
    plan_sha256: str | None = Field(
        None, description="content digest of the plan its signal checks read (the run's plan.json or --plan): a report "
        "refuses to show another plan beside it; None when the gate read no plan")
    baseline: str | None = Field(None, description="registry version in production, or None for the first model")
    policy: str
    policy_sha256: str
    checks: list[CheckResult]
    summary: str

    @field_validator("schema_version")
    @classmethod
    def _version(cls, value: int) -> int:
        return known_version(value, DECISION_SCHEMA_VERSION, "gate decisions")

    @model_validator(mode="after")
    def _decision_follows_checks(self):
        """A decision is what its checks say: a 'promote' over a FAIL, or with no check, is a forged or broken record."""
        if self.decision != decide(self.checks):
            raise ValueError(f"decision '{self.decision}' contradicts its checks, which say '{decide(self.checks)}'")
        return self

    @property
    def exit_code(self) -> int:
        return {"promote": 0, "block": 1, "error": 3}[self.decision]
