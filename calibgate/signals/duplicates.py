"""Exact and near duplicates, duplicates with conflicting labels, and truncated texts."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from calibgate.records.plan import Duplicates
from calibgate.signals.base import Signal, SignalContext, register_signal

NEAR_DUPLICATE_COSINE = 0.97


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


@register_signal
class DuplicatesSignal(Signal):
    name = "duplicates"

    def compute(self, ctx: SignalContext) -> Duplicates:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, text in enumerate(ctx.texts):
            groups[_normalise(text)].append(i)
        exact = [g for g in groups.values() if len(g) > 1]
        # near duplicates: cosine above the threshold, excluding exact copies
        sims = ctx.embeddings @ ctx.embeddings.T
        np.fill_diagonal(sims, 0)
        pairs = np.argwhere(np.triu(sims >= NEAR_DUPLICATE_COSINE, k=1))
        exact_pairs = {(a, b) for g in exact for a in g for b in g if a < b}
        near = [(int(a), int(b)) for a, b in pairs if (a, b) not in exact_pairs]
        conflicting = [g for g in exact if len({int(ctx.labels[i]) for i in g}) > 1]
        exact_conflict_rows = sum(len(g) for g in conflicting)
        conflicting += [[a, b] for a, b in near if ctx.labels[a] != ctx.labels[b]]
        truncated = int((ctx.n_tokens > ctx.max_length).sum()) if ctx.n_tokens is not None else 0
        problems = []
        if conflicting:
            problems.append(f"{len(conflicting)} duplicate group(s) carry conflicting labels")
        if exact:
            problems.append(f"{sum(len(g) - 1 for g in exact)} exact duplicate row(s)")
        if truncated:
            problems.append(f"{truncated} text(s) exceed the model's {ctx.max_length} tokens and are truncated")
        status = "warn" if conflicting or truncated > 0.05 * ctx.n else ("ok" if not problems else "warn")
        reading = "; ".join(problems) + "." if problems else "No duplicates, conflicts or truncated texts."
        return Duplicates(
            status=status,
            reading=reading[0].upper() + reading[1:],
            evidence=[
                f"{len(exact)} exact groups, {len(near)} near-duplicate pairs (cosine ≥ {NEAR_DUPLICATE_COSINE})",
                *(f"conflict: rows {g} labelled {[ctx.label_names[ctx.labels[i]] for i in g]}" for g in conflicting[:5]),
            ],
            exact_duplicate_groups=len(exact),
            near_duplicate_pairs=len(near),
            conflicting_label_groups=len(conflicting),
            conflicting_examples=[list(map(int, g)) for g in conflicting[:50]],
            exact_conflict_rows=exact_conflict_rows,
            truncated=truncated,
            max_length=ctx.max_length,
        )
