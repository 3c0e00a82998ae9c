"""Arguments of the Python API checked before a call goes below it: a wrong type or a value out of range is a
:class:`ConfigError` naming the argument (exit 2 semantics), never a TypeError, an AttributeError or a MemoryError from
deep inside, and nothing is written.

The CLI's click types bound the same values (``calibgate.cli.options``); the API skipped them: ``evaluate(batch_size=0)``
raised range()'s ValueError, ``export(latency_runs=10**15)`` asked for petabytes, ``predict(run, None)`` and every path
given as an int raised from pathlib, and a flag given as a string was true: ``promote(override_gate="no")`` overrode a
failed gate. The type comes from each parameter's annotation in ``calibgate.api`` (a string there: the module imports
its record classes only for type checkers), so a record of the wrong class, a flag that is not a bool and a list of the
wrong items are refused by one rule; the bounds go by parameter name, so every function shares one table.
"""

from __future__ import annotations

import ast
import inspect
import math
import os
from collections.abc import Mapping
from typing import Any, Callable

from calibgate.errors import ConfigError
from calibgate.records.thresholds import MAX_LORA_RANK
from calibgate.settings import MAX_BATCH, MAX_BOOTSTRAP, MAX_SEED, MAX_TARGET_SIZE, MAX_THREADS

PATHS = frozenset({
    "calibration", "production", "model", "test", "config", "policy", "plan", "train_path", "runs_dir", "run_dir",
    "candidate", "baseline", "repo", "dest", "log", "evaluation", "drift", "out", "output", "reference", "write_priors",
    "path", "paths", "pool", "datasets", "metrics",
})
INTS = {  # name -> (lowest, highest)
    "batch_size": (1, MAX_BATCH), "seed": (0, MAX_SEED), "folds": (2, 50), "bootstrap": (0, MAX_BOOTSTRAP),
    "latency_runs": (0, 100_000), "top_k": (1, 100_000), "target_size": (1, MAX_TARGET_SIZE), "epochs": (1, 10_000),
    "threads": (1, MAX_THREADS), "lora_rank": (1, MAX_LORA_RANK), "max_chars": (2000, 65_536), "pr": (1, 2**31 - 1),
    "budget": (1, 100_000),
}
FLOATS = {  # name -> (lowest, highest, lowest excluded)
    "tolerance": (0.0, math.inf, True), "share": (0.0, 1.0, False), "threshold": (0.5, 1.0, False),
}
CHOICES = {"bump_part": ("major", "minor", "patch"), "precision": ("fp32", "int8"), "quantize": (None, "int8"),
           "exporter": ("dynamo", "torchscript")}
TEXT_LISTS = frozenset({"texts", "approved_by", "modifiers", "parity_texts"})
ALIASES = {"Precision": "str"}  # type aliases the annotations name


def check(function: Callable, args: tuple, kwargs: dict) -> None:
    """Raise :class:`ConfigError` for the first argument of ``function(*args, **kwargs)`` that breaks a rule."""
    signature = inspect.signature(function)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:  # an unknown or missing argument
        raise ConfigError(f"{function.__name__}(): {exc}", fix=f"see help(calibgate.api.{function.__name__})") from None
    for name, value in bound.arguments.items():
        annotation = signature.parameters[name].annotation
        _check(function.__name__, name, value, annotation if isinstance(annotation, str) else "Any")


def _check(where: str, name: str, value: Any, annotation: str) -> None:
    def refuse(problem: str, fix: str) -> None:
        raise ConfigError(f"{where}({name}=...): {problem}", fix=fix)

    members = _members(annotation)
    if not any(_matches(value, member) for member in members):
        expected = _describe(name, members)
        refuse(f"{type(value).__name__} {repr(value)[:40]} is not {expected}", f"pass {expected}")
    if value is None:
        return
    if name in PATHS:
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, (str, os.PathLike)):
                text = os.fspath(item)
                if isinstance(text, bytes) or "\x00" in text or not str(text).strip():
                    refuse(f"{repr(item)[:60]} is not a path", "pass a non-empty path (str or pathlib.Path)")
    elif isinstance(value, str) and "\x00" in value:
        refuse("holds a NUL character", "pass printable text")
    if name in INTS and isinstance(value, int):
        low, high = INTS[name]
        if not low <= value <= high:
            refuse(f"{value} is outside {low}..{high}", f"pass an integer from {low} to {high}")
    if name in FLOATS:
        low, high, open_low = FLOATS[name]
        if not math.isfinite(value) or value < low or value > high or (open_low and value == low):
            if math.isinf(high):
                refuse(f"{value!r} is not a positive finite number", "pass e.g. 1e-4")
            refuse(f"{value!r} is outside {low}..{high}", f"pass a number from {low} to {high}")
    if name in CHOICES and value not in CHOICES[name]:
        refuse(f"{value!r} is not one of {', '.join(repr(c) for c in CHOICES[name])}", "pass one of them")
    if name in TEXT_LISTS and any("\x00" in item for item in value):
        refuse("holds a NUL character", "pass printable text")
    if name == "links" and not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        refuse(f"{type(value).__name__} is not a mapping of label to URL", "pass links={'workflow run': 'https://...'}")


def _members(annotation: str) -> list[str]:
    """The members of a union annotation, ``'str | Path | None'`` -> ``['str', 'Path', 'None']``, brackets kept."""
    return [ALIASES.get(m, m) for m in _split(annotation, "|")]


def _arguments(member: str) -> tuple[str, list[str]]:
    """``'tuple[str, str | Path]'`` -> ``('tuple', ['str', 'str | Path'])``."""
    head, _, inner = member.partition("[")
    return head, _split(inner[:-1], ",")


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at each ``separator`` outside brackets, each part stripped."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == separator and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _matches(value: Any, member: str) -> bool:
    if member == "Any":
        return True
    if member == "None":
        return value is None
    if member == "bool":
        return isinstance(value, bool)
    if member == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if member == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if member == "str":
        return isinstance(value, str)
    if member == "Path":
        return isinstance(value, os.PathLike)
    if "[" not in member:  # a record class, matched by name so that checking imports nothing
        return any(cls.__name__ == member for cls in type(value).__mro__)
    head, parts = _arguments(member)
    if head == "Literal":
        return value in ast.literal_eval(f"({', '.join(parts)},)")
    if head == "Callable":
        return callable(value)
    if head == "Mapping":
        return isinstance(value, Mapping)
    if head in ("list", "tuple", "Sequence", "Iterable"):
        if not isinstance(value, (list, tuple)):
            return False
        if head == "tuple" and parts[-1] != "...":  # a fixed-length tuple
            return len(value) == len(parts) and all(_union(v, p) for v, p in zip(value, parts))
        return all(_union(item, parts[0]) for item in value)
    return True  # a generic this table does not know: left to the function


def _union(value: Any, annotation: str) -> bool:
    return any(_matches(value, member) for member in _members(annotation))


def _describe(name: str, members: list[str]) -> str:
    """What a parameter takes, in words: 'a path', 'an integer', 'a list', 'true or false', 'a Plan or a path'."""
    words = []
    for member in members:
        if member in ("str", "Path"):
            word = "a path" if name in PATHS else "a string"
        elif member == "None":
            continue
        else:
            word = {"bool": "True or False", "int": "an integer", "float": "a number", "Any": "anything"}.get(member)
            if word is None:
                head = member.partition("[")[0]
                word = {"list": "a list", "tuple": "a list", "Sequence": "a list", "Iterable": "a list",
                        "Mapping": "a mapping", "Callable": "a function", "Literal": "one of the allowed values"
                        }.get(head, f"a {member}")
        if word not in words:
            words.append(word)
    if name in TEXT_LISTS:
        return f"a list of strings, e.g. {name}=['...']"
    if name == "links":
        return "a mapping of label to URL, e.g. links={'workflow run': 'https://...'}"
    return " or ".join(words) or "None"
