"""``train``: the ``calibgate train`` command as a function (``calibgate.api.train`` calls it with the planner).

Strategy precedence: an explicit ``strategy`` (and ``lora_rank``), else the
plan's (a record or a plan file) recommendation, else a fresh plan from the
``planner`` the caller passes in (the facade passes
:func:`calibgate.planner.api.plan`): training sits below the planner and never
imports it.
The run directory is written atomically under ``runs_dir`` and
``runs_dir/LATEST`` (plus a ``latest`` symlink where the OS allows) names it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from calibgate.errors import ConfigError, DataError
from calibgate.runs.layout import is_run_id
from calibgate.records.strategies import candidate_key, tunes_encoder
from calibgate.runs import RunManifest, sha256_file
from calibgate.paths import check_writable_dir
from calibgate.runs.guard import check_outside_runs
from calibgate.records.strategies import TRAINABLE as STRATEGIES
from calibgate.training.options import MODIFIERS, make_options

if TYPE_CHECKING:
    from calibgate.records.plan import Plan

Planner = Callable[..., "Plan"]  # planner(config=ProjectConfig, model=str) -> Plan


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

    @property
    def tuning_note(self) -> str | None:
        """One sentence when tuning did not improve on its start (see :func:`tuning_note`)."""
        return tuning_note(self.manifest.strategy, self.manifest.train_config, self.curves)

    @property
    def override_note(self) -> str | None:
        """One sentence when ``--strategy`` overrode the plan."""
        o = self.manifest.train_config.get("plan_override")
        if not o or o.get("follows_plan"):
            return None
        if o.get("planned_strategy") is None:
            return f"no plan recorded ({o.get('plan_error') or 'planner unavailable'}): plan-based gate checks will not pass"
        rank = f" r{o['planned_lora_rank']}" if o.get("planned_lora_rank") else ""
        return f"overrode the plan's {o['planned_strategy']}{rank} ({o['reason']}); the plan is recorded in the run"


def tuning_note(strategy: str, train_config: dict, curves: list[dict]) -> str | None:
    """When early stopping restored epoch 0 of a LoRA / full fine-tuning run (no epoch beat the probe head it started
    from), one sentence saying so and by how much the best tuned epoch fell short; None otherwise."""
    if not tunes_encoder(strategy) or train_config.get("best_epoch") != 0:
        return None
    start = next((c for c in curves if c.get("epoch") == 0), None)
    tuned = [c for c in curves if c.get("epoch", 0) > 0 and c.get("val_loss") is not None]
    if start is None or start.get("val_loss") is None or not tuned:
        return f"{strategy} tuning did not improve on its starting point (the probe head); the run keeps the start"
    best = min(tuned, key=lambda c: c["val_loss"])
    return (
        f"{strategy} tuning did not improve on its starting point (the probe head on the base encoder): the best tuned"
        f" epoch ({best['epoch']} of {len(tuned)}) had validation loss {best['val_loss']:.4f} vs {start['val_loss']:.4f}"
        f" at the start (+{best['val_loss'] - start['val_loss']:.4f}) and accuracy {best['val_accuracy']:.3f} vs"
        f" {start['val_accuracy']:.3f} ({(best['val_accuracy'] - start['val_accuracy']) * 100:+.1f} pt); the run keeps the start"
    )


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
    reason: str | None = None,
    planner: Planner | None = None,
) -> TrainResult:
    """Train per the options / plan and write a run directory; returns where and what.

    An explicit ``strategy`` overrides the plan, but the plan is still
    computed (or read from ``plan``) and recorded in the run, with the
    override and ``reason`` in ``train_config["plan_override"]``, so the
    gate's plan-based checks judge the data the run was trained on.
    ``planner`` makes that plan when none is given (None: not available).
    """
    from calibgate.settings import check_seed, load_config

    if strategy is not None:
        # validate every option before anything is read, loaded or written
        make_options(strategy=strategy, lora_rank=lora_rank, epochs=epochs, batch_size=batch_size, modifiers=modifiers or ())
    elif lora_rank is not None and (not isinstance(lora_rank, int) or lora_rank <= 0):
        raise ConfigError(f"LoRA rank must be a positive integer, got {lora_rank!r}", fix="pass --lora-rank 4, 8, 16 or 32")
    if epochs is not None and (not isinstance(epochs, int) or epochs <= 0):
        raise ConfigError(f"epochs must be a positive integer, got {epochs!r}", fix="pass --epochs 1 or more")
    if run_id is not None and not is_run_id(run_id):
        raise ConfigError(
            f"run id {run_id!r} is not a plain directory name (letters, digits, '.', '_', '-'; no '/' or '..')",
            fix="pass --run-id like 2026-12-ticket-router-lora, or omit it for a generated one",
        )
    if run_id is not None and run_id.casefold() in {p.casefold() for p in LATEST_POINTERS}:
        raise ConfigError(
            f"run id {run_id!r} is the name of the runs directory's pointer to the newest run",
            fix="pass another --run-id, or omit it for a generated one",
        )
    if config is None or isinstance(config, (str, Path)):
        config = load_config(config)
    seed = config.seed if seed is None else check_seed(seed)
    runs_root = Path(runs_dir) if runs_dir is not None else config.path(config.runs_dir)
    check_outside_runs(runs_root, what="--runs-dir" if runs_dir is not None else "runs_dir")  # before planning
    check_writable_dir(runs_root)  # a runs dir that cannot be written fails now, not after minutes of training
    model = model or config.model_path()
    plan_record, source = _resolve_plan(plan, strategy, config, model, planner)
    plan_error = None
    record_only = False
    if plan_record is None and strategy is not None:
        plan_record, plan_error = _plan_for_the_record(config, model, planner)
        record_only = plan_record is not None
    if strategy is None:
        rec = plan_record.recommendation
        if rec.strategy not in STRATEGIES:
            raise ConfigError(
                f"the plan recommends {rec.strategy!r}, which is not a training strategy",
                fix="act on the plan (relabel or collect data) and re-plan, or pass --strategy",
            )
        strategy = rec.strategy
        lora_rank = lora_rank or _checked_rank(rec.lora_rank, source)
    elif strategy == "lora" and lora_rank is None and plan_record is not None:
        lora_rank = _checked_rank(_planned_rank(plan_record), source)  # the plan's rank, as --help says
    not_applied: list[str] = []
    if modifiers is None and plan_record is not None and not record_only:
        # data actions such as 'add-production-data' are for the user, not the trainer
        modifiers = [m for m in plan_record.recommendation.modifiers if m in MODIFIERS]
        not_applied = [m for m in plan_record.recommendation.modifiers if m not in MODIFIERS]
    options = make_options(strategy=strategy, lora_rank=lora_rank, epochs=epochs, batch_size=batch_size, modifiers=modifiers or (), seed=seed)
    override = _override(plan_record, options, source, reason, plan_error)

    from calibgate.data.jsonl import load_labeled
    from calibgate.data.versions import data_version, ensure_pulled

    train_file = Path(train_path) if train_path is not None else config.path(config.data.train)
    if train_path is None:
        ensure_pulled(config.root, config.data.dvc_target, [train_file])
    data = load_labeled(train_file)
    if plan_record is not None and not record_only:
        _check_plan_classes(plan_record, data, source, train_file)
    version = data_version(config.root, config.data.dvc_target) if train_path is None else None
    run_id = run_id or _new_run_id(options.strategy, options.lora_rank)
    run_dir = runs_root / run_id
    if run_dir.exists():
        raise ConfigError(f"{run_dir} already exists", fix="pick another --run-id; runs are never overwritten")
    from calibgate.paths import check_file_target

    check_file_target(runs_root / LATEST_POINTERS[0])  # a LATEST that cannot be replaced fails now, not after the run is sealed

    from calibgate.training.fitting import fit

    trained = fit(
        data, strategy=options.strategy, lora_rank=options.lora_rank, model=model, modifiers=options.modifiers,
        seed=options.seed, epochs=options.epochs if epochs is not None else None, batch_size=batch_size, progress=progress,
    )
    data_info = {
        "source": _portable(train_file, config.root), "sha256": sha256_file(train_file), "rows_sha256": data.sha256, "n": len(data),
        "n_classes": data.n_classes, "dvc_target": config.data.dvc_target,
        "dvc_md5": version.dvc_md5 if version else None, "dvc_state": version.state if version else "untracked",
    }
    manifest = trained.save(
        run_dir, run_id=run_id, data=data_info, plan=plan_record, git_commit=_git_commit(config.root),
        extra_config={"strategy_source": source, "plan_modifiers_not_applied": not_applied, "model": str(model),
                      "config": config.model_dump(mode="json"), **({"plan_override": override} if override else {})},
    )
    _point_latest(runs_root, run_id)
    return TrainResult(run_dir=run_dir, manifest=manifest, curves=trained.curves, source=source)


def _check_plan_classes(plan, data, source: str, train_file: Path) -> None:
    """A plan followed for data without some of its classes was made on another task's calibration set (another
    project's plan.json, a calibration file of other labels): it trained by that plan with exit 0 and recorded it,
    so the gate's plan-based checks judged the run by measurements of other data. Classes the training data adds
    (labels merged with --allow-new-labels) are allowed: the calibration set is a sample."""
    missing = sorted(set(plan.dataset.label_names) - set(data.label_names))
    if missing:
        shown = ", ".join(ascii(label) for label in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DataError(
            f"the plan ({source}, made on {plan.dataset.source}) has {len(missing)} class(es) the training data "
            f"{train_file} lacks ({shown}): it measured another task's data",
            fix="re-plan on a calibration set drawn from this training data (calibgate plan), or pass the plan made for it",
        )


def _checked_rank(rank, source: str) -> int | None:
    """A rank read from a plan, refused as the plan's (not as a --lora-rank nobody passed) when it is no rank."""
    from calibgate.records.thresholds import MAX_LORA_RANK

    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= MAX_LORA_RANK):
        raise ConfigError(f"the plan ({source}) names LoRA rank {rank!r}, not an integer from 1 to {MAX_LORA_RANK}",
                          fix="re-plan with positive planner.lora_ranks in the policy, or pass --lora-rank")
    return rank


def _planned_rank(plan) -> int | None:
    """The LoRA rank the plan recommends, or would train after its data action (``fix-labels, then lora/r16``)."""
    rec = plan.recommendation
    if rec.strategy == "lora":
        return rec.lora_rank
    chosen = next((c for c in rec.candidates if candidate_key(c.strategy, c.lora_rank) == rec.chosen_candidate), None)
    return chosen.lora_rank if chosen is not None and chosen.strategy == "lora" else None


def _resolve_plan(plan, strategy, config, model, planner: Planner | None):
    from calibgate.records.plan import Plan

    if isinstance(plan, Plan):
        return plan, "option" if strategy else "plan"
    if plan is not None:
        from calibgate.runs import read_record

        record = read_record(plan, Plan, what="plan", fix="run 'calibgate plan --json > plan.json' or drop --plan")
        return record, "option" if strategy else "plan file"
    if strategy is not None:
        return None, "option"
    if planner is None:
        raise ConfigError(
            "no strategy given and the planner is not available in this build",
            fix="pass --strategy (and --lora-rank) or --plan plan.json",
        )
    return planner(config=config, model=model), "planner"


def _plan_for_the_record(config, model, planner: Planner | None):
    """(plan, None), or (None, why) when the planner is missing or refuses the data: the run says why it has no plan."""
    if planner is None:
        return None, "the planner is not available in this build"
    from calibgate.errors import CalibgateError

    try:
        return planner(config=config, model=model), None
    except CalibgateError as exc:
        return None, exc.format()


def _override(plan_record, options, source: str, reason: str | None, plan_error: str | None) -> dict | None:
    """What the plan recommended, what was trained instead and why (None when training followed the plan)."""
    if source != "option":
        return None
    rec = plan_record.recommendation if plan_record is not None else None
    planned = rec.strategy if rec is not None else None
    planned_rank = rec.lora_rank if rec is not None else None
    return {
        "planned_strategy": planned, "planned_lora_rank": planned_rank,
        "trained_strategy": options.strategy, "trained_lora_rank": options.lora_rank,
        "follows_plan": planned == options.strategy and (planned_rank == options.lora_rank or options.lora_rank is None),
        "reason": reason or "--strategy given explicitly",
        **({"plan_error": plan_error} if plan_error else {}),
    }


def _portable(path: Path, root: Path) -> str:
    """``path`` relative to the project root (POSIX), or its bare name outside it: runs and tags never hold machine paths."""
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return path.name


def _new_run_id(strategy: str, rank: int | None) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{strategy}{f'-r{rank}' if rank else ''}-{secrets.token_hex(2)}"


def _git_commit(root: Path) -> str | None:
    try:
        import git

        return git.Repo(str(root), search_parent_directories=True).head.commit.hexsha
    except Exception:  # not a repo, no commits yet, git missing: lineage says None
        return None


LATEST_POINTERS = ("LATEST", "latest")  # runs_dir/LATEST names the newest run; runs_dir/latest links to it


def _point_latest(runs_root: Path, run_id: str) -> None:
    from calibgate.paths import atomic_write_text

    pointer, symlink = LATEST_POINTERS
    atomic_write_text(runs_root / pointer, run_id + "\n")
    link = runs_root / symlink
    try:
        if link.is_symlink() or not link.exists():
            tmp_link = runs_root / f".latest-{os.getpid()}"
            if tmp_link.is_symlink():
                tmp_link.unlink()
            tmp_link.symlink_to(run_id)
            tmp_link.replace(link)
    except OSError:
        pass  # LATEST is enough where symlinks are not allowed
