"""Regret benchmark: does the plan pick nearly as well as training every candidate?

Protocol (issue "Regret benchmark"), per data set with train and test splits:

1. full labeled set: a stratified sample of the train split (``full_size``);
   test set: a stratified sample of the test split (``test_size``); an
   unlabeled production sample: other texts of the test split.
2. exhaustive search: every candidate (embedding-probe, retrieval, LoRA at
   each rank, full fine-tuning) trained on the full set and scored on the test
   set; results cached as JSON keyed by data hash, candidate and config.
3. the plan: ``calibgate plan`` on stratified calibration samples of each size
   and seed, told the full set's size and given the production sample.
   regret = best candidate's test accuracy - the chosen candidate's (points);
   compute saved = 1 - (planning + chosen training) / (all candidates' training).
4. baselines: each fixed strategy; Kendall tau between predicted and actual
   candidate accuracies.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from calibgate.data.jsonl import LabeledSet, UnlabeledSet, load_labeled
from calibgate.paths import atomic_write_text
from calibgate.planner.decide import choose
from calibgate.records.plan import Plan
from calibgate.records.strategies import candidate_key

if TYPE_CHECKING:
    from calibgate.planner.priors import Priors


@dataclass(frozen=True)
class BenchConfig:
    full_size: int = 2000
    test_size: int = 2000
    production_size: int = 300
    calibration_sizes: tuple[int, ...] = (100, 300, 500)
    seeds: tuple[int, ...] = (0, 1, 2)
    lora_ranks: tuple[int, ...] = (8, 16)
    epochs: int | None = None  # None: the trainer's default with early stopping
    model: str | None = None
    cache_dir: Path = Path("benchmarks/regret-cache")

    @classmethod
    def quick(cls, cache_dir: Path = Path("benchmarks/cache")) -> "BenchConfig":
        return cls(full_size=120, test_size=100, production_size=60, calibration_sizes=(100,), seeds=(0,), lora_ranks=(8,), epochs=1, cache_dir=cache_dir)


@dataclass
class DatasetResult:
    name: str
    candidates: dict[str, dict]  # key -> {"accuracy", "train_seconds"}
    plans: list[dict] = field(default_factory=list)


def stratified_sample(data: LabeledSet, size: int, *, seed: int) -> np.ndarray:
    """Row indices of a stratified sample of ``size`` rows (every class kept when size allows)."""
    if size >= len(data):
        return np.arange(len(data))
    from sklearn.model_selection import train_test_split

    counts = np.bincount(data.labels)
    stratify = data.labels if counts[counts > 0].min() >= 2 and size >= data.n_classes else None
    index, _ = train_test_split(np.arange(len(data)), train_size=size, random_state=seed, stratify=stratify)
    return np.sort(index)


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def candidate_list(config: BenchConfig) -> list[tuple[str, int | None]]:
    return [("embedding-probe", None), ("retrieval", None), *(("lora", r) for r in config.lora_ranks), ("full-finetune", None)]


def exhaustive(full: LabeledSet, test: LabeledSet, config: BenchConfig, *, log: Callable[[str], None]) -> dict[str, dict]:
    """Train and score every candidate (cached on disk)."""
    from calibgate.embeddings.encoder import resolve_model_dir
    from calibgate.training import fit

    info = resolve_model_dir(config.model)
    results = {}
    for strategy, rank in candidate_list(config):
        key = candidate_key(strategy, rank)
        cache = config.cache_dir / "candidates" / f"{_key(full.sha256, test.sha256, key, config.epochs, info.fingerprint)}.json"
        if cache.exists():
            results[key] = json.loads(cache.read_text())
            log(f"  {key}: cached, accuracy {results[key]['accuracy']:.4f}")
            continue
        start, cpu_start = time.perf_counter(), time.process_time()
        kwargs = {"epochs": config.epochs} if config.epochs else {}
        model = fit(full, strategy=strategy, lora_rank=rank, model=config.model, seed=0, **kwargs)
        train_seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
        proba = model.predict_proba(list(test.texts))
        predicted = np.asarray(proba).argmax(axis=1)
        accuracy = float((predicted == test.labels).mean())
        from sklearn.metrics import f1_score

        results[key] = {
            "accuracy": accuracy,
            "macro_f1": float(f1_score(test.labels, predicted, average="macro", labels=np.unique(test.labels))),
            "train_seconds": train_seconds, "cpu_seconds": cpu_seconds, "strategy": strategy, "lora_rank": rank,
            "config_hash": cache.stem, "n_train": len(full), "n_test": len(test),
        }
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, json.dumps(results[key], indent=2))
        log(f"  {key}: accuracy {accuracy:.4f}, trained in {train_seconds:.0f} s")
    return results


@dataclass(frozen=True)
class Splits:
    full: LabeledSet
    test: LabeledSet
    production: UnlabeledSet

    def calibration(self, size: int, seed: int) -> LabeledSet:
        return self.full.subset(stratified_sample(self.full, size, seed=seed))


def splits(directory: Path, config: BenchConfig) -> Splits:
    """The protocol's full labeled set, test set and production sample of one data set directory (deterministic)."""
    from calibgate.data.jsonl import from_records

    train_all = load_labeled(directory / "train.jsonl")
    test_all = load_labeled(directory / "test.jsonl", label_names=None)
    # align label spaces: test rows with labels unseen in train cannot be predicted; keep train's space
    names = train_all.label_names
    test_rows = [(t, test_all.label_names[y]) for t, y in zip(test_all.texts, test_all.labels) if test_all.label_names[y] in names]
    test_pool = from_records([t for t, _ in test_rows], [l for _, l in test_rows], label_names=names, source=str(directory / "test.jsonl"))
    full = train_all.subset(stratified_sample(train_all, config.full_size, seed=0))
    test_index = stratified_sample(test_pool, config.test_size, seed=0)
    test = test_pool.subset(test_index)
    rest = np.setdiff1d(np.arange(len(test_pool)), test_index)
    rng = np.random.default_rng(0)
    pool = rest if len(rest) >= config.production_size else np.arange(len(test_pool))
    production = UnlabeledSet(texts=tuple(test_pool.texts[i] for i in rng.choice(pool, min(config.production_size, len(pool)), replace=False)), source="test split")
    return Splits(full=full, test=test, production=production)


def train_candidates(name: str, directory: Path, config: BenchConfig, *, log: Callable[[str], None] = print) -> dict[str, dict]:
    """Every candidate of one data set, trained (or read from the cache) and charged for its embedding."""
    split = splits(directory, config)
    log(f"{name}: full {len(split.full)}, test {len(split.test)}, production {len(split.production)}, {split.full.n_classes} classes")
    candidates = exhaustive(split.full, split.test, config, log=log)
    _charge_embedding(candidates, split.full, config, log=log)
    return candidates


def _accuracies(candidates: dict[str, dict[str, dict]]) -> dict[str, dict[str, float]]:
    """{data set: {candidate key: test accuracy}}: what the priors are fitted on."""
    return {name: {k: c["accuracy"] for k, c in cands.items()} for name, cands in candidates.items()}


def loo_priors(candidates: dict[str, dict[str, dict]], readings: dict[str, list[float]] | None = None) -> dict[str, "Priors"]:
    """Per data set, the planner's priors fitted on the other data sets' trained candidates and plan readings (leave
    one out); the shipped priors when there is no other data set."""
    from calibgate.planner.priors import fit_priors, load_priors

    accuracies = _accuracies(candidates)
    readings = readings or {}
    if len(accuracies) < 2:
        return {name: load_priors() for name in accuracies}
    return {
        name: fit_priors({o: a for o, a in accuracies.items() if o != name}, {o: r for o, r in readings.items() if o != name})
        for name in accuracies
    }


def plan_readings(name: str, directory: Path, config: BenchConfig, *, log: Callable[[str], None] = print) -> list[float]:
    """The fine-tuning signal's reading (:func:`calibgate.planner.gain.reading`) of every benchmark plan of one data
    set: what the priors' reading calibration is fitted on. The reading does not depend on the priors, so it is taken
    from a plan made with the hand-set ones and cached on its own (small JSON, keyed like the plans)."""
    from calibgate.records.thresholds import PlannerThresholds

    split = splits(directory, config)
    thresholds = PlannerThresholds(lora_ranks=list(config.lora_ranks))
    out = []
    for size in config.calibration_sizes:
        for seed in config.seeds:
            value = _reading_cached(name, split.calibration(size, seed), split.production, len(split.full), config, thresholds, seed, log=log)
            if value is not None:
                out.append(value)
    return out


def _planner_cache_path(kind: str, name, cal, production, target, config, thresholds, seed, variant) -> Path:
    """Where a result of this planner on this calibration sample is cached: ``kind`` is the folder (plans,
    readings), ``variant`` what else the result depends on (the priors, or none)."""
    from calibgate.embeddings.encoder import resolve_model_dir

    info = resolve_model_dir(config.model)
    key = _key(cal.sha256, production.texts, target, info.fingerprint, thresholds.model_dump(), seed, _planner_fingerprint(), variant)
    return config.cache_dir / kind / f"{name}-n{len(cal)}-s{seed}-{key}.json"


def _reading_cached(name, cal, production, target, config, thresholds, seed, *, log) -> float | None:
    from calibgate.planner.api import plan as make_plan
    from calibgate.planner.gain import reading
    from calibgate.planner.priors import Priors

    path = _planner_cache_path("readings", name, cal, production, target, config, thresholds, seed, "reading")
    if path.exists():
        return json.loads(path.read_text())["reading"]
    plan = make_plan(calibration=cal, production=production, target_size=target, model=config.model, thresholds=thresholds, seed=seed, priors=Priors())
    ft = plan.signals.fine_tuning
    value = float(reading(ft.probe_accuracy, ft.tuned_accuracy)) if ft is not None and ft.measured else None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"reading": value, "probe_accuracy": ft.probe_accuracy if ft else None,
                                        "tuned_accuracy": ft.tuned_accuracy if ft else None}))
    log(f"  reading n={len(cal)} seed={seed}: {value if value is None else round(value, 3)}")
    return value


def run_dataset(
    name: str, directory: Path, config: BenchConfig, *, candidates: dict[str, dict] | None = None, priors: "Priors | None" = None,
    log: Callable[[str], None] = print,
) -> DatasetResult:
    from scipy.stats import kendalltau

    from calibgate.planner.priors import load_priors
    from calibgate.records.thresholds import PlannerThresholds

    split = splits(directory, config)
    full, production = split.full, split.production
    candidates = candidates if candidates is not None else train_candidates(name, directory, config, log=log)
    priors = priors or load_priors()
    log(f"{name}: planning with priors {priors.source}")
    best = max(c["accuracy"] for c in candidates.values())
    cost_key = _cost_key(candidates)
    total = sum(c[cost_key] for c in candidates.values())
    thresholds = PlannerThresholds(lora_ranks=list(config.lora_ranks))
    result = DatasetResult(name=name, candidates=candidates)
    for size in config.calibration_sizes:
        for seed in config.seeds:
            cal = split.calibration(size, seed)
            record = _plan_cached(name, cal, production, len(full), config, thresholds, seed, priors=priors, log=log)
            plan = Plan.model_validate(record["plan"])
            plan_cost = record["plan_cpu_seconds"] if cost_key == "cpu_seconds" else record["plan_seconds"]
            chosen = plan.recommendation.chosen_candidate
            predicted = {candidate_key(c.strategy, c.lora_rank): c.predicted_accuracy for c in plan.recommendation.candidates}
            keys = sorted(candidates)
            tau = kendalltau([predicted[k] for k in keys], [candidates[k]["accuracy"] for k in keys]).statistic
            trace = {}
            for tolerance in TOLERANCES:
                picked, _ = choose(plan.recommendation.candidates, tolerance, thresholds.min_cost_saving)
                key = candidate_key(picked.strategy, picked.lora_rank)
                trace[str(tolerance)] = {
                    "chosen": key, "regret_points": (best - candidates[key]["accuracy"]) * 100,
                    "compute_share": (plan_cost + candidates[key][cost_key]) / total,
                }
            ft = plan.signals.fine_tuning
            row = {
                "calibration_size": size,
                "seed": seed,
                "strategy": plan.recommendation.strategy,
                "chosen": chosen,
                "regret_points": (best - candidates[chosen]["accuracy"]) * 100,
                "compute_saved": 1 - (plan_cost + candidates[chosen][cost_key]) / total,
                "compute_share": (plan_cost + candidates[chosen][cost_key]) / total,
                "compute_measure": cost_key,
                "plan_seconds": record["plan_seconds"],
                "plan_cpu_seconds": record["plan_cpu_seconds"],
                "kendall_tau": None if np.isnan(tau) else float(tau),
                "predicted": predicted,
                "gap_predicted_points": (predicted["full-finetune"] - predicted["embedding-probe"]) * 100,
                "gap_actual_points": (candidates["full-finetune"]["accuracy"] - candidates["embedding-probe"]["accuracy"]) * 100,
                "stability": None if plan.recommendation.stability is None else plan.recommendation.stability.agreement,
                "tolerance_trace": trace,
                "signals": {
                    "probe_accuracy": plan.signals.separability.probe_accuracy,
                    "label_noise": plan.signals.label_noise.estimated_rate,
                    "shift_auc": plan.signals.domain_shift.auc,
                    "gain_per_doubling": plan.signals.starvation.gain_per_doubling,
                    "fine_tuning_measured": bool(ft and ft.measured),
                    "fine_tuning_gain_at_calibration": ft.gain_at_calibration if ft else None,
                    "fine_tuning_share": ft.recovered_share if ft else None,
                },
            }
            result.plans.append(row)
            log(f"  plan n={size} seed={seed}: {chosen} (regret {row['regret_points']:.2f} pts, compute {row['compute_share']:.0%}, tau {row['kendall_tau']})")
    return result


TOLERANCES = (0.0, 0.5, 1.0, 2.0)
# what a plan's result depends on; the records a plan does not use (decisions, evaluations) are left out, so editing
# them does not re-plan the benchmark (tests/bench/test_regret.py checks that every module these import is listed)
_PLANNER_SOURCES = (
    "planner", "signals", "records/base.py", "records/plan.py", "records/strategies.py", "records/thresholds.py",
    "training/hidden_view.py", "embeddings/encoder.py",
)


def _planner_fingerprint() -> str:
    """Hash of the code a plan's result depends on: a cached plan is reused only by the same planner."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for part in _PLANNER_SOURCES:
        path = root / part
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _plan_cached(name, cal, production, target, config, thresholds, seed, *, priors=None, log) -> dict:
    """The plan (JSON) and its measured cost, from the cache when this planner already made it."""
    from calibgate.planner.api import plan as make_plan

    path = _planner_cache_path("plans", name, cal, production, target, config, thresholds, seed,
                               priors.to_json() if priors is not None else None)
    if path.exists():
        return json.loads(path.read_text())
    start, cpu_start = time.perf_counter(), time.process_time()
    plan = make_plan(calibration=cal, production=production, target_size=target, model=config.model, thresholds=thresholds, seed=seed, priors=priors)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    ft = plan.signals.fine_tuning
    # a fine-tuning measurement read from the planner's cache is charged what it cost when it ran: the call spent
    # less CPU than the measurement records, so it cannot have run here
    cached = bool(ft and ft.measured) and cpu_seconds < ft.cpu_seconds
    record = {
        "plan_seconds": seconds + (ft.seconds if cached else 0.0),
        "plan_cpu_seconds": cpu_seconds + (ft.cpu_seconds if cached else 0.0),
        "fine_tuning_cached": cached,
        "plan": plan.model_dump(mode="json"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, default=float))
    return record


def _charge_embedding(candidates: dict[str, dict], full: LabeledSet, config: BenchConfig, *, log) -> None:
    """Frozen candidates pay for embedding their training texts: when their record read cached embeddings
    (CPU seconds below a cold embedding's), a cold embedding measured once is added."""
    from calibgate.embeddings.encoder import embed_texts, resolve_model_dir

    info = resolve_model_dir(config.model)
    path = config.cache_dir / "embedding" / f"{_key(full.sha256, info.fingerprint)}.json"
    if path.exists():
        cold = json.loads(path.read_text())["cpu_seconds"]
    else:
        started = time.process_time()
        embed_texts(full.texts, model=info, cache=False)
        cold = time.process_time() - started
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"cpu_seconds": cold, "n": len(full)}))
    for key in ("embedding-probe", "retrieval"):
        c = candidates.get(key)
        if c is not None and c.get("cpu_seconds", cold) < cold:
            c["cpu_seconds"] = c["cpu_seconds"] + cold
            c["embedding_charged"] = cold
    log(f"  cold embedding of the training set: {cold:.1f} CPU s")


def _cost_key(candidates: dict[str, dict]) -> str:
    """Compute is CPU seconds of the process (fair on a shared machine) when every candidate recorded it."""
    return "cpu_seconds" if all("cpu_seconds" in c for c in candidates.values()) else "train_seconds"


def fixed_strategy_rows(results: list[DatasetResult]) -> dict[str, dict]:
    """Regret and compute saved of always training one candidate."""
    keys = sorted({k for r in results for k in r.candidates})
    rows = {}
    for key in keys:
        regrets, saved = [], []
        for r in results:
            best = max(c["accuracy"] for c in r.candidates.values())
            cost_key = _cost_key(r.candidates)
            total = sum(c[cost_key] for c in r.candidates.values())
            regrets.append((best - r.candidates[key]["accuracy"]) * 100)
            saved.append(1 - r.candidates[key][cost_key] / total)
        rows[key] = {"mean_regret": float(np.mean(regrets)), "worst_regret": float(np.max(regrets)), "compute_saved": float(np.mean(saved))}
    return rows


def _plan_stats(plans: list[dict]) -> dict:
    taus = [p["kendall_tau"] for p in plans if p.get("kendall_tau") is not None]
    gaps = [abs(p["gap_predicted_points"] - p["gap_actual_points"]) for p in plans if "gap_predicted_points" in p]
    return {
        "plans": len(plans),
        "mean_regret": float(np.mean([p["regret_points"] for p in plans])),
        "worst_regret": float(np.max([p["regret_points"] for p in plans])),
        "compute_saved": float(np.mean([p["compute_saved"] for p in plans])),
        "compute_share": float(np.mean([1 - p["compute_saved"] for p in plans])),
        "kendall_tau": float(np.mean(taus)) if taus else None,
        "gap_mae_points": float(np.mean(gaps)) if gaps else None,
    }


def noise_ceiling_tau(results: list[DatasetResult], *, draws: int = 500, seed: int = 0) -> float | None:
    """Mean Kendall tau between the candidates' test accuracies and re-draws of them from the test set's sampling
    noise alone (independent binomials at each candidate's test size): roughly what a predictor that knew every
    candidate's expected accuracy would score against one trained-and-tested draw. Training-seed noise, not counted,
    would lower it; the test rows all candidates share, also not counted, would raise it."""
    from scipy.stats import kendalltau

    rng = np.random.default_rng(seed)
    taus = []
    for r in results:
        cands = [c for c in r.candidates.values() if c.get("n_test")]
        if len(cands) < 3:
            continue
        accuracy = np.array([c["accuracy"] for c in cands])
        n_test = np.array([c["n_test"] for c in cands])
        for _ in range(draws):
            tau = kendalltau(accuracy, rng.binomial(n_test, accuracy) / n_test).statistic
            if not np.isnan(tau):
                taus.append(tau)
    return float(np.mean(taus)) if taus else None


def summarise(results: list[DatasetResult]) -> dict:
    everything = [p for r in results for p in r.plans]
    by_size = {
        size: _plan_stats([p for p in everything if p["calibration_size"] == size])
        for size in sorted({p["calibration_size"] for p in everything})
    }
    by_dataset = {r.name: _plan_stats(r.plans) for r in results if r.plans}
    trace = {}
    for tolerance in sorted({t for p in everything for t in p.get("tolerance_trace", {})}, key=float):
        rows = [p["tolerance_trace"][tolerance] for p in everything if tolerance in p.get("tolerance_trace", {})]
        trace[tolerance] = {
            "mean_regret": float(np.mean([r["regret_points"] for r in rows])),
            "worst_regret": float(np.max([r["regret_points"] for r in rows])),
            "compute_share": float(np.mean([r["compute_share"] for r in rows])),
        }
    return {
        "overall": _plan_stats(everything) if everything else None,
        "by_calibration_size": by_size,
        "by_dataset": by_dataset,
        "tolerance_trace": trace,
        "fixed_strategies": fixed_strategy_rows(results),
        "noise_ceiling_tau": noise_ceiling_tau(results),
    }


def _reading_fit(p: dict) -> str:
    if "reading_slope" not in p:
        return "n/a"
    fitted = "" if p.get("reading_fitted_on") else " (hand-set)"
    return f"{p['reading_intercept']:+.2f} + {p['reading_slope']:.2f} x reading{fitted}"


def _fmt(value, pattern: str) -> str:
    return "n/a" if value is None else format(value, pattern)


def render_markdown(results: list[DatasetResult], summary: dict, *, command: str) -> str:
    lines = ["## Regret benchmark", "", f"Produced by `{command}`.", ""]
    for r in results:
        best = max(c["accuracy"] for c in r.candidates.values())
        lines += [f"### {r.name}", "", "| candidate | test accuracy | macro-F1 | train wall s | train CPU s |", "|---|---|---|---|---|"]
        for key, c in sorted(r.candidates.items(), key=lambda kv: -kv[1]["accuracy"]):
            cpu = f"{c['cpu_seconds']:.0f}" if "cpu_seconds" in c else "n/a"
            f1 = f"{c['macro_f1']:.2%}" if "macro_f1" in c else "n/a"
            lines.append(f"| {key}{' (best)' if c['accuracy'] == best else ''} | {c['accuracy']:.2%} | {f1} | {c['train_seconds']:.0f} | {cpu} |")
        lines += [
            "", "| calibration size | seed | plan | chosen | regret (pts) | compute share | Kendall tau | gap predicted / actual (pts) | stability |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for p in r.plans:
            gap = f"{p['gap_predicted_points']:+.1f} / {p['gap_actual_points']:+.1f}" if "gap_predicted_points" in p else "n/a"
            lines.append(
                f"| {p['calibration_size']} | {p['seed']} | {p['strategy']} | {p['chosen']} | {p['regret_points']:.2f} | "
                f"{1 - p['compute_saved']:.0%} | {_fmt(p.get('kendall_tau'), '.2f')} | {gap} | {_fmt(p.get('stability'), '.0%')} |"
            )
        lines.append("")
    header = ["| {} | plans | mean regret | worst regret | compute share | Kendall tau | gap MAE (pts) |", "|---|---|---|---|---|---|---|"]

    def stat_row(label, s) -> str:
        return (
            f"| {label} | {s['plans']} | {s['mean_regret']:.2f} | {s['worst_regret']:.2f} | {s['compute_share']:.0%} | "
            f"{_fmt(s['kendall_tau'], '.2f')} | {_fmt(s['gap_mae_points'], '.2f')} |"
        )

    lines += ["### Overall", "", header[0].format("data set"), header[1]]
    lines += [stat_row(name, s) for name, s in summary["by_dataset"].items()]
    if summary.get("overall"):
        lines.append(stat_row("**all**", summary["overall"]))
    if summary.get("noise_ceiling_tau") is not None:
        lines += [
            "", f"Kendall tau's noise ceiling: {summary['noise_ceiling_tau']:.2f}, the mean tau between the candidates' "
            "test accuracies and re-draws of them from the test set's binomial sampling noise (what a predictor that "
            "knew each candidate's expected accuracy would score against one test draw; training-seed noise would "
            "lower it).",
        ]
    lines += ["", header[0].format("calibration size"), header[1]]
    lines += [stat_row(size, s) for size, s in summary["by_calibration_size"].items()]
    if summary.get("tolerance_trace"):
        lines += ["", "Trade-off (the same plans re-decided at each tolerance):", "", "| tolerance (pts) | mean regret | worst regret | compute share |", "|---|---|---|---|"]
        lines += [f"| {t} | {s['mean_regret']:.2f} | {s['worst_regret']:.2f} | {s['compute_share']:.0%} |" for t, s in summary["tolerance_trace"].items()]
    if summary.get("priors"):
        ranks = sorted({int(r) for p in summary["priors"].values() for r in p["lora_offset"]})
        lines += [
            "", "Fine-tuning priors each data set was planned with (fitted on the other data sets' candidates: leave one out):", "",
            "| planned | full FT's log-odds shift over the probe | spread | shift read from the signal | residual sd | "
            + " | ".join(f"LoRA r{r} - full (pts)" for r in ranks) + " |",
            "|---|---|---|---|---|" + "---|" * len(ranks),
        ]
        for name, p in summary["priors"].items():
            offsets = " | ".join(f"{100 * p['lora_offset'].get(str(r), float('nan')):+.2f}" for r in ranks)
            lines.append(f"| {name} | {p['shift']:+.2f} | {p['shift_sd']:.2f} | {_reading_fit(p)} | {p.get('reading_sd', float('nan')):.2f} | {offsets} |")
        if summary.get("shipped_priors"):
            p = summary["shipped_priors"]
            offsets = " | ".join(f"{100 * p['lora_offset'].get(str(r), float('nan')):+.2f}" for r in ranks)
            lines.append(
                f"| *shipped (all {len(p['fitted_on'])})* | {p['shift']:+.2f} | {p['shift_sd']:.2f} | {_reading_fit(p)} | "
                f"{p.get('reading_sd', float('nan')):.2f} | {offsets} |"
            )
    lines += ["", "Fixed strategies (same data sets):", "", "| always | mean regret | worst regret | compute share |", "|---|---|---|---|"]
    for key, s in summary["fixed_strategies"].items():
        lines.append(f"| {key} | {s['mean_regret']:.2f} | {s['worst_regret']:.2f} | {1 - s['compute_saved']:.0%} |")
    return "\n".join(lines) + "\n"


def bench_regret(
    datasets: list[Path], *, config: BenchConfig | None = None, output: Path | None = None, command: str = "calibgate bench regret",
    write_priors: Path | None = None, log: Callable[[str], None] = print,
) -> dict:
    """Run the protocol on each data set directory; write markdown + raw JSON when ``output`` is given.

    Candidates are trained first on every data set; each data set is then planned with priors fitted on the others
    (leave one data set out). ``write_priors`` writes the priors fitted on all of them (the shipped ``priors.json``).
    """
    from calibgate.planner.priors import fit_priors

    config = config or BenchConfig()
    names = [Path(d).name for d in datasets]
    candidates = {name: train_candidates(name, Path(d), config, log=log) for name, d in zip(names, datasets)}
    readings = {name: plan_readings(name, Path(d), config, log=log) for name, d in zip(names, datasets)}
    priors = loo_priors(candidates, readings)
    results = [run_dataset(name, Path(d), config, candidates=candidates[name], priors=priors[name], log=log) for name, d in zip(names, datasets)]
    summary = summarise(results)
    summary["priors"] = {name: json.loads(p.to_json()) for name, p in priors.items()}
    summary["readings"] = readings
    if write_priors is not None:
        fitted = fit_priors(_accuracies(candidates), readings)
        atomic_write_text(write_priors, fitted.to_json())
        summary["shipped_priors"] = json.loads(fitted.to_json())
    raw = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in config.__dict__.items()}, "datasets": [r.__dict__ for r in results], "summary": summary}
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output, render_markdown(results, summary, command=command))
        atomic_write_text(output.with_suffix(".json"), json.dumps(raw, indent=2, default=float))
    return raw
