"""Class imbalance: counts, largest/smallest ratio, normalised entropy, starved classes."""

from __future__ import annotations

import numpy as np

from calibgate.records.plan import Imbalance
from calibgate.signals.base import Signal, SignalContext, register_signal


@register_signal
class ImbalanceSignal(Signal):
    name = "imbalance"

    def compute(self, ctx: SignalContext) -> Imbalance:
        counts = ctx.counts
        shares = counts / counts.sum()
        nonzero = shares[shares > 0]
        entropy = float(-(nonzero * np.log(nonzero)).sum() / np.log(ctx.n_classes)) if ctx.n_classes > 1 else 1.0
        ratio = float(counts.max() / max(counts.min(), 1))
        need = ctx.thresholds.min_examples_per_class
        under = [ctx.label_names[i] for i in np.flatnonzero(counts < need)]
        limit = ctx.thresholds.max_imbalance_ratio
        if under:
            status = "alert"
            reading = f"{len(under)} class(es) have fewer than {need} examples: too few to learn or to measure."
        elif ratio > limit:
            status = "warn"
            reading = f"Imbalanced: the largest class is {ratio:.1f}x the smallest (policy limit {limit:g}x)."
        else:
            status = "ok"
            reading = f"Balanced enough: largest/smallest = {ratio:.1f}x (policy limit {limit:g}x)."
        smallest = np.argsort(counts)[:3]
        return Imbalance(
            status=status,
            reading=reading,
            evidence=[
                f"{ctx.n_classes} classes, counts {counts.min()}..{counts.max()}, normalised entropy {entropy:.3f}",
                "smallest: " + ", ".join(f"{ctx.label_names[i]} ({counts[i]})" for i in smallest),
            ],
            counts={ctx.label_names[i]: int(c) for i, c in enumerate(counts)},
            imbalance_ratio=ratio,
            normalized_entropy=entropy,
            min_count=int(counts.min()),
            min_count_required=need,
            classes_under_min=under,
        )
