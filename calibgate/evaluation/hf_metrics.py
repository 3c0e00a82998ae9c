"""Pluggable metrics: Hugging Face ``evaluate`` modules named by a local path.

``evaluate.load("accuracy")`` fetches from the hub and fails offline, so only
local scripts or directories are accepted; the built-in metrics are computed
by :mod:`calibgate.evaluation.metrics`. ``import evaluate`` costs seconds,
so it happens here, only when a metric is named.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Sequence

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
        try:
            module = evaluate.load(str(path.resolve()))
            raw = module.compute(predictions=list(predictions), references=list(references))
        except Exception as exc:  # a user's script can fail in any way; name it and the script
            raise ConfigError(f"metric {path}: {type(exc).__name__}: {exc}", fix="fix the metric script or drop --metric") from None
        prefix = getattr(module, "name", None) or path.stem
        for key, value in (raw or {}).items():
            if isinstance(value, numbers.Number) and not isinstance(value, bool):
                name = key if key not in taken and key not in results else f"{prefix}.{key}"
                results[name] = float(value)
    return results
