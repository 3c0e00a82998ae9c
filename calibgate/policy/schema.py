"""The policy file (``policies/*.yaml``): thresholds in git, published as a JSON Schema.

A policy has three parts:

* ``checks``: one entry per registered gate check, keyed by the check's name
  (see :mod:`calibgate.policy.checks`); a check left out is not run.
* ``planner``: the thresholds the planner compares signals against
  (:class:`~calibgate.records.thresholds.PlannerThresholds`).
* ``approvals``: per stage, how many approvals a promotion needs and who may give them.
* ``drift`` (optional): thresholds of the scheduled drift loop
  (:class:`~calibgate.records.thresholds.DriftThresholds`).

``calibgate policy schema`` prints :func:`policy_json_schema`; the committed
``calibgate/schemas/policy.schema.json`` equals it (a test checks).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, create_model, field_validator, model_validator

from calibgate.paths import branch_problem
from calibgate.records.thresholds import DriftThresholds
from calibgate.records.thresholds import PlannerThresholds
from calibgate.policy.checks import CHECKS
from calibgate.policy.rollout import MonitorThresholds, Rollout

POLICY_SCHEMA_VERSION = 1
# gto's name grammar for stages (gto/constants.py: name)
STAGE_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9\-/_]*[a-zA-Z0-9])?$")


def _checks_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, cls in CHECKS.items():
        annotation = cls.section_annotation or cls.policy_model()
        fields[name] = (annotation | None, Field(None, description=cls.description))
    return create_model(
        "Checks", __config__=ConfigDict(extra="forbid"), __doc__="Gate checks by registered name; omitted checks do not run.",
        **fields,
    )


Checks = _checks_model()


def approver_key(name: str) -> str:
    """Who a name is: NFKC-normalised, invisible format characters removed, runs of white space made one space,
    case-folded (GitHub logins ignore case).

    Without this, 'alice' and 'Alice' (or 'alice' with a zero-width space, or 'Alice  Smith' beside 'Alice Smith')
    counted as two approvers.
    """
    import unicodedata

    text = unicodedata.normalize("NFKC", name)
    return " ".join("".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc") or ch.isspace()).split()).casefold()


class StageApproval(BaseModel):
    """Who must approve a promotion to one stage."""

    model_config = ConfigDict(extra="forbid")

    required: int = Field(1, ge=0, description="number of distinct approvers a promotion to this stage needs")
    approvers: list[str] = Field(
        default_factory=list, description="who may approve (git user names or CI identities); empty: anyone"
    )
    require_gate: bool = Field(
        False, description="a promotion must present a passing gate decision ('calibgate gate --json') for the version's run "
        "under this policy; without this, the registry gates the version's recorded evidence itself (a promotion always needs a passing gate)"
    )
    allow_gate_override: bool = Field(
        False, description="a promotion may skip the gate with 'registry promote --override-gate --reason TEXT'; the override, "
        "its reason and actor are recorded in the stage tag"
    )

    @model_validator(mode="after")
    def _enough_approvers(self):
        people = {approver_key(a) for a in self.approvers}
        if self.approvers and self.required > len(people):
            raise ValueError(f"required={self.required} but only {len(people)} distinct approvers are listed (names differing "
                             "only in case or invisible characters are one person)")
        return self


class Policy(BaseModel):
    """Contents of a policy file."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(POLICY_SCHEMA_VERSION, description="policy format version")
    description: str = Field("", description="what this policy is for, in a sentence")
    checks: Checks = Field(default_factory=Checks)  # type: ignore[valid-type]
    planner: PlannerThresholds = Field(default_factory=PlannerThresholds)
    approvals: dict[str, StageApproval] = Field(
        default_factory=dict, description="stage name -> approvals a promotion to it needs; a promotion may only target a stage declared here or in rollout.order"
    )
    rollout: Rollout | None = Field(None, description="ordered stages and the evidence each promotion needs (see calibgate/policy/rollout.py)")
    monitor: MonitorThresholds | None = Field(None, description="thresholds 'calibgate monitor' checks and what 'calibgate serve' logs")
    drift: DriftThresholds = Field(
        default_factory=DriftThresholds, description="thresholds of 'calibgate drift', 'suggest-labels' and 'retrain'"
    )

    # set by the loader: where the policy came from and the sha256 of its bytes
    _source: str = PrivateAttr("<memory>")
    _sha256: str = PrivateAttr("")

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != POLICY_SCHEMA_VERSION:
            raise ValueError(f"this calibgate reads policy schema_version {POLICY_SCHEMA_VERSION}")
        return v

    @field_validator("approvals")
    @classmethod
    def _stage_names(cls, v: dict[str, StageApproval]) -> dict[str, StageApproval]:
        for stage in v:
            if not STAGE_RE.match(stage):
                raise ValueError(f"stage '{stage}' is not a valid gto stage name (letters, digits, '-', '_', '/')")
        return v

    @field_validator("drift")
    @classmethod
    def _retrain_branch(cls, v: DriftThresholds) -> DriftThresholds:
        # retrain appends '/<model name>': checked when the policy is read, not after retrain pushed the merged data
        if problem := branch_problem(f"{v.retrain_branch}/model"):
            raise ValueError(f"retrain_branch {v.retrain_branch!r} does not make a valid git branch name: {problem}")
        return v

    @property
    def source(self) -> str:
        return self._source

    @property
    def sha256(self) -> str:
        """sha256 of the policy file's bytes (or of its canonical JSON when built in memory)."""
        if self._sha256:
            return self._sha256
        import hashlib

        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def enabled_checks(self) -> dict[str, Any]:
        """name -> config of every check the policy turns on, in registry order."""
        return {name: getattr(self.checks, name) for name in CHECKS if getattr(self.checks, name, None) is not None}

    def approval_for(self, stage: str) -> StageApproval:
        return self.approvals.get(stage, StageApproval(required=0))

    def declared_stages(self) -> list[str]:
        """The stages this policy names, under ``approvals`` or in ``rollout.order``: the only ones a promotion may target.

        A stage nobody declared has no approval rule, so a typo (``prodution``)
        would otherwise become a new stage that needs no approval at all.
        """
        order = self.rollout.order if self.rollout else []
        return list(dict.fromkeys([*self.approvals, *order]))


def policy_json_schema() -> dict:
    """The JSON Schema of policy files (what ``calibgate policy schema`` prints)."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def policy_json_schema_text() -> str:
    return json.dumps(policy_json_schema(), indent=2, sort_keys=True) + "\n"
