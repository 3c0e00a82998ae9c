"""How far fine-tuning moves the probe's log-odds: a measured reading, calibrated.

The fine-tuning signal (:mod:`calibgate.training.hidden_view`) gives, for
every calibration row, an out-of-fold probability from the frozen probe and
from a probe on all the encoder's layers, on the same folds. Their log-odds
difference, ``logit(view accuracy) - logit(probe accuracy)``, is the
*reading*. It is not full fine-tuning's shift at the target size: it sees
what the encoder computes, not what tuning re-organises, and it is noisy at a
few hundred rows (banking77 at 100 rows reads -0.5 where tuning is even with
the probe; atis reads 0.0 where tuning adds 3 points). So it is calibrated:
the shift is ``intercept + slope x reading``, both fitted on the regret
benchmark's plans against trained candidates
(:mod:`calibgate.planner.priors`), with the fit's residual spread as its
uncertainty. A reading may lower the shift as well as raise it.

The reading's bootstrap over calibration rows (paired: the same resampled
rows for both probes) feeds the stability check.

``--fast`` plans, and models whose layers cannot be read, use the prior shift
alone and say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibgate.planner.priors import MAX_SHIFT, Priors, load_priors, logit

RESAMPLES = 400


@dataclass(frozen=True)
class GainEstimate:
    measured: bool
    shift: float  # log-odds shift of full fine-tuning over the probe at the target size
    shift_low: float
    shift_high: float
    source: str
    probe_accuracy: float | None = None
    tuned_accuracy: float | None = None  # the hidden-state probe, out of fold
    probe_log_loss: float | None = None
    tuned_log_loss: float | None = None
    gain: float | None = None  # points, view - probe, out of fold at the calibration size
    gain_low: float | None = None
    gain_high: float | None = None
    boot_shifts: np.ndarray | None = None  # shifts read from bootstrap resamples' readings (for the stability check)
    boot_probe_shift: np.ndarray | None = None  # probe accuracy change over the same resamples


def prior_gain(priors: Priors | None = None) -> GainEstimate:
    prior = priors or load_priors()
    low, high = prior.shift - 1.96 * prior.shift_sd, prior.shift + 1.96 * prior.shift_sd
    return GainEstimate(measured=False, shift=prior.shift, shift_low=max(low, -MAX_SHIFT), shift_high=min(high, MAX_SHIFT),
                        source=f"prior ({prior.source}), not measured")


def measured_gain(
    labels: np.ndarray, probe_proba: np.ndarray, tuned_proba: np.ndarray, *, seed: int = 0, priors: Priors | None = None
) -> GainEstimate:
    """Full fine-tuning's log-odds shift from paired out-of-fold predictions (see the module docstring)."""
    prior = priors or load_priors()
    labels = np.asarray(labels)
    n = len(labels)
    rows = np.arange(n)
    probe_hit = (probe_proba.argmax(1) == labels).astype(float)
    tuned_hit = (tuned_proba.argmax(1) == labels).astype(float)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(RESAMPLES, n))
    boot_probe, boot_tuned = probe_hit[index].mean(1), tuned_hit[index].mean(1)
    raw = float(reading(probe_hit.mean(), tuned_hit.mean()))
    boot_raw = reading(boot_probe, boot_tuned)
    shift, sd = float(prior.from_reading(raw)), prior.reading_sd
    diff = (tuned_hit - probe_hit)[index].mean(1) * 100
    log_loss = lambda p: float(-np.mean(np.log(np.clip(p[rows, labels], 1e-9, None))))  # noqa: E731
    return GainEstimate(
        measured=True,
        shift=shift,
        shift_low=float(np.clip(shift - 1.96 * sd, -MAX_SHIFT, MAX_SHIFT)),
        shift_high=float(np.clip(shift + 1.96 * sd, -MAX_SHIFT, MAX_SHIFT)),
        source=(
            f"measured: the hidden-state probe moved the log-odds {raw:+.2f} out of fold; full fine-tuning's shift read "
            f"from it as {prior.reading_intercept:+.2f} + {prior.reading_slope:.2f} x reading = {shift:+.2f} (calibration "
            f"{prior.reading_source}, residual sd {sd:.2f})"
        ),
        probe_accuracy=float(probe_hit.mean()),
        tuned_accuracy=float(tuned_hit.mean()),
        probe_log_loss=log_loss(probe_proba),
        tuned_log_loss=log_loss(tuned_proba),
        gain=float((tuned_hit.mean() - probe_hit.mean()) * 100),
        gain_low=float(np.quantile(diff, 0.025)),
        gain_high=float(np.quantile(diff, 0.975)),
        boot_shifts=prior.from_reading(boot_raw),
        boot_probe_shift=boot_probe - probe_hit.mean(),
    )


def reading(probe_accuracy, tuned_accuracy):
    """The fine-tuning signal's reading: logit(tuned) - logit(probe) out of fold, accuracies clipped away from 0 and
    1, capped (array-friendly)."""
    return np.clip(logit(tuned_accuracy) - logit(probe_accuracy), -MAX_SHIFT, MAX_SHIFT)
