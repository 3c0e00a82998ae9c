"""Pluggable metrics: Hugging Face ``evaluate`` modules named by a local path.

``evaluate.load("accuracy")`` fetches from the hub and fails offline, so only
local scripts or directories are accepted; the built-in metrics are computed
by :mod:`calibgate.evaluation.metrics`. ``import evaluate`` costs seconds,
so it happens here, only when a metric is named.

A metric module is the user's code, so it is input: whatever it raises while
loading or computing (``SystemExit``, ``KeyboardInterrupt`` and other
``BaseException`` included), or a result that is not a mapping, is a
:class:`ConfigError` (exit 2) naming the module. Only a real Ctrl-C still
interrupts the command.
"""

from __future__ import annotations

import math
import numbers
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from calibgate.errors import ConfigError


def check_metric_paths(paths: Sequence[str | Path]) -> list[Path]:
    out = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigError(
                f"metric {str(raw)!r} is not a local file or directory",
                fix="name an evaluate metric script (metric.py) or its directory; hub names need network and are not loaded",
            )
        out.append(path)
    return out


def compute_metrics(paths: Sequence[Path], *, predictions, references, taken: set[str]) -> dict[str, float]:
    """Numbers each module's ``compute`` returns, keyed by result name (prefixed with the module on a clash)."""
    from calibgate._lazy import require

    evaluate = require("evaluate")
    results: dict[str, float] = {}
    for path in paths:
        with _sigint_watch() as ctrl_c:
            try:
                module = evaluate.load(str(path.resolve()))
                raw = module.compute(predictions=list(predictions), references=list(references))
            except BaseException as exc:  # noqa: BLE001 - a user's script can fail (or exit) in any way; name it
                if isinstance(exc, KeyboardInterrupt) and ctrl_c["pressed"]:
                    raise
                detail = " ".join(f"{type(exc).__name__}: {exc}".split()) if str(exc) else type(exc).__name__
                raise ConfigError(f"metric {path}: {detail}", fix="fix the metric script or drop --metric") from None
        if raw is not None and not isinstance(raw, Mapping):
            raise ConfigError(f"metric {path}: compute() returned {type(raw).__name__}, not a mapping of result names to numbers",
                              fix="make the metric's _compute return a dict, e.g. {'recall': 0.9}")
        prefix = getattr(module, "name", None) or path.stem
        for key, value in (raw or {}).items():
            if isinstance(value, numbers.Number) and not isinstance(value, bool):
                if not isinstance(key, str) or not key:
                    raise ConfigError(f"metric {path}: compute() returned the key {key!r}, not a result name",
                                      fix="name each result with a string, e.g. {'recall': 0.9}")
                try:
                    number = float(value)
                except (OverflowError, TypeError, ValueError):
                    number = math.nan
                if not math.isfinite(number):
                    raise ConfigError(f"metric {path}: '{key}' is {value!r:.40}, not a finite number",
                                      fix="make the metric return finite numbers (the gate cannot compare NaN)")
                name = key if key not in taken and key not in results else f"{prefix}.{key}"
                results[name] = number
    return results


@contextmanager
def _sigint_watch() -> Iterator[dict[str, bool]]:
    """Record whether a real SIGINT (Ctrl-C) arrives, so it can be told from a module raising KeyboardInterrupt."""
    state = {"pressed": False}
    if threading.current_thread() is not threading.main_thread():
        state["pressed"] = True  # no handler can be installed here: treat every KeyboardInterrupt as the user's
        yield state
        return
    previous = signal.getsignal(signal.SIGINT)

    def _handler(signum, frame):
        state["pressed"] = True
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)
