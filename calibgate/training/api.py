"""``train``: the ``calibgate train`` command as a function (facade target ``calibgate.api.train``).

Strategy precedence: an explicit ``strategy`` (and ``lora_rank``), else the
plan file's recommendation, else a fresh plan from :func:`calibgate.api.plan`.
The run directory is written atomically under ``runs_dir`` and
``runs_dir/LATEST`` (plus a ``latest`` symlink where the OS allows) names it.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from calibgate.errors import ConfigError
from calibgate.runs import RunManifest, sha256_file
from calibgate.training.options import MODIFIERS, STRATEGIES, make_options


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    manifest: RunManifest
    curves: list[dict]
    source: str  # where the strategy came from: "option", "plan file", "planner"

    @property
    def best_validation_accuracy(self) -> float | None:
        scored = [c for c in self.curves if c.get("val_loss") is not None]
        return min(scored, key=lambda c: c["val_loss"])["val_accuracy"] if scored else None


def train(
    *,
    config: Any = None,
    strategy: str | None = None,
    lora_rank: int | None = None,
    epochs: int | None = None,
    plan: str | Path | Any = None,
    train_path: str | Path | None = None,
    model: str | None = None,
    runs_dir: str | Path | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    modifiers: Iterable[str] | None = None,
    run_id: str | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train per the options / plan and write a run directory; returns where and what."""
    from calibgate.settings import load_config

    if strategy is not None:
        # validate every option before anything is read, loaded or written
        make_options(strategy=strategy, lora_rank=lora_rank, epochs=epochs, batch_size=batch_size, modifiers=modifiers or ())
    elif lora_rank is not None and (not isinstance(lora_rank, int) or lora_rank <= 0):
        raise ConfigError(f"LoRA rank must be a positive integer, got {lora_rank!r}", fix="pass --lora-rank 4, 8, 16 or 32")
    if epochs is not None and (not isinstance(epochs, int) or epochs <= 0):
        raise ConfigError(f"epochs must be a positive integer, got {epochs!r}", fix="pass --epochs 1 or more")
    if config is None or isinstance(config, (str, Path)):
        config = load_config(config)
    seed = config.seed if seed is None else seed
    model = model or config.model_path()
    plan_record, source = _resolve_plan(plan, strategy, config, model)
    if strategy is None:
        rec = plan_record.recommendation
        if rec.strategy not in STRATEGIES:
            raise ConfigError(
                f"the plan recommends {rec.strategy!r}, which is not a training strategy",
                fix="act on the plan (relabel or collect data) and re-plan, or pass --strategy",
            )
        strategy = rec.strategy
        lora_rank = lora_rank or rec.lora_rank
    not_applied: list[str] = []
    if modifiers is None and plan_record is not None:
        # data actions such as 'add-production-data' are for the user, not the trainer
        modifiers = [m for m in plan_record.recommendation.modifiers if m in MODIFIERS]
        not_applied = [m for m in plan_record.recommendation.modifiers if m not in MODIFIERS]
    options = make_options(strategy=strategy, lora_rank=lora_rank, epochs=epochs, batch_size=batch_size, modifiers=modifiers or (), seed=seed)

    from calibgate.data.jsonl import load_labeled
    from calibgate.data.versions import data_version, ensure_pulled

    train_file = Path(train_path) if train_path is not None else config.path(config.data.train)
    if train_path is None:
        ensure_pulled(config.root, config.data.dvc_target, [train_file])
    data = load_labeled(train_file)
    version = data_version(config.root, config.data.dvc_target) if train_path is None else None
    runs_root = Path(runs_dir) if runs_dir is not None else config.path(config.runs_dir)
    run_id = run_id or _new_run_id(options.strategy, options.lora_rank)
    run_dir = runs_root / run_id
    if run_dir.exists():
        raise ConfigError(f"{run_dir} already exists", fix="pick another --run-id; runs are never overwritten")

    from calibgate.training.fitting import fit

    trained = fit(
        data, strategy=options.strategy, lora_rank=options.lora_rank, model=model, modifiers=options.modifiers,
        seed=options.seed, epochs=options.epochs if epochs is not None else None, batch_size=batch_size, progress=progress,
    )
    data_info = {
        "source": str(train_file), "sha256": sha256_file(train_file), "rows_sha256": data.sha256, "n": len(data),
        "n_classes": data.n_classes, "dvc_target": config.data.dvc_target,
        "dvc_md5": version.dvc_md5 if version else None, "dvc_state": version.state if version else "untracked",
    }
    manifest = trained.save(
        run_dir, run_id=run_id, data=data_info, plan=plan_record, git_commit=_git_commit(config.root),
        extra_config={"strategy_source": source, "plan_modifiers_not_applied": not_applied, "model": str(model), "config": config.model_dump(mode="json")},
    )
    _point_latest(runs_root, run_id)
    return TrainResult(run_dir=run_dir, manifest=manifest, curves=trained.curves, source=source)


def _resolve_plan(plan, strategy, config, model):
    from calibgate.planner.schema import Plan

    if isinstance(plan, Plan):
        return plan, "option" if strategy else "plan"
    if plan is not None:
        path = Path(plan)
        if not path.exists():
            raise ConfigError(f"{path}: no such plan file", fix="run 'calibgate plan --json > plan.json' or drop --plan")
        try:
            record = Plan.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, ValueError) as exc:
            raise ConfigError(f"{path}: not a calibgate plan ({str(exc).splitlines()[0]})", fix="regenerate it with 'calibgate plan --json'") from None
        return record, "option" if strategy else "plan file"
    if strategy is not None:
        return None, "option"
    try:
        from calibgate.planner.api import plan as make_plan
    except ImportError:
        raise ConfigError(
            "no strategy given and the planner is not available in this build",
            fix="pass --strategy (and --lora-rank) or --plan plan.json",
        ) from None
    return make_plan(config=config, model=model), "planner"


def _new_run_id(strategy: str, rank: int | None) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{strategy}{f'-r{rank}' if rank else ''}-{secrets.token_hex(2)}"


def _git_commit(root: Path) -> str | None:
    try:
        import git

        return git.Repo(str(root), search_parent_directories=True).head.commit.hexsha
    except Exception:  # not a repo, no commits yet, git missing: lineage says None
        return None


def _point_latest(runs_root: Path, run_id: str) -> None:
    from calibgate.paths import atomic_write_text

    atomic_write_text(runs_root / "LATEST", run_id + "\n")
    link = runs_root / "latest"
    try:
        if link.is_symlink() or not link.exists():
            tmp_link = runs_root / f".latest-{os.getpid()}"
            if tmp_link.is_symlink():
                tmp_link.unlink()
            tmp_link.symlink_to(run_id)
            tmp_link.replace(link)
    except OSError:
        pass  # LATEST is enough where symlinks are not allowed
