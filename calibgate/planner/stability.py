"""Is the recommendation stable, and how many labels would settle it?

The plan is re-made on bootstrap resamples of the calibration rows: each
resample shifts the probe's measured accuracy and the measured fine-tuning
shift by what that resample measured (both from the same paired
out-of-fold predictions), the candidates are predicted again and the same
choice rule is applied. ``agreement`` is the share of resamples choosing
what the plan chose. When it is low, the same resampled deviations are
shrunk by ``1/sqrt(m)`` (what ``m`` times as many calibration rows would
give) to find the smallest ``m`` at which the choice settles, reported as
calibration labels per class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from calibgate.planner.candidates import Prediction, predict_candidates
from calibgate.planner.decide import choose
from calibgate.records.strategies import candidate_key
from calibgate.planner.gain import GainEstimate
from calibgate.planner.priors import Priors
from calibgate.records.plan import Candidate, FineTuning, Interval, Recommendation, Stability
from calibgate.records.thresholds import PlannerThresholds

STABLE_AGREEMENT = 0.8
GROWTH = (1.5, 2.0, 3.0, 4.0, 6.0, 8.0)


@dataclass(frozen=True)
class PredictionInputs:
    """Everything the candidate predictions depend on besides the fine-tuning gain."""

    probe: tuple[float, float, float]
    knn: tuple[float, float, float]
    target_size: int
    calibration_size: int
    lora_ranks: list[int]
    noise_rate: float = 0.0
    knn_lead: float = 0.0
    priors: Priors | None = None
    curve_prior: bool = False  # the learning curves' shape was a prior (too few examples per class to fit it)

    def predict(self, gain: GainEstimate) -> list[Prediction]:
        return predict_candidates(
            probe=self.probe, knn=self.knn, target_size=self.target_size, calibration_size=self.calibration_size,
            lora_ranks=self.lora_ranks, gain=gain, noise_rate=self.noise_rate, knn_lead=self.knn_lead, priors=self.priors,
            curve_prior=self.curve_prior,
        )

    def shifted(self, probe_shift: float) -> "PredictionInputs":
        p = tuple(float(np.clip(v + probe_shift, 0, 1)) for v in self.probe)
        return replace(self, probe=p)


def replan_stability(
    inputs: PredictionInputs,
    gain: GainEstimate,
    chosen: str,
    build: Callable[[list[Prediction]], list[Candidate]],
    *,
    thresholds: PlannerThresholds,
    n: int,
    n_classes: int,
    seed: int = 0,
    probe_hits: np.ndarray | None = None,
) -> Stability:
    """Agreement of the choice over bootstrap resamples, and the labels per class that would settle it."""
    tuning_shifts, probe_shifts = _deviations(gain, probe_hits, seed)

    def choices(scale: float) -> list[str]:
        out = []
        for tuning, probe in zip(tuning_shifts, probe_shifts):
            s = float(gain.shift + (tuning - gain.shift) * scale)
            g = replace(gain, shift=s, shift_low=s, shift_high=s)
            picked, _ = choose(build(inputs.shifted(probe * scale).predict(g)), thresholds.tolerance, thresholds.min_cost_saving)
            out.append(candidate_key(picked.strategy, picked.lora_rank))
        return out

    picked = choices(1.0)
    counts = {k: picked.count(k) / len(picked) for k in sorted(set(picked))}
    agreement = counts.get(chosen, 0.0)
    stable = agreement >= STABLE_AGREEMENT
    per_class = None
    if not stable:
        for m in GROWTH:
            settled = choices(1 / math.sqrt(m))
            if settled.count(chosen) / len(settled) >= STABLE_AGREEMENT:
                per_class = int(math.ceil(m * n / max(n_classes, 1)))
                break
    others = ", ".join(f"{k} {v:.0%}" for k, v in counts.items() if k != chosen) or "none"
    if stable:
        reading = f"Stable: {agreement:.0%} of {len(picked)} bootstrap re-plans choose {chosen} (others: {others})."
    elif per_class is not None:
        reading = (
            f"Unstable: only {agreement:.0%} of {len(picked)} bootstrap re-plans choose {chosen} (others: {others}); "
            f"about {per_class} calibration labels per class (now {n / max(n_classes, 1):.0f}) would settle it."
        )
    else:
        reading = (
            f"Unstable: only {agreement:.0%} of {len(picked)} bootstrap re-plans choose {chosen} (others: {others}); "
            f"even {GROWTH[-1]:g}x the calibration labels would not settle it: the candidates are within noise of each other."
        )
    return Stability(
        resamples=len(picked), agreement=agreement, choices=counts, stable=stable,
        labels_per_class_to_settle=per_class, reading=reading,
    )


def _deviations(gain: GainEstimate, probe_hits: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per resample: (fine-tuning log-odds shift read from the resample, probe accuracy shift)."""
    if gain.boot_shifts is not None and gain.boot_probe_shift is not None:
        return gain.boot_shifts, gain.boot_probe_shift
    if probe_hits is None:
        return np.array([gain.shift]), np.zeros(1)
    rng = np.random.default_rng(seed)
    hits = np.asarray(probe_hits, dtype=float)
    boot = hits[rng.integers(0, len(hits), size=(200, len(hits)))].mean(1) - hits.mean()
    return np.full(len(boot), gain.shift), boot


def with_stability(recommendation: Recommendation, stability: Stability) -> Recommendation:
    return recommendation.model_copy(
        update={"stability": stability, "rationale": [*recommendation.rationale, stability.reading]}
    )


def fine_tuning_record(gain: GainEstimate, view, predictions: list[Prediction], *, unavailable: str | None = None) -> FineTuning:
    """The plan's ``fine_tuning`` signal from the gain estimate and (when measured) the hidden-state view."""
    by_key = {candidate_key(p.strategy, p.lora_rank): p for p in predictions}
    probe, full = by_key["embedding-probe"], by_key["full-finetune"]
    gain_target = (full.accuracy - probe.accuracy) * 100
    target_ci = Interval(
        low=(full.low - probe.low) * 100, high=(full.high - probe.high) * 100,
        method="log-odds shift interval applied to the probe's interval",
    )
    share = lambda f, p: float(np.clip((f - p) / max(1.0 - p, 1e-9), -1, 1))  # noqa: E731
    recovered = share(full.accuracy, probe.accuracy)
    share_ci = Interval(low=min(share(full.low, probe.low), recovered), high=max(share(full.high, probe.high), recovered),
                        method="implied by the log-odds shift's 95% interval")
    shift_line = f"log-odds shift of full fine-tuning over the probe: {gain.shift:+.2f} (95% {gain.shift_low:+.2f} to {gain.shift_high:+.2f})"
    if not gain.measured:
        why = unavailable or "--fast"
        return FineTuning(
            status="not-measured",
            reading=f"Fine-tuning not measured ({why}): predictions for lora and full-finetune are priors.",
            evidence=[f"prior {shift_line}: full fine-tuning recovers {recovered:.0%} of the probe's remaining error"],
            measured=False, method=f"prior ({why})", recovered_share=recovered, recovered_share_ci=share_ci,
            predicted_gain_at_target=round(gain_target, 2), predicted_gain_at_target_ci=target_ci,
        )
    gain_ci = Interval(low=gain.gain_low, high=gain.gain_high, method="paired bootstrap over calibration rows")
    wide = gain.gain_high - gain.gain_low
    n = len(view.labels)
    trust = [f"the measured gain's 95% interval is {wide:.1f} points wide: seed-level noise at {n} rows"] if wide > 4 else []
    status = "warn" if gain_target >= 1.0 else "ok"  # warn: the frozen encoder leaves points on the table
    train_rows = int(round(n * (view.folds - 1) / view.folds))
    return FineTuning(
        status=status,
        reading=(
            f"Tuning the encoder is predicted to add {gain_target:+.1f} points over the probe at the target size "
            f"(the encoder's hidden states add {gain.gain:+.1f} points out of fold at {n} rows)."
        ),
        evidence=[
            f"{view.folds}-fold cross-fitted logistic probe (C={view.C:g}) on blocks {', '.join(str(int(i)) for i in view.layers)} "
            f"of {view.n_layers}, pooled and concatenated, against the frozen probe on the same folds",
            f"out-of-fold accuracy: probe {gain.probe_accuracy:.1%}, hidden states {gain.tuned_accuracy:.1%} "
            f"({gain.gain:+.1f} points, 95% CI {gain.gain_low:+.1f} to {gain.gain_high:+.1f})",
            gain.source,
            shift_line,
            f"{view.seconds:.1f} s ({view.cpu_seconds:.1f} CPU s); "
            + (f"full-model training step measured at {view.full_step_examples_per_second:.1f} examples/s (cost model "
               "calibrated with it)" if view.full_step_examples_per_second else
               "training steps not timed (over their time or memory budget): training costs use the reference throughput"),
        ],
        trust_warnings=trust,
        measured=True,
        method="cross-fitted probe on the encoder's hidden states",
        folds=view.folds, layers_tuned=0, n_layers=view.n_layers, train_rows=train_rows,
        probe_accuracy=gain.probe_accuracy, tuned_accuracy=gain.tuned_accuracy,
        probe_log_loss=gain.probe_log_loss, tuned_log_loss=gain.tuned_log_loss,
        gain_at_calibration=round(gain.gain, 2), gain_at_calibration_ci=gain_ci,
        recovered_share=recovered, recovered_share_ci=share_ci,
        predicted_gain_at_target=round(gain_target, 2), predicted_gain_at_target_ci=target_ci,
        seconds=round(view.seconds, 2), cpu_seconds=round(view.cpu_seconds, 2),
        full_step_examples_per_second=round(view.full_step_examples_per_second, 2) if view.full_step_examples_per_second else None,
    )
