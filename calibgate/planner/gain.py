"""How far fine-tuning moves the probe's log-odds: measured, shrunk toward a prior.

The fine-tuning signal (:mod:`calibgate.training.hidden_view`) gives, for
every calibration row, an out-of-fold probability from the frozen probe and
from a probe on all the encoder's layers, on the same folds. Their paired
log-odds difference, ``logit(view) - logit(probe)``, is the headroom
measured at the calibration size. It is a lower bound of what tuning adds
(it sees what the encoder computes, not what tuning re-organises) and noisy
at a few hundred rows, so:

* it is scaled by ``MEASURED_SCALE`` (hand-set, not fitted: on sst2 and cr
  the view read about half of full fine-tuning's shift at 300-500 rows; see
  benchmarks/RESULTS-regret.md);
* its sampling variance comes from a paired bootstrap over rows, floored at
  ``1 / errors`` (a difference measured on e probe errors is never known
  better than ``1/sqrt(e)``);
* it is combined with the prior shift +- its spread
  (:mod:`calibgate.planner.priors`) by precision weighting (a normal-normal
  posterior mean), one-sided: a measurement above the prior raises the
  shift, one at or below it leaves the prior. A null at the calibration size
  is no evidence of a null at the target size: the view's extra features
  overfit few examples per class (banking77 at 100 rows reads -4 points
  where tuning is even with the probe).

``--fast`` plans, and models whose layers cannot be read, use the prior alone
and say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibgate.planner.priors import MAX_SHIFT, Priors, load_priors, logit

MEASURED_SCALE = 2.0
PRIOR_STANDS = "which stands: the measurement is a lower bound"  # the source's words when the prior is kept
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
    boot_shifts: np.ndarray | None = None  # posterior shifts over bootstrap resamples (for the stability check)
    boot_probe_shift: np.ndarray | None = None  # probe accuracy change over the same resamples


def prior_gain(priors: Priors | None = None) -> GainEstimate:
    prior = priors or load_priors()
    low, high = prior.shift - 1.96 * prior.shift_sd, prior.shift + 1.96 * prior.shift_sd
    return GainEstimate(measured=False, shift=prior.shift, shift_low=max(low, -MAX_SHIFT), shift_high=min(high, MAX_SHIFT),
                        source=f"prior ({prior.source}), not measured")


def measured_gain(
    labels: np.ndarray, probe_proba: np.ndarray, tuned_proba: np.ndarray, *, seed: int = 0, priors: Priors | None = None
) -> GainEstimate:
    """Posterior log-odds shift from paired out-of-fold predictions (see the module docstring)."""
    prior = priors or load_priors()
    labels = np.asarray(labels)
    n = len(labels)
    rows = np.arange(n)
    probe_hit = (probe_proba.argmax(1) == labels).astype(float)
    tuned_hit = (tuned_proba.argmax(1) == labels).astype(float)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(RESAMPLES, n))
    boot_probe, boot_tuned = probe_hit[index].mean(1), tuned_hit[index].mean(1)
    raw = _raw_shift(probe_hit.mean(), tuned_hit.mean())
    boot_raw = _raw_shift(boot_probe, boot_tuned)
    errors = max(float((1 - probe_hit).sum()), 1.0)
    variance = max(float(np.var(boot_raw)), 1.0 / errors) * MEASURED_SCALE**2
    shift, sd = _posterior(MEASURED_SCALE * raw, variance, prior)
    boot_shifts = np.array([_posterior(MEASURED_SCALE * r, variance, prior)[0] for r in boot_raw])
    raised = MEASURED_SCALE * raw > prior.shift
    diff = (tuned_hit - probe_hit)[index].mean(1) * 100
    log_loss = lambda p: float(-np.mean(np.log(np.clip(p[rows, labels], 1e-9, None))))  # noqa: E731
    return GainEstimate(
        measured=True,
        shift=shift,
        shift_low=float(np.clip(shift - 1.96 * sd, -MAX_SHIFT, MAX_SHIFT)),
        shift_high=float(np.clip(shift + 1.96 * sd, -MAX_SHIFT, MAX_SHIFT)),
        source=(
            f"measured: the hidden-state probe moved the log-odds {raw:+.2f} out of fold, scaled x{MEASURED_SCALE:g} and "
            f"combined with the prior {prior.shift:+.2f}"
            if raised else
            f"measured {raw:+.2f} log-odds out of fold (x{MEASURED_SCALE:g}: at or below the prior {prior.shift:+.2f}, "
            f"{PRIOR_STANDS})"
        ),
        probe_accuracy=float(probe_hit.mean()),
        tuned_accuracy=float(tuned_hit.mean()),
        probe_log_loss=log_loss(probe_proba),
        tuned_log_loss=log_loss(tuned_proba),
        gain=float((tuned_hit.mean() - probe_hit.mean()) * 100),
        gain_low=float(np.quantile(diff, 0.025)),
        gain_high=float(np.quantile(diff, 0.975)),
        boot_shifts=boot_shifts,
        boot_probe_shift=boot_probe - probe_hit.mean(),
    )


def _raw_shift(probe_accuracy, tuned_accuracy):
    """logit(tuned) - logit(probe), accuracies clipped away from 0 and 1."""
    return np.clip(logit(tuned_accuracy) - logit(probe_accuracy), -MAX_SHIFT, MAX_SHIFT)


def _posterior(measured: float, variance: float, prior: Priors) -> tuple[float, float]:
    """One-sided normal-normal posterior (mean, sd) of the shift: a measurement below the prior leaves the prior."""
    if measured <= prior.shift:
        return prior.shift, prior.shift_sd
    w_measured, w_prior = 1.0 / variance, 1.0 / prior.shift_sd**2
    mean = (w_measured * measured + w_prior * prior.shift) / (w_measured + w_prior)
    return float(np.clip(mean, -MAX_SHIFT, MAX_SHIFT)), float(np.sqrt(1.0 / (w_measured + w_prior)))
