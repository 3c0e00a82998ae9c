"""The public Python API: one function per CLI command, each returning a typed result.

This module is the facade the CLI and users call. It stays cheap to import:
each function lives in its subsystem and is imported on first use.

    >>> from calibgate import api
    >>> plan = api.plan(calibration="labeled.jsonl", target_size=4000)   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from calibgate.records.plan import Plan
    from calibgate.settings import ProjectConfig
    from calibgate.training.api import TrainResult

# public name -> "module:attribute"
_EXPORTS = {
    "plan": "calibgate.planner.api:plan",
    "evaluate": "calibgate.evaluation.api:evaluate",
    "export": "calibgate.export.api:export",
    "predict": "calibgate.export.serving:predict",
    "check_policy": "calibgate.policy.api:check_policy",
    "gate": "calibgate.policy.api:gate",
    "gate_run": "calibgate.pipeline.gate:gate_run",
    "load_policy": "calibgate.policy.loader:load_policy",
    "register": "calibgate.registry.api:register",
    "promote": "calibgate.registry.api:promote",
    "rollback": "calibgate.registry.api:rollback",
    "deprecate": "calibgate.registry.api:deprecate",
    "list_versions": "calibgate.registry.api:list_versions",
    "show_version": "calibgate.registry.api:show_version",
    "verify_version": "calibgate.registry.api:verify_version",
    "fetch_version": "calibgate.registry.api:fetch_version",
    "production_baseline": "calibgate.registry.api:production_baseline",
    "render_report": "calibgate.report.api:render_report",
    "run_ci": "calibgate.pipeline.ci:run_ci",
    "drift": "calibgate.pipeline.drift:drift",
    "suggest_labels": "calibgate.drift.api:suggest_labels",
    "retrain": "calibgate.drift.retrain:retrain",
    "bench_regret": "calibgate.bench.regret:bench_regret",
    "build_server": "calibgate.serving.app:build_server",
    "monitor": "calibgate.serving.monitor:monitor_log",
}

__all__ = sorted([*_EXPORTS, "train"])


def train(
    *,
    config: str | Path | ProjectConfig | None = None,
    strategy: str | None = None,
    lora_rank: int | None = None,
    epochs: int | None = None,
    plan: str | Path | Plan | None = None,
    train_path: str | Path | None = None,
    model: str | None = None,
    runs_dir: str | Path | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    modifiers: Iterable[str] | None = None,
    run_id: str | None = None,
    progress: bool = False,
    reason: str | None = None,
) -> TrainResult:
    """Train per ``strategy`` or ``plan`` into a new run directory; without a plan, plan first (recorded in the run).

    Training sits below the planner, so the planner is passed in here (:func:`calibgate.training.api.train`).
    """
    from calibgate.training.api import train as _train

    try:
        from calibgate.planner.api import plan as planner
    except ImportError:  # a build without the planner's dependencies: training says what to pass instead
        planner = None
    return _train(
        config=config, strategy=strategy, lora_rank=lora_rank, epochs=epochs, plan=plan, train_path=train_path,
        model=model, runs_dir=runs_dir, seed=seed, batch_size=batch_size, modifiers=modifiers, run_id=run_id,
        progress=progress, reason=reason, planner=planner,
    )


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'calibgate.api' has no attribute {name!r}")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def __dir__() -> list[str]:
    return __all__
