"""One rule for a record's ``schema_version``: a reader takes only the version it was written for.

A record from a newer calibgate may mean something else by the same fields, and one from an older format was not
checked the way this calibgate checks; either read as the current version would be judged on what it does not say.
The policy, ``calibgate.yaml`` and the run manifest already refuse other versions; every record does the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def known_version(value: Any, current: int, what: str) -> int:
    """``value`` when it is ``current``; otherwise ValueError naming both (a field validator's body)."""
    if isinstance(value, bool) or value != current:
        raise ValueError(f"this calibgate reads {what} of schema_version {current}, not {value!r}: the record was written "
                         "by another calibgate version; re-run the command that wrote it with this one")
    return value


def version_problem(model: type, raw: Any) -> str | None:
    """Why the parsed JSON ``raw`` is not of the ``schema_version`` ``model`` reads (its field's default), or None.

    For readers of records whose class cannot carry :func:`known_version` itself (the plan).
    """
    field = getattr(model, "model_fields", {}).get("schema_version")
    if field is None or not isinstance(raw, Mapping) or "schema_version" not in raw:
        return None
    try:
        known_version(raw["schema_version"], field.default, model.__name__)
    except ValueError as exc:
        return str(exc)
    return None
