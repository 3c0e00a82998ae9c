"""The signal registry and the context signals share (embeddings, labels, out-of-fold probabilities).

A signal is a class with a ``name`` (the key in the plan's ``signals``) and a
``compute(ctx)`` returning its pydantic record. Expensive shared pieces, such
as the probe's out-of-fold probabilities, are computed once on the context.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, ClassVar

import numpy as np

from calibgate.records.thresholds import PlannerThresholds
from calibgate.signals import probes

SIGNALS: dict[str, type["Signal"]] = {}
_BUILTIN_MODULES = ("separability", "noise", "imbalance", "starvation", "shift", "duplicates")


def register_signal(cls: type["Signal"]) -> type["Signal"]:
    """Class decorator: make a signal available under ``cls.name``."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a 'name'")
    SIGNALS[cls.name] = cls
    return cls


class Signal:
    name: ClassVar[str]

    def compute(self, ctx: "SignalContext"):  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class SignalContext:
    """Inputs of all signals. ``embeddings`` are L2-normalised rows aligned with ``labels``."""

    embeddings: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    texts: tuple[str, ...]
    thresholds: PlannerThresholds = field(default_factory=PlannerThresholds)
    target_size: int | None = None
    production_embeddings: np.ndarray | None = None
    n_tokens: np.ndarray | None = None
    max_length: int = 512
    seed: int = 0
    line_numbers: tuple[int, ...] | None = None
    max_folds: int = 5
    # out-of-fold probabilities of the planner's hidden-state probe on the same folds as ``oof_probe`` (None under
    # --fast): the label-noise signal's first view when present
    hidden_proba: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    @cached_property
    def counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.n_classes)

    @cached_property
    def folds(self) -> int:
        """Cross-validation folds: ``max_folds``, fewer when the data is too small for it (never below 2)."""
        return int(max(2, min(self.max_folds, self.n // 2)))

    @cached_property
    def probe_C(self) -> float:
        return probes.select_C(self.embeddings, self.labels, self.n_classes, seed=self.seed)

    @cached_property
    def oof_probe(self) -> np.ndarray:
        """Out-of-fold class probabilities of the logistic-regression probe, shape (n, K)."""
        return probes.oof_proba(
            self.embeddings, self.labels, self.n_classes, probes.logistic(self.probe_C), folds=self.folds, seed=self.seed
        )

    @cached_property
    def learning_curves(self) -> dict:
        """Probe and kNN validation accuracy by training size (shared by the starvation signal and the planner)."""
        from calibgate.signals.starvation import learning_curves

        return learning_curves(self)

    @cached_property
    def knn_k(self) -> int:
        return probes.choose_k(self.counts)

    @cached_property
    def oof_knn(self) -> np.ndarray:
        """Out-of-fold class probabilities of cosine kNN (similarity-weighted votes)."""
        return probes.oof_proba(
            self.embeddings, self.labels, self.n_classes, probes.knn(self.knn_k), folds=self.folds, seed=self.seed
        )


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(f"calibgate.signals.{module}")


def compute_signals(ctx: SignalContext, *, names: tuple[str, ...] | None = None, timer: Callable | None = None) -> dict:
    """Compute the named (default: all registered) signals; returns ``{name: record}``."""
    _load_builtins()
    results = {}
    for name in names or tuple(SIGNALS):
        signal = SIGNALS[name]()
        if timer is None:
            results[name] = signal.compute(ctx)
        else:
            with timer(f"signal:{name}"):
                results[name] = signal.compute(ctx)
    return results
