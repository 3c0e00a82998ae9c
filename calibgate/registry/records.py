"""Registry records: what a version tag and a stage tag say, as JSON in the annotated tag message.

A tag message is one human line, a blank line, then the record's JSON, so
``git tag -n`` and ``gto show`` stay readable and :func:`parse_message`
recovers the record. Version records are also committed as
``.calibgate-registry/<name>/<version>/record.json`` in the version's
evidence commit, next to the evaluation, export and plan records the gate
reads as the baseline. Published as ``calibgate/schemas/registry-*.schema.json``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from calibgate.registry.store import StoredArtifacts
from calibgate.runs import EVALUATION, EXPORT_RECORD, PLAN, file_name

REGISTRY_SCHEMA_VERSION = 1
EVIDENCE_DIR = ".calibgate-registry"
# the run's gate records the evidence commit keeps beside record.json, each under its own file name
EVIDENCE_RUN_FILES = (EVALUATION, EXPORT_RECORD, PLAN)


def evidence_path(name: str, version: str, run_file: str) -> str:
    """Where the evidence commit of ``name@version`` keeps its copy of the run file ``run_file``."""
    return f"{EVIDENCE_DIR}/{name}/{version}/{file_name(run_file)}"

R = TypeVar("R", bound=BaseModel)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Lineage(_Record):
    """Where a version came from: code, data, policy, training config and plan."""

    git_commit: str = Field(description="commit the version was registered from (the evidence commit's parent)")
    run_git_commit: str | None = Field(None, description="commit the run was trained at, from its manifest")
    data_dvc_md5: str | None = Field(None, description="DVC md5 of the training data")
    data: dict[str, Any] = Field(default_factory=dict, description="the run manifest's data section")
    policy: str | None = None
    policy_sha256: str | None = None
    strategy: str
    lora_rank: int | None = None
    base_model: str
    label_names: list[str]
    train_config: dict[str, Any] = Field(default_factory=dict)
    plan_summary: dict[str, Any] | None = Field(None, description="chosen strategy, rationale and key signals of the plan")


class ExportSummary(_Record):
    path: str
    precision: str
    size_bytes: int
    sha256: str
    p95_ms: float | None = None


class VersionRecord(_Record):
    """Evidence recorded with ``name@vX.Y.Z``."""

    schema_version: int = REGISTRY_SCHEMA_VERSION
    kind: Literal["calibgate.version"] = "calibgate.version"
    name: str
    version: str
    run_id: str
    created_at: str = Field(default_factory=_now)
    registered_by: str = ""
    lineage: Lineage
    metrics: dict[str, float]
    test: dict[str, Any] = Field(description="source, sha256 and n of the test set the metrics come from")
    exports: list[ExportSummary] = Field(default_factory=list)
    artifacts: StoredArtifacts
    manifest_sha256: str | None = Field(
        None, description="sha256 of the canonical run manifest (every file's sha256, label_names, pooling, strategy...);"
        " it lives in the tag, so a run cannot be rewritten together with it. None only in records from before it existed,"
        " which verify refuses")
    message: str = ""


class StageRecord(_Record):
    """Evidence recorded with ``name#stage#N``: who approved which version into which stage, and why."""

    schema_version: int = REGISTRY_SCHEMA_VERSION
    kind: Literal["calibgate.stage"] = "calibgate.stage"
    name: str
    version: str
    stage: str
    counter: int
    action: Literal["promote", "rollback"]
    previous: str | None = Field(None, description="version that held the stage before")
    approved_by: list[str] = Field(default_factory=list)
    required_approvals: int = 0
    policy: str | None = None
    policy_sha256: str | None = None
    reason: str = ""
    gate: dict[str, Any] | None = Field(None, description="decision, baseline, policy_sha256 and summary of the gate presented")
    rollout: dict[str, Any] | None = Field(
        None, description="the policy's rollout order, the stage before, and the evidence checked (report sha256, window, figures)"
    )
    created_at: str = Field(default_factory=_now)
    actor: str = ""


class DeprecationRecord(_Record):
    """Evidence recorded with ``name@vX.Y.Z!`` (gto's deregistration)."""

    schema_version: int = REGISTRY_SCHEMA_VERSION
    kind: Literal["calibgate.deprecation"] = "calibgate.deprecation"
    name: str
    version: str
    reason: str = ""
    created_at: str = Field(default_factory=_now)
    actor: str = ""


def format_message(headline: str, record: BaseModel) -> str:
    return f"{headline}\n\n{record.model_dump_json(indent=2)}\n"


def parse_message(message: str, model: type[R]) -> R | None:
    """The record in a tag message, or None when the tag was not made by calibgate (e.g. plain ``gto``)."""
    start = message.find("\n\n{")
    if start < 0:
        return None
    try:
        data = json.loads(message[start + 2:])
        if data.get("kind") != model.model_fields["kind"].default:
            return None
        return model.model_validate(data)
    except (ValueError, AttributeError, RecursionError):  # ValidationError is a ValueError
        return None


def registry_json_schemas() -> dict[str, dict]:
    """file name -> JSON Schema of each registry record (committed under calibgate/schemas/)."""
    out = {}
    for file, model in (("registry-version.schema.json", VersionRecord), ("registry-stage.schema.json", StageRecord),
                        ("registry-deprecation.schema.json", DeprecationRecord)):
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[file] = schema
    return out
