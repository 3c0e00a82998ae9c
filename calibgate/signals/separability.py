"""Separability: how well a linear probe on frozen embeddings separates the classes.

Cross-validated probe accuracy and macro-F1 (with a bootstrap interval),
against the majority-class and cosine-kNN baselines.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from calibgate.records.plan import Separability
from calibgate.signals.base import Signal, SignalContext, register_signal
from calibgate.signals.probes import accuracy
from calibgate.signals.stats import bootstrap_mean


@register_signal
class SeparabilitySignal(Signal):
    name = "separability"

    def compute(self, ctx: SignalContext) -> Separability:
        correct = ctx.oof_probe.argmax(axis=1) == ctx.labels
        probe_acc = float(correct.mean())
        ci = bootstrap_mean(correct, seed=ctx.seed)
        macro_f1 = float(f1_score(ctx.labels, ctx.oof_probe.argmax(axis=1), average="macro", labels=np.arange(ctx.n_classes), zero_division=0))
        knn_acc = accuracy(ctx.oof_knn, ctx.labels)
        majority = float(ctx.counts.max() / ctx.n)
        chance_gap = probe_acc - majority
        if probe_acc >= 0.9:
            status, reading = "ok", f"Classes separate well on frozen embeddings ({probe_acc:.1%} probe accuracy)."
        elif chance_gap < 0.1:
            status, reading = "alert", (
                f"The probe barely beats the majority class ({probe_acc:.1%} vs {majority:.1%}): the frozen encoder "
                "does not capture this task, or the labels do not follow the text."
            )
        else:
            status, reading = "warn", (
                f"Partly separable ({probe_acc:.1%} probe accuracy): a tuned encoder may gain over a frozen one."
            )
        trust = []
        if ctx.counts.min() < 3:
            trust.append(f"classes with fewer than 3 examples make the {ctx.folds}-fold estimate noisy")
        return Separability(
            status=status,
            reading=reading,
            evidence=[
                f"{ctx.folds}-fold CV logistic-regression probe (C={ctx.probe_C:g}): accuracy {probe_acc:.3f} "
                f"[{ci.low:.3f}, {ci.high:.3f}], macro-F1 {macro_f1:.3f}",
                f"cosine kNN (k={ctx.knn_k}): accuracy {knn_acc:.3f}; majority class: {majority:.3f}",
            ],
            trust_warnings=trust,
            probe_accuracy=probe_acc,
            probe_accuracy_ci=ci,
            probe_macro_f1=macro_f1,
            knn_accuracy=knn_acc,
            knn_k=ctx.knn_k,
            majority_accuracy=majority,
            folds=ctx.folds,
        )
