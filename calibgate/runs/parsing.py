"""The one bytes -> record step every run and record reader ends in, with its one error."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from calibgate.errors import ModelError

R = TypeVar("R", bound=BaseModel)


def parse_record(data: bytes | str, model: type[R], *, source: str, what: str, fix: str) -> R:
    """``data`` (a JSON document) as a ``model`` record; :class:`ModelError` naming ``source`` otherwise."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise ModelError(f"{source}: the {what} is not UTF-8 text", fix=fix) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{source}:{exc.lineno}: not valid JSON ({exc.msg}), expected the {what}", fix=fix) from None
    except ValueError:  # an integer of more than 4,300 digits: no record calibgate writes holds one
        raise ModelError(f"{source}: holds an integer too long to read (over 4,300 digits), not the {what}", fix=fix) from None
    except RecursionError:  # '[[[[...': json gives up before the stack does
        raise ModelError(f"{source}: nested too deeply to be the {what}", fix=fix) from None
    from calibgate.records.versions import version_problem

    try:
        record = model.model_validate(raw)
    except ValidationError as exc:
        raise ModelError(f"{source}: not a {model.__name__} record: {first_problem(exc)}", fix=fix) from None
    if problem := version_problem(model, raw):  # for the plan, whose class does not check it itself
        raise ModelError(f"{source}: not a {model.__name__} record: 'schema_version': {problem}", fix=fix)
    return record


def first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"unknown key '{loc}'"
    return f"'{loc}': {err['msg']} (got {_short(err.get('input'))})"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
