"""Which unlabeled production texts are most worth labeling.

Three ingredients, each a published active-learning idea:

* **uncertainty** under the production model: one minus the margin between its
  two most probable labels (Scheffer et al. 2001, "margin sampling"); entropy is
  reported too;
* **shift**: the cross-validated probability of a domain classifier (training vs
  production embeddings) that a text is from production, so texts from the
  regions where production differs from training come first (Rabanser et al.
  2019 use the same classifier to localise shift);
* **diversity**: greedy k-center selection in embedding space (Sener and
  Savarese 2018, "Active learning for convolutional neural networks: a core-set
  approach"), here weighted: each pick maximises priority x distance to the
  texts already picked, so near-duplicates of one confusing text are not all
  chosen.

Random sampling stays the honest baseline: see ``benchmarks/RESULTS-suggest-labels.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibgate.errors import DataError

SHIFT_FOLDS = 5


@dataclass(frozen=True)
class Suggestion:
    """One text to label, with the numbers that chose it (all in [0, 1])."""

    index: int  # row in the pool
    text: str
    rank: int
    predicted: str | None
    confidence: float | None
    uncertainty: float | None
    entropy: float | None
    shift_score: float | None
    distance: float
    reason: str

    def record(self) -> dict:
        """The JSONL line for a labeling tool: the text, an empty label to fill in, and why it was picked."""
        return {
            "text": self.text,
            "label": None,
            "rank": self.rank,
            "pool_index": self.index,
            "predicted": self.predicted,
            "confidence": _round(self.confidence),
            "uncertainty": _round(self.uncertainty),
            "entropy": _round(self.entropy),
            "shift_score": _round(self.shift_score),
            "distance": _round(self.distance),
            "reason": self.reason,
        }


def suggest_labels(
    texts: list[str],
    embeddings: np.ndarray,
    *,
    budget: int,
    pred_probs: np.ndarray | None = None,
    label_names: list[str] | None = None,
    reference_embeddings: np.ndarray | None = None,
    seed: int = 0,
) -> list[Suggestion]:
    """Pick ``budget`` texts of the pool: uncertain, from shifted regions, and diverse (weighted k-center).

    ``pred_probs`` (n, k): the production model's probabilities on the pool
    (without them uncertainty is not used); ``reference_embeddings``: the
    training data's embeddings (without them shift is not used). With neither,
    this is plain k-center greedy, which still beats picking near-duplicates.
    """
    n = len(texts)
    if budget < 1:
        raise DataError(f"budget {budget} must be at least 1", fix="pass --budget N with N >= 1")
    if n == 0:
        raise DataError("the pool has no texts", fix="pass a JSONL file of production texts with --pool")
    if len(embeddings) != n:
        raise DataError(f"{len(embeddings)} embeddings for {n} texts", fix="embed every pool text once")
    if pred_probs is not None and (pred_probs.ndim != 2 or len(pred_probs) != n):
        raise DataError(f"pred_probs has shape {pred_probs.shape}, expected ({n}, n_labels)", fix="predict every pool text")
    if pred_probs is not None and label_names is not None and pred_probs.shape[1] != len(label_names):
        raise DataError(f"{pred_probs.shape[1]} probabilities per text but {len(label_names)} label names", fix="pass the model's labels")
    return _select(texts, _unit(embeddings), budget, pred_probs, label_names, reference_embeddings, seed)


def margin_uncertainty(pred_probs: np.ndarray) -> np.ndarray:
    """1 - (p_top1 - p_top2) per row: 1 when the two best labels tie, 0 when the model is sure."""
    top = -np.sort(-pred_probs, axis=1)
    second = top[:, 1] if top.shape[1] > 1 else np.zeros(len(top))
    return 1.0 - (top[:, 0] - second)


def normalized_entropy(pred_probs: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row divided by log(k), in [0, 1]."""
    p = np.clip(pred_probs, 1e-12, 1.0)
    k = pred_probs.shape[1]
    return -(p * np.log(p)).sum(axis=1) / (np.log(k) if k > 1 else 1.0)


def shift_scores(reference: np.ndarray, pool: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Out-of-fold probability, per pool text, that a logistic domain classifier calls it production."""
    from sklearn.model_selection import StratifiedKFold

    from calibgate.signals.probes import fit_proba, logistic

    X = np.vstack([_unit(reference), _unit(pool)])
    y = np.r_[np.zeros(len(reference), dtype=int), np.ones(len(pool), dtype=int)]
    folds = int(min(SHIFT_FOLDS, len(reference), len(pool)))
    if folds < 2:
        return np.full(len(pool), 0.5)
    scores = np.zeros(len(y))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        scores[test] = fit_proba(logistic(1.0), X[train], y[train], X[test], 2)[:, 1]
    return scores[len(reference) :]


# -- private ------------------------------------------------------------------------------------


def _select(texts, x, budget, pred_probs, label_names, reference, seed) -> list[Suggestion]:
    n = len(texts)
    uncertainty = margin_uncertainty(pred_probs) if pred_probs is not None else None
    entropy = normalized_entropy(pred_probs) if pred_probs is not None else None
    shift = shift_scores(reference, x, seed=seed) if reference is not None and len(reference) >= 2 else None
    parts = [p for p in (uncertainty, shift) if p is not None]
    priority = np.mean(parts, axis=0) if parts else np.ones(n)
    priority = 0.05 + 0.95 * priority  # a sure, in-domain text can still be picked for coverage, just last
    rng = np.random.default_rng(seed)
    jitter = rng.random(n) * 1e-9  # deterministic tie-break
    distance = np.full(n, 1.0)  # cosine distance to the nearest pick; 1 before any pick
    chosen: list[int] = []
    picked_distance: list[float] = []
    copies = _copies(texts)  # a text is asked for once, however often production repeats it
    available = np.ones(n, dtype=bool)
    for _ in range(min(budget, len(set(copies)))):
        gain = np.where(available, priority * distance + jitter, -np.inf)
        i = int(np.argmax(gain))
        chosen.append(i)
        picked_distance.append(float(distance[i]))
        available[copies == copies[i]] = False
        distance = np.minimum(distance, np.clip(1.0 - x @ x[i], 0.0, 2.0))
    out = []
    for rank, (i, dist) in enumerate(zip(chosen, picked_distance), start=1):
        predicted = confidence = None
        if pred_probs is not None:
            best = int(np.argmax(pred_probs[i]))
            predicted = label_names[best] if label_names is not None else str(best)
            confidence = float(pred_probs[i, best])
        out.append(
            Suggestion(
                index=i, text=texts[i], rank=rank, predicted=predicted, confidence=confidence,
                uncertainty=None if uncertainty is None else float(uncertainty[i]),
                entropy=None if entropy is None else float(entropy[i]),
                shift_score=None if shift is None else float(shift[i]), distance=dist,
                reason=_reason(i, pred_probs, label_names, uncertainty, shift, dist),
            )
        )
    return out


def _reason(i, pred_probs, label_names, uncertainty, shift, distance) -> str:
    why = []
    if uncertainty is not None:
        order = np.argsort(-pred_probs[i])
        names = [label_names[j] if label_names is not None else str(j) for j in order[:2]]
        if len(names) > 1:
            gap = pred_probs[i, order[0]] - pred_probs[i, order[1]]
            level = "uncertain" if uncertainty[i] >= 0.5 else "fairly sure"
            why.append(f"{level}: {names[0]} vs {names[1]}, margin {gap:.2f}")
    if shift is not None:
        level = "unlike the training data" if shift[i] >= 0.5 else "like the training data"
        why.append(f"{level} (domain score {shift[i]:.2f})")
    why.append("far from the other picks" if distance >= 0.5 else f"cosine distance {distance:.2f} to the nearest pick")
    return "; ".join(why)


def _copies(texts: list[str]) -> np.ndarray:
    """A group id per text: texts equal after Unicode normalisation, case folding and whitespace collapsing share one."""
    import unicodedata

    groups: dict[str, int] = {}
    keys = [" ".join(unicodedata.normalize("NFKC", text).casefold().split()) for text in texts]
    return np.array([groups.setdefault(key, len(groups)) for key in keys], dtype=int)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
