"""How much of the probe's remaining error fine-tuning recovers: measured, shrunk toward a prior.

The fine-tuning signal (:mod:`calibgate.training.tuned_view`) gives, for
every calibration row, an out-of-fold probability from a frozen probe and
from a tuned model trained on the same folds. Their paired accuracy
difference, divided by the probe's error, is the *recovered share* measured
at the calibration size. At a few hundred rows that share is noisy (a seed
changes it by points) and it understates what full fine-tuning recovers at
the target size (only the top blocks were tuned, on fewer rows), so:

* it is scaled to the target by ``MEASURED_SCALE`` (set from sst2, where
  the share measured at 300 rows was about a quarter of full fine-tuning's
  at 2,000: not fitted across data sets, see benchmarks/RESULTS-regret.md);
* its sampling variance comes from a paired bootstrap over rows, floored at
  ``1 / errors`` (a share measured on e probe errors is never known better
  than ``1/sqrt(e)``: a few hundred rows leave seed-level noise);
* it is combined with the prior share +- its spread (:mod:`calibgate.planner.priors`) by precision
  weighting (a normal-normal posterior mean), one-sided: a measurement above
  the prior raises the share, one at or below it leaves the prior. Tuning
  needs data, so at the calibration size its gain is compressed: on sst2 the
  measured gain was null after two epochs on 200 rows while full
  fine-tuning added 4.4 points at 2,000; a null at calibration size is no
  evidence of a null at the target size.

``--fast`` plans, and models whose blocks cannot be replayed, use the prior
alone and say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibgate.planner.priors import Priors, load_priors

MEASURED_SCALE = 3.0
MAX_SHARE = 0.8
RESAMPLES = 400


@dataclass(frozen=True)
class GainEstimate:
    measured: bool
    share: float
    share_low: float
    share_high: float
    source: str
    probe_accuracy: float | None = None
    tuned_accuracy: float | None = None
    probe_log_loss: float | None = None
    tuned_log_loss: float | None = None
    gain: float | None = None  # points, tuned - probe, out of fold at the calibration size
    gain_low: float | None = None
    gain_high: float | None = None
    boot_shares: np.ndarray | None = None  # posterior shares over bootstrap resamples (for the stability check)
    boot_probe_shift: np.ndarray | None = None  # probe accuracy change over the same resamples


def prior_gain(priors: Priors | None = None) -> GainEstimate:
    prior = priors or load_priors()
    low, high = max(0.0, prior.share - 1.96 * prior.share_sd), min(MAX_SHARE, prior.share + 1.96 * prior.share_sd)
    return GainEstimate(measured=False, share=prior.share, share_low=low, share_high=high, source=f"prior ({prior.source}), not measured")


def measured_gain(
    labels: np.ndarray, probe_proba: np.ndarray, tuned_proba: np.ndarray, *, seed: int = 0, priors: Priors | None = None
) -> GainEstimate:
    """Posterior recovered share from paired out-of-fold predictions (see the module docstring)."""
    prior = priors or load_priors()
    labels = np.asarray(labels)
    n = len(labels)
    rows = np.arange(n)
    probe_hit = (probe_proba.argmax(1) == labels).astype(float)
    tuned_hit = (tuned_proba.argmax(1) == labels).astype(float)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(RESAMPLES, n))
    boot_probe, boot_tuned = probe_hit[index].mean(1), tuned_hit[index].mean(1)
    raw = _raw_share(probe_hit.mean(), tuned_hit.mean())
    boot_raw = _raw_share(boot_probe, boot_tuned)
    errors = max(float((1 - probe_hit).sum()), 1.0)
    variance = max(float(np.var(boot_raw)), 1.0 / errors) * MEASURED_SCALE**2
    share, sd = _posterior(MEASURED_SCALE * raw, variance, prior)
    boot_shares = np.array([_posterior(MEASURED_SCALE * r, variance, prior)[0] for r in boot_raw])
    raised = MEASURED_SCALE * raw > prior.share
    diff = (tuned_hit - probe_hit)[index].mean(1) * 100
    log_loss = lambda p: float(-np.mean(np.log(np.clip(p[rows, labels], 1e-9, None))))  # noqa: E731
    return GainEstimate(
        measured=True,
        share=share,
        share_low=float(np.clip(share - 1.96 * sd, 0, MAX_SHARE)),
        share_high=float(np.clip(share + 1.96 * sd, 0, MAX_SHARE)),
        source=(
            f"measured: {raw:+.0%} of the probe's error recovered out of fold, scaled x{MEASURED_SCALE:g} and combined with the prior"
            if raised else
            f"measured {raw:+.0%} of the probe's error recovered out of fold (x{MEASURED_SCALE:g}: at or below the prior "
            f"{prior.share:.0%}, which stands: tuning's gain is compressed at the calibration size)"
        ),
        probe_accuracy=float(probe_hit.mean()),
        tuned_accuracy=float(tuned_hit.mean()),
        probe_log_loss=log_loss(probe_proba),
        tuned_log_loss=log_loss(tuned_proba),
        gain=float((tuned_hit.mean() - probe_hit.mean()) * 100),
        gain_low=float(np.quantile(diff, 0.025)),
        gain_high=float(np.quantile(diff, 0.975)),
        boot_shares=boot_shares,
        boot_probe_shift=boot_probe - probe_hit.mean(),
    )


def _raw_share(probe_accuracy, tuned_accuracy):
    """(tuned - probe) / probe error; 0 when the probe makes no errors."""
    error = np.maximum(1.0 - np.asarray(probe_accuracy, dtype=float), 1e-9)
    return np.clip((np.asarray(tuned_accuracy) - np.asarray(probe_accuracy)) / error, -1.0, 1.0)


def _posterior(measured: float, variance: float, prior: Priors) -> tuple[float, float]:
    """One-sided normal-normal posterior (mean, sd) of the share: a measurement below the prior leaves the prior."""
    if measured <= prior.share:
        return prior.share, prior.share_sd
    w_measured, w_prior = 1.0 / variance, 1.0 / prior.share_sd**2
    mean = (w_measured * measured + w_prior * prior.share) / (w_measured + w_prior)
    return float(np.clip(mean, 0.0, MAX_SHARE)), float(np.sqrt(1.0 / (w_measured + w_prior)))
