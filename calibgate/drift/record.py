"""``drift.json``: what a drift run measured, for the retraining step and for audit; and the policy's drift thresholds.

:func:`calibgate.pipeline.drift.drift` writes it (:func:`write_outputs`);
``calibgate retrain --drift DIR`` reads it (:func:`read_record`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from calibgate.drift.suggest import Suggestion
from calibgate.errors import ConfigError
from calibgate.paths import atomic_write_text, check_file_target, make_dirs
from calibgate.records.thresholds import DriftThresholds
from calibgate.records.versions import known_version
from calibgate.settings import ProjectConfig

DRIFT_SCHEMA_VERSION = 1
RECORD_FILE = "drift.json"
REPORT_FILE = "drift.md"
SUGGESTIONS_FILE = "to-label.jsonl"


class DriftRecord(BaseModel):
    """``drift.json``: what a drift run measured, for the retraining step and for audit."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = DRIFT_SCHEMA_VERSION
    kind: str = "calibgate.drift"
    name: str
    drifted: bool
    summary: str
    domain_auc: float | None
    domain_threshold: float
    output_p_value: float | None = None
    alpha: float
    moved_classes: list[str] = Field(default_factory=list)
    reference: str
    production_version: str | None = None
    n_production: int
    n_reference: int
    body: str
    suggestions: list[dict] = Field(default_factory=list)

    @field_validator("schema_version")
    @classmethod
    def _version(cls, value: int) -> int:
        return known_version(value, DRIFT_SCHEMA_VERSION, "drift records")


def load_thresholds(cfg: ProjectConfig, policy: str | Path | None) -> tuple[DriftThresholds, float]:
    """(the policy's ``drift:`` section, its ``planner.max_shift_auc``); built-in defaults only when nothing names a
    policy. A named policy that is missing or invalid is exit 2, as for every command."""
    from calibgate.policy.loader import advisory_policy_path, resolve_policy
    from calibgate.policy.schema import Policy

    named = advisory_policy_path(policy, cfg)
    loaded = resolve_policy(named, cfg) if named is not None else Policy()
    return loaded.drift, loaded.planner.max_shift_auc


OUTPUT_FILES = (RECORD_FILE, REPORT_FILE, SUGGESTIONS_FILE)


def check_outputs(out: Path) -> None:
    """Refuse, before any work, an --out whose files could not be written in place: a symlink there was written
    through (to wherever it pointed), a FIFO would hang the write."""
    for name in OUTPUT_FILES:
        check_file_target(Path(out) / name)


def write_outputs(out: Path, record: DriftRecord, suggestions: list[Suggestion]) -> None:
    from calibgate.data.jsonl import write_jsonl

    make_dirs(out)
    atomic_write_text(out / RECORD_FILE, record.model_dump_json(indent=2) + "\n")
    atomic_write_text(out / REPORT_FILE, record.body)
    write_jsonl(out / SUGGESTIONS_FILE, (s.record() for s in suggestions))


def read_record(path: str | Path) -> DriftRecord:
    """``drift.json`` from a directory or file, or a :class:`ConfigError` naming it."""
    from pydantic import ValidationError

    path = Path(path)
    file = path / RECORD_FILE if path.is_dir() else path
    try:
        return DriftRecord.model_validate_json(file.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError) as exc:
        raise ConfigError(f"{file}: not a calibgate drift record ({type(exc).__name__})", fix="pass the --out directory of 'calibgate drift'") from None
