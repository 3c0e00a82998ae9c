"""Hand-made planner inputs: a valid ``Signals`` and ``Candidate`` list a test changes only where it matters.

The defaults describe a clean, balanced, well-separated task that trips no data
gate and no modifier: ``signals(label_noise={"estimated_rate": 0.12})`` is the
same task with noisy labels.
"""

from __future__ import annotations

from calibgate.records.plan import (
    Candidate,
    DomainShift,
    Duplicates,
    FineTuning,
    Imbalance,
    LabelNoise,
    Separability,
    Signals,
    Starvation,
    Suspect,
)
from calibgate.records.strategies import STRATEGIES, candidate_key

_COMMON = {"status": "ok", "reading": "hand-made"}

DEFAULTS: dict[str, dict] = {
    "separability": {
        "probe_accuracy": 0.85, "probe_macro_f1": 0.84, "knn_accuracy": 0.80, "knn_k": 10, "majority_accuracy": 0.50, "folds": 5,
    },
    "label_noise": {
        "estimated_rate": 0.02, "raw_issue_rate": 0.03, "overlap_rate": 0.01, "method": "hand-made", "suspects": [],
    },
    "imbalance": {
        "counts": {"a": 50, "b": 50}, "imbalance_ratio": 1.0, "normalized_entropy": 1.0, "min_count": 50,
        "min_count_required": 5, "classes_under_min": [],
    },
    "starvation": {
        "curve": [], "fit": {}, "target_size": 2000, "predicted_probe_accuracy_at_target": 0.90, "predicted_ceiling": 0.95,
        "gain_per_doubling": 1.0, "train_validation_gap": 0.02,
    },
    "domain_shift": {"measured": True, "auc": 0.60, "p_value": 0.1, "n_production": 100},
    "duplicates": {
        "exact_duplicate_groups": 0, "near_duplicate_pairs": 0, "conflicting_label_groups": 0, "truncated": 0, "max_length": 256,
    },
}
FINE_TUNING_MEASURED = {
    "measured": True, "method": "cross-fitted probe on the encoder's hidden states", "folds": 3, "layers_tuned": 0, "n_layers": 6,
    "probe_accuracy": 0.80, "tuned_accuracy": 0.83, "gain_at_calibration": 3.0, "recovered_share": 0.40,
    "predicted_gain_at_target": 2.4,
}
_TYPES = {
    "separability": Separability, "label_noise": LabelNoise, "imbalance": Imbalance, "starvation": Starvation,
    "domain_shift": DomainShift, "duplicates": Duplicates,
}


def signals(*, fine_tuning: dict | None = None, **changes: dict) -> Signals:
    """A valid ``Signals``; each keyword (a signal's name) holds the fields that differ from :data:`DEFAULTS`.
    ``fine_tuning`` is absent unless given, then built on :data:`FINE_TUNING_MEASURED`."""
    unknown = set(changes) - set(_TYPES)
    assert not unknown, f"not a built-in signal: {unknown}"
    records = {name: cls(**{**_COMMON, **DEFAULTS[name], **changes.get(name, {})}) for name, cls in _TYPES.items()}
    if fine_tuning is not None:
        records["fine_tuning"] = FineTuning(**{**_COMMON, **FINE_TUNING_MEASURED, **fine_tuning})
    return Signals(**records)


def suspects(n: int) -> list[Suspect]:
    return [Suspect(index=i, text=f"text {i}", given_label="a", suggested_label="b", score=0.1) for i in range(n)]


def candidate(key: str, accuracy: float, seconds: float, *, eligible: bool = True) -> Candidate:
    """A candidate by its plan key (``lora/r8``), with the catalogue's latency class."""
    strategy, _, rank = key.partition("/r")
    return Candidate(
        strategy=strategy,
        lora_rank=int(rank) if rank else None,
        predicted_accuracy=accuracy,
        estimated_train_seconds=seconds,
        latency_class=STRATEGIES[strategy].latency_class,
        eligible=eligible,
    )


def candidates(table: dict[str, tuple[float, float]]) -> list[Candidate]:
    """``{key: (accuracy, seconds)}`` in the given order."""
    return [candidate(k, a, s) for k, (a, s) in table.items()]


def key(c: Candidate) -> str:
    return candidate_key(c.strategy, c.lora_rank)
