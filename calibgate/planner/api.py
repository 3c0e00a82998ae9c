"""``calibgate plan``: read a calibration set, measure signals, recommend an adaptation.

Validation happens first and fully (files, labels, model directory), so bad
input fails before anything is embedded, cached or written.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from calibgate import __version__
from calibgate.data.jsonl import LabeledSet, UnlabeledSet, load_labeled, load_unlabeled
from calibgate.data.versions import data_version, ensure_pulled
from calibgate.errors import ConfigError, DataError
from calibgate.planner.costs import CostModel
from calibgate.planner.decide import build_candidates, recommend
from calibgate.planner.gain import measured_gain, prior_gain
from calibgate.planner.priors import Priors
from calibgate.planner.stability import PredictionInputs, fine_tuning_record, replan_stability, with_stability
from calibgate.records.plan import DatasetInfo, Plan, Signals
from calibgate.records.thresholds import PlannerThresholds
from calibgate.settings import ProjectConfig, check_seed, load_config


def plan(
    *,
    config: str | Path | ProjectConfig | None = None,
    calibration: str | Path | LabeledSet | None = None,
    production: str | Path | UnlabeledSet | None = None,
    target_size: int | None = None,
    model: str | None = None,
    policy: str | Path | None = None,
    thresholds: PlannerThresholds | None = None,
    folds: int = 5,
    seed: int | None = None,
    cache: bool = True,
    progress: bool = False,
    fast: bool = False,
    priors: Priors | None = None,
) -> Plan:
    """Measure the calibration set's signals and recommend the cheapest adaptation that will do.

    Arguments override ``calibgate.yaml``; without a config, ``calibration``
    is required. ``target_size`` is the number of labeled examples training
    will use (default: the config's ``target_size`` or the size of
    ``data.train``, else the calibration size). ``fast`` skips the measured
    fine-tuning signal: fine-tuning predictions are then priors. ``priors``
    replaces the shipped fine-tuning priors (the regret benchmark passes priors
    fitted without the data set it plans).
    """
    timings: dict[str, float] = {}
    timer = _timer(timings)
    warnings: list[str] = []
    cfg = config if isinstance(config, ProjectConfig) else load_config(config)
    if folds < 2:
        raise ConfigError(f"--folds {folds} is too small", fix="use at least 2 folds")
    if target_size is not None and target_size < 1:
        raise ConfigError(f"--target-size {target_size} must be a positive number of examples", fix="e.g. --target-size 2000")
    seed = cfg.seed if seed is None else check_seed(seed)

    with timer("load"):
        cal_path, prod_path = _resolve_paths(cfg, calibration, production, warnings)
        if isinstance(calibration, LabeledSet):
            cal = calibration
        else:
            cal = load_labeled(cal_path, min_rows=2 * folds)
            if min(np.bincount(cal.labels)) < 1:  # pragma: no cover - label space is built from the rows
                raise DataError(f"{cal_path}: empty class")
        prod = production if isinstance(production, UnlabeledSet) else (load_unlabeled(prod_path) if prod_path else None)
        thresholds = thresholds or _load_thresholds(cfg, policy)
        target = target_size or cfg.target_size or _count_rows(cfg.path(cfg.data.train)) or len(cal)
        _check_target(target, target_size, cfg, len(cal.label_names))
        model_name = model or cfg.model_path()
        from calibgate.embeddings.encoder import resolve_model_dir

        info = resolve_model_dir(model_name)
        in_tracked = cal_path is not None and cfg.data.dvc_target and _inside(cal_path, cfg.root / cfg.data.dvc_target)
        version = data_version(cfg.root, cfg.data.dvc_target) if in_tracked else None
    if version is not None and version.state == "modified":
        warnings.append(f"data differs from the committed DVC version: {version.detail}")

    from calibgate.embeddings.encoder import embed_texts

    with timer("embed"):
        emb = embed_texts(cal.texts, model=info, cache=cache, progress=progress)
        prod_emb = embed_texts(prod.texts, model=info, cache=cache, progress=progress) if prod is not None else None
    timings["embed_cached"] = float(emb.from_cache and (prod_emb is None or prod_emb.from_cache))

    from calibgate.signals import SignalContext, compute_signals
    from calibgate.signals.starvation import extrapolate, shape_fittable

    ctx = SignalContext(
        embeddings=emb.vectors,
        labels=cal.labels,
        label_names=cal.label_names,
        texts=cal.texts,
        thresholds=thresholds,
        target_size=target,
        production_embeddings=None if prod_emb is None else prod_emb.vectors,
        n_tokens=emb.n_tokens,
        max_length=info.max_length,
        seed=seed,
        line_numbers=cal.line_numbers or None,
        max_folds=folds,
    )
    view, unavailable = None, None
    if not fast:
        with timer("fine_tuning"):
            view, unavailable = _measure_fine_tuning(cal, ctx, info, seed, cache)
        if unavailable:
            warnings.append(f"fine_tuning: not measured ({unavailable}); its predictions are priors")
        else:  # the hidden-state probe is the better noise detector: label noise reads it
            ctx.hidden_proba = view.layer_proba
    with timer("signals"):
        results = compute_signals(ctx, timer=timer)
    gain = measured_gain(view.labels, view.probe_proba, view.layer_proba, seed=seed, priors=priors) if view else prior_gain(priors)
    with timer("plan"):
        starvation = results["starvation"]
        probe_point, probe_ci = starvation.predicted_probe_accuracy_at_target, starvation.predicted_probe_accuracy_ci
        curves = ctx.learning_curves
        fit_shape = shape_fittable(len(cal), len(cal.label_names), len(curves["sizes"]))
        knn_point, _, knn_ci = extrapolate(curves["sizes"], curves["knn"], target, fit_shape=fit_shape)
        if target >= len(cal):  # more data does not hurt: the 5-fold CV accuracy now is a floor
            sep = results["separability"]
            probe_point, knn_point = max(probe_point, sep.probe_accuracy), max(knn_point, sep.knn_accuracy)
        probe_ci = probe_ci.model_copy(update={"low": min(probe_ci.low, probe_point), "high": max(probe_ci.high, probe_point)})
        knn_ci = knn_ci.model_copy(update={"low": min(knn_ci.low, knn_point), "high": max(knn_ci.high, knn_point)})
        inputs = PredictionInputs(
            probe=(probe_point, probe_ci.low, probe_ci.high),
            knn=(knn_point, knn_ci.low, knn_ci.high),
            target_size=target,
            calibration_size=len(cal),
            lora_ranks=list(thresholds.lora_ranks),
            noise_rate=_ceiling_noise(results["label_noise"], thresholds),
            priors=priors,
            knn_lead=results["separability"].knn_accuracy - results["separability"].probe_accuracy,
            curve_prior=not fit_shape,
        )
        predictions = inputs.predict(gain)
        costs = CostModel(params=_param_count(info.path), mean_tokens=float(np.mean(emb.n_tokens)), hardware=cfg.hardware)
        if view is not None:
            costs = costs.calibrated(full_per_s=view.full_step_examples_per_second, embed_per_s=view.embed_examples_per_second)
        results["fine_tuning"] = fine_tuning_record(gain, view, predictions, unavailable=unavailable)
        # built-in signals by field; any other registered signal is kept under its name (Signals' extras)
        signals = Signals(**{k: v if k in Signals.model_fields else v.model_dump(mode="json") for k, v in results.items()})
        candidates = build_candidates(predictions, costs=costs, target_size=target, n_classes=len(cal.label_names), thresholds=thresholds)
        recommendation = recommend(signals, candidates, thresholds, priors)
        stability = replan_stability(
            inputs, gain, recommendation.chosen_candidate,
            lambda preds: build_candidates(preds, costs=costs, target_size=target, n_classes=len(cal.label_names), thresholds=thresholds),
            thresholds=thresholds, n=len(cal), n_classes=len(cal.label_names), seed=seed,
            probe_hits=ctx.oof_probe.argmax(1) == cal.labels,
        )
        recommendation = with_stability(recommendation, stability)
    for name, record in results.items():
        warnings.extend(f"{name}: {w}" for w in record.trust_warnings)
    return Plan(
        calibgate_version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        model=info.name,
        dataset=DatasetInfo(
            n=len(cal),
            n_classes=len(cal.label_names),
            label_names=list(cal.label_names),
            source=str(cal.source),
            sha256=cal.sha256,
            dvc_md5=version.dvc_md5 if version else None,
            dvc_state=version.state if version else "untracked",
            target_size=int(target),
            production_n=len(prod) if prod is not None else None,
        ),
        signals=signals,
        recommendation=recommendation,
        warnings=warnings,
        timings={k: round(v, 3) for k, v in timings.items()},
        policy=_policy_label(cfg, policy),
    )


def _check_target(target: int, given: int | None, cfg: ProjectConfig, n_labels: int) -> None:
    """Refuse a training size below one example per label: no candidate can be predicted there, not even the majority."""
    if target >= n_labels:
        return
    source = "--target-size" if given else ("calibgate.yaml target_size" if cfg.target_size else "data.train")
    raise ConfigError(
        f"{source} gives {target} training examples, fewer than the calibration set's {n_labels} labels",
        fix=f"plan for the size training will really use, at least one example per label (--target-size {n_labels} or more)",
    )


def _ceiling_noise(noise, thresholds: PlannerThresholds) -> float:
    """The label-noise rate that lowers the accuracy ceiling of the predictions: the estimate when the labels fail the
    noise gate (trusted and over ``max_label_noise``), else none. Under the gate the estimate is mostly class overlap,
    not wrong test labels (clean atis reads about 6%), and a ceiling built on it squashed a 3-point fine-tuning gain at
    a 95% probe under the tolerance."""
    failed = noise.estimated_rate > thresholds.max_label_noise and not noise.trust_warnings
    return noise.estimated_rate if failed else 0.0


def _measure_fine_tuning(cal: LabeledSet, ctx, info, seed: int, cache: bool):
    """(HiddenView, None), or (None, why) when the encoder's layers cannot be read."""
    from calibgate.training.hidden_view import HiddenViewUnavailable, cached_hidden_view

    try:
        return cached_hidden_view(
            cal.texts, cal.labels, len(cal.label_names), info=info, probe_proba=ctx.oof_probe, folds=ctx.folds, seed=seed,
            cache=cache,
        ), None
    except HiddenViewUnavailable as exc:
        return None, str(exc)


def _resolve_paths(cfg: ProjectConfig, calibration, production, warnings: list[str]) -> tuple[Path | None, Path | None]:
    cal_path = None if isinstance(calibration, LabeledSet) else (Path(calibration) if calibration else cfg.path(cfg.data.calibration))
    if production is not None and not isinstance(production, UnlabeledSet):
        prod_path = Path(production)
    elif production is None and cfg.data.production:
        prod_path = cfg.path(cfg.data.production)
    else:
        prod_path = None
    # a fresh clone has the DVC-tracked data only in the remote: restore it
    configured = [p for p in (cal_path, prod_path) if p is not None and _inside(p, cfg.root / (cfg.data.dvc_target or "\0"))]
    if configured:
        ensure_pulled(cfg.root, cfg.data.dvc_target, configured)
    if prod_path is not None and production is None and not prod_path.exists():
        warnings.append(f"the configured production sample {prod_path} does not exist: domain shift not measured")
        prod_path = None
    return cal_path, prod_path


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
        return True
    except ValueError:
        return False


def _count_rows(path: Path | None) -> int | None:
    if path is None or not path.is_file():  # missing, or a FIFO that would block the count
        return None
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def _policy_path(cfg: ProjectConfig, policy) -> Path | None:
    from calibgate.policy.loader import advisory_policy_path

    return advisory_policy_path(policy, cfg)


def _load_thresholds(cfg: ProjectConfig, policy) -> PlannerThresholds:
    """The ``planner:`` section of the policy, read like every command reads it (a named, missing file is exit 2)."""
    path = _policy_path(cfg, policy)
    if path is None:
        return PlannerThresholds()
    from calibgate.policy.loader import resolve_policy

    return resolve_policy(policy, cfg).planner


def _policy_label(cfg: ProjectConfig, policy) -> str | None:
    path = _policy_path(cfg, policy)
    if path is None or not path.exists():
        return None
    import hashlib

    return f"{path} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:12]})"


def _param_count(model_dir: Path) -> float:
    """Parameters from the weight files' size (4 bytes per fp32 parameter, 2 for 16-bit)."""
    import json

    total = sum(p.stat().st_size for p in model_dir.glob("*.safetensors")) or sum(p.stat().st_size for p in model_dir.glob("*.bin"))
    try:
        dtype = json.loads((model_dir / "config.json").read_text()).get("torch_dtype") or "float32"
    except (OSError, ValueError):
        dtype = "float32"
    bytes_per = 2 if "16" in str(dtype) else 4
    return float(total / bytes_per) if total else 22.7e6


def _timer(timings: dict[str, float]):
    @contextlib.contextmanager
    def timer(name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start

    return timer
