"""JSON Schemas calibgate publishes for the files users and tools read or edit.

``python -m calibgate.schemas`` rewrites the ``*.schema.json`` files beside
this module; a test fails when a committed schema differs from its model.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

HERE = Path(__file__).parent

# schema name -> "module:Model"
PUBLISHED = {
    "plan": "calibgate.records.plan:Plan",
    "config": "calibgate.settings:ProjectConfig",
    "run": "calibgate.runs:RunManifest",
    "evaluation": "calibgate.records.evaluation:EvaluationResult",
    "export": "calibgate.records.export:ExportResult",
    "decision": "calibgate.records.decision:GateDecision",
    "monitor": "calibgate.records.monitor:MonitorReport",
}


def model_for(name: str):
    module, attr = PUBLISHED[name].split(":")
    return getattr(importlib.import_module(module), attr)


def generate(name: str) -> dict:
    schema = model_for(name).model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://calibgate.dev/schemas/{name}.schema.json"
    return schema


def path_for(name: str) -> Path:
    return HERE / f"{name}.schema.json"


def load(name: str) -> dict:
    return json.loads(path_for(name).read_text(encoding="utf-8"))


def validate(name: str, instance: dict) -> None:
    """Validate ``instance`` against the published schema (raises jsonschema.ValidationError)."""
    import jsonschema

    jsonschema.validate(instance, load(name), cls=jsonschema.Draft202012Validator)


def write_all() -> list[Path]:
    written = []
    for name in PUBLISHED:
        path = path_for(name)
        path.write_text(json.dumps(generate(name), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
