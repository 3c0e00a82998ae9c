"""Predicted test accuracy of each candidate at the target size.

* embedding-probe: the probe's learning curve extrapolated to the target size.
* retrieval: the kNN learning curve extrapolated the same way, but never
  ahead of the probe's prediction by more than kNN's cross-validated lead at
  the calibration size (a trailing kNN keeps its deficit): with more data a
  linear probe on good embeddings gains at least as much as kNN, and tiny
  calibration sets make kNN curves extrapolate wildly.
* full-finetune: the probe's prediction plus the share of its remaining error
  that tuning the encoder recovers. That share grows with examples per class
  (fine-tuning needs data to move a pretrained encoder; with few examples
  per class a frozen sentence encoder is hard to beat: Tunstall et al. 2022
  "SetFit"; Mosbach et al. 2021), saturating as
  ``recover = RECOVER_MAX * m / (m + M_HALF)`` for m examples per class
  (up to half the probe's error; half of that by ~100 examples per class).
* lora at rank r: the same, scaled by the rank's share of full-rank benefit
  ``r / (r + R_HALF)``: with a tuned learning rate LoRA at r >= 8 matches full
  fine-tuning on sentence classification (Hu et al. 2022, "LoRA", Table 2:
  RoBERTa/DeBERTa on GLUE), so ranks >= 8 keep ~95% of the gain.

The constants are priors, recorded in the plan's evidence. The regret
benchmark measures how well these predictions rank real candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RECOVER_MAX = 0.5
M_HALF = 100.0
R_HALF = 0.5


@dataclass(frozen=True)
class Prediction:
    strategy: str
    lora_rank: int | None
    accuracy: float
    low: float
    high: float
    basis: str


def finetune_recovery(examples_per_class: float) -> float:
    """Share of the probe's error that full fine-tuning recovers at this many examples per class."""
    return RECOVER_MAX * examples_per_class / (examples_per_class + M_HALF)


def rank_share(rank: int) -> float:
    return rank / (rank + R_HALF)


def predict_candidates(
    *,
    probe: tuple[float, float, float],
    knn: tuple[float, float, float],
    target_size: int,
    n_classes: int,
    lora_ranks: list[int],
    noise_rate: float = 0.0,
    knn_lead: float = 0.0,
) -> list[Prediction]:
    """Predictions for every trainable candidate. ``probe``/``knn`` are (point, low, high) at the target size;
    ``knn_lead`` is kNN's cross-validated accuracy minus the probe's at the calibration size."""
    per_class = target_size / max(n_classes, 1)
    recover = finetune_recovery(per_class)
    ceiling = 1.0 - 0.5 * noise_rate  # test labels carry part of the noise the training labels show
    p, p_low, p_high = probe
    cap = p + knn_lead
    k, k_low, k_high = knn
    knn_basis = "kNN learning curve extrapolated to the target size"
    if k > cap:
        k_low, k_high = k_low - (k - cap), k_high - (k - cap)
        k = cap
        knn_basis += f", capped at the probe's prediction + kNN's lead now ({knn_lead:+.1%})"
    out = [
        Prediction("embedding-probe", None, p, p_low, p_high, "probe learning curve extrapolated to the target size"),
        Prediction("retrieval", None, k, k_low, k_high, knn_basis),
    ]
    for rank in lora_ranks:
        share = recover * rank_share(rank)
        acc = p + share * max(0.0, ceiling - p)
        out.append(
            Prediction(
                "lora", rank, acc, p_low + share * max(0.0, ceiling - p_low), min(1.0, p_high + share * max(0.0, ceiling - p_high)),
                f"probe prediction + {share:.0%} of its remaining error ({per_class:.0f} examples/class, rank {rank})",
            )
        )
    acc = p + recover * max(0.0, ceiling - p)
    out.append(
        Prediction(
            "full-finetune", None, acc, p_low + recover * max(0.0, ceiling - p_low), min(1.0, p_high + recover * max(0.0, ceiling - p_high)),
            f"probe prediction + {recover:.0%} of its remaining error ({per_class:.0f} examples/class)",
        )
    )
    return [
        Prediction(c.strategy, c.lora_rank, float(np.clip(c.accuracy, 0, 1)), float(np.clip(c.low, 0, 1)), float(np.clip(c.high, 0, 1)), c.basis)
        for c in out
    ]
