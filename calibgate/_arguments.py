"""Arguments of the Python API checked by name before a call goes below it: a wrong type or a value out of range is a
:class:`ConfigError` naming the argument (exit 2 semantics), never a TypeError, an AttributeError or a MemoryError from
deep inside, and nothing is written.

The CLI's click types bound the same values (``calibgate.cli.options``); the API skipped them: ``evaluate(batch_size=0)``
raised range()'s ValueError, ``export(latency_runs=10**15)`` asked for petabytes, ``predict(run, None)`` and every path
given as an int raised from pathlib. The rules go by parameter name, so each API function is checked by the same table.
"""

from __future__ import annotations

import inspect
import math
import os
from typing import Any, Callable

from calibgate.errors import ConfigError
from calibgate.records.thresholds import MAX_LORA_RANK
from calibgate.settings import MAX_BATCH, MAX_BOOTSTRAP, MAX_SEED, MAX_TARGET_SIZE, MAX_THREADS

PATHS = frozenset({
    "calibration", "production", "model", "test", "config", "policy", "plan", "train_path", "runs_dir", "run_dir",
    "candidate", "baseline", "repo", "dest", "log", "evaluation", "drift", "out", "output", "reference", "write_priors",
})
INTS = {  # name -> (lowest, highest); None allowed where the default is None
    "batch_size": (1, MAX_BATCH), "seed": (0, MAX_SEED), "folds": (2, 50), "bootstrap": (0, MAX_BOOTSTRAP),
    "latency_runs": (0, 100_000), "top_k": (1, 100_000), "target_size": (1, MAX_TARGET_SIZE), "epochs": (1, 10_000),
    "threads": (1, MAX_THREADS), "lora_rank": (1, MAX_LORA_RANK), "max_chars": (2000, 65_536), "pr": (1, 2**31 - 1),
}
STRINGS = frozenset({"ref", "name", "stage", "version", "reason", "message", "remote", "dvc_remote", "store", "run_id",
                     "policy_base", "candidate_id", "baseline_id", "strategy", "command"})
CHOICES = {"bump_part": ("major", "minor", "patch"), "precision": ("fp32", "int8"), "quantize": (None, "int8")}
TEXT_LISTS = frozenset({"texts", "approved_by", "modifiers"})


def check(function: Callable, args: tuple, kwargs: dict) -> None:
    """Raise :class:`ConfigError` for the first argument of ``function(*args, **kwargs)`` that breaks a rule."""
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except TypeError as exc:  # an unknown or missing argument
        raise ConfigError(f"{function.__name__}(): {exc}", fix=f"see help(calibgate.api.{function.__name__})") from None
    for name, value in bound.arguments.items():
        _check(function.__name__, name, value)


def _check(where: str, name: str, value: Any) -> None:
    def refuse(problem: str, fix: str) -> None:
        raise ConfigError(f"{where}({name}=...): {problem}", fix=fix)

    if value is None:
        return
    if name in PATHS:
        if isinstance(value, (str, os.PathLike)):
            text = os.fspath(value)
            if isinstance(text, bytes) or "\x00" in text or not str(text).strip():
                refuse(f"{repr(value)[:60]} is not a path", "pass a non-empty path (str or pathlib.Path)")
        elif isinstance(value, (bool, int, float, bytes, list, tuple, dict, set)):
            refuse(f"{type(value).__name__} {repr(value)[:40]} is not a path", "pass a path (str or pathlib.Path)")
    elif name in INTS:
        low, high = INTS[name]
        if isinstance(value, bool) or not isinstance(value, int):
            refuse(f"{type(value).__name__} {value!r} is not an integer", f"pass an integer from {low} to {high}")
        if not low <= value <= high:
            refuse(f"{value} is outside {low}..{high}", f"pass an integer from {low} to {high}")
    elif name in STRINGS:
        if not isinstance(value, str):
            refuse(f"{type(value).__name__} {repr(value)[:40]} is not a string", "pass a string")
        if "\x00" in value:
            refuse("holds a NUL character", "pass printable text")
    elif name in CHOICES:
        if value not in CHOICES[name]:
            refuse(f"{value!r} is not one of {', '.join(repr(c) for c in CHOICES[name])}", "pass one of them")
    elif name in TEXT_LISTS:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            refuse(f"{type(value).__name__} {repr(value)[:40]} is not a list", f"pass a list of strings, e.g. {name}=['...']")
        if not all(isinstance(item, str) for item in value):
            refuse("holds an entry that is not a string", "pass a list of strings")
    elif name == "tolerance" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                                  or value <= 0):
        refuse(f"{value!r} is not a positive finite number", "pass e.g. 1e-4")
    elif name == "share" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1):
        refuse(f"{value!r} is not a share from 0 to 1", "pass e.g. 0.1")
    elif name == "links" and not (isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
        refuse(f"{type(value).__name__} is not a mapping of label to URL", "pass links={'workflow run': 'https://...'}")
