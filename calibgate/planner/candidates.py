"""Predicted test accuracy of each candidate at the target size.

* embedding-probe: the probe's learning curve extrapolated to the target size
  (measured; with too few examples per class to fit the curve's shape, its
  exponent is a prior and the prediction says so).
* retrieval: the kNN learning curve extrapolated the same way, but never
  ahead of the probe when training will see more data than calibration did:
  with more examples per class a linear probe on good embeddings gains at
  least as much as kNN, and the kNN curves of tiny calibration sets
  extrapolate wildly (measured, capped).
* full-finetune: the probe's prediction with its log-odds shifted by what
  tuning the encoder adds. The shift is *measured* on the calibration set
  when the plan ran the fine-tuning signal (:mod:`calibgate.planner.gain`),
  else it is the prior shift.
* lora at rank r: full fine-tuning's prediction plus the prior difference
  between LoRA at that rank and full fine-tuning
  (:mod:`calibgate.planner.priors`, fitted on the regret benchmark's trained
  candidates).

Each prediction says whether it is measured or a prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibgate.planner.gain import GainEstimate
from calibgate.planner.priors import Priors, load_priors, logit, sigmoid


@dataclass(frozen=True)
class Prediction:
    strategy: str
    lora_rank: int | None
    accuracy: float
    low: float
    high: float
    basis: str
    evidence: str  # "measured", "prior" or "measured+prior"


def lora_offset(rank: int, priors: Priors | None = None) -> float:
    """LoRA's accuracy at ``rank`` minus full fine-tuning's (prior)."""
    return (priors or load_priors()).offset(rank)


def predict_candidates(
    *,
    probe: tuple[float, float, float],
    knn: tuple[float, float, float],
    target_size: int,
    calibration_size: int,
    lora_ranks: list[int],
    gain: GainEstimate,
    noise_rate: float = 0.0,
    knn_lead: float = 0.0,
    priors: Priors | None = None,
    curve_prior: bool = False,
) -> list[Prediction]:
    """Predictions for every trainable candidate. ``probe``/``knn`` are (point, low, high) at the target size;
    ``knn_lead`` is kNN's cross-validated accuracy minus the probe's at the calibration size; ``curve_prior`` says the
    curves' shape was a prior, not fitted."""
    ceiling = 1.0 - 0.5 * noise_rate  # test labels carry part of the noise the training labels show
    p, p_low, p_high = probe
    k, k_low, k_high = knn
    curve = " (shape a prior: too few examples per class to fit it)" if curve_prior else ""
    curve_evidence = "measured+prior" if curve_prior else "measured"
    knn_basis = f"kNN learning curve{curve} extrapolated to the target size"
    cap = p + (min(knn_lead, 0.0) if target_size > calibration_size else knn_lead)
    if k > cap:
        k_low, k_high, k = k_low - (k - cap), k_high - (k - cap), cap
        knn_basis += (
            ", capped at the probe's prediction (training sees more data than calibration did)" if cap == p
            else f", capped at the probe's prediction {'plus' if cap > p else 'minus'} kNN's {'lead' if cap > p else 'deficit'} now ({knn_lead:+.1%})"
        )
    out = [
        Prediction("embedding-probe", None, p, p_low, p_high, f"probe learning curve{curve} extrapolated to the target size", curve_evidence),
        Prediction("retrieval", None, k, k_low, k_high, knn_basis, curve_evidence),
    ]
    full_evidence = "measured" if gain.measured else "prior"

    def tuned(shift: float, base: float) -> float:
        """``base`` with its log-odds under the noise ceiling moved by ``shift``; a probe already at or above the
        ceiling gains nothing (and is not predicted to lose: the ceiling is an estimate)."""
        return base if base >= ceiling else float(ceiling * sigmoid(logit(base / ceiling) + shift))

    full = (tuned(gain.shift, p), tuned(gain.shift_low, p_low), tuned(gain.shift_high, p_high))
    for rank in lora_ranks:
        d = lora_offset(rank, priors)
        out.append(
            Prediction(
                "lora", rank, *(v + d for v in full),
                f"full fine-tuning's prediction {d * 100:+.1f} points (rank {rank}, prior)",
                "measured+prior" if gain.measured else "prior",
            )
        )
    out.append(
        Prediction("full-finetune", None, *full, f"probe prediction with its log-odds moved {gain.shift:+.2f} ({gain.source})", full_evidence)
    )
    return [
        Prediction(
            c.strategy, c.lora_rank, float(np.clip(c.accuracy, 0, 1)), float(np.clip(min(c.low, c.accuracy), 0, 1)),
            float(np.clip(max(c.high, c.accuracy), 0, 1)), c.basis, c.evidence,
        )
        for c in out
    ]
