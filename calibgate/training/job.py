"""One training job: the data split, the base encoder and the options, shared by every strategy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calibgate.data.jsonl import LabeledSet
from calibgate.embeddings.encoder import ModelInfo, embed_texts
from calibgate.training.frozen import ProbeFit, fit_probe, normalize_rows
from calibgate.training.options import FitOptions


@dataclass
class FitJob:
    train: LabeledSet  # rows the weights are fitted on
    validation: LabeledSet | None  # held-out rows for early stopping (None: no early stopping)
    info: ModelInfo
    options: FitOptions
    _embeddings: dict = field(default_factory=dict, repr=False)
    _probe: ProbeFit | None = field(default=None, repr=False)

    @property
    def max_length(self) -> int:
        return min(self.options.max_length or self.info.max_length, self.info.max_length)

    def frozen(self, which: str = "train") -> np.ndarray:
        """Normalised frozen embeddings of the train or validation texts (disk-cached)."""
        if which not in self._embeddings:
            data = self.train if which == "train" else self.validation
            vectors = embed_texts(data.texts, model=self.info, progress=self.options.progress).vectors
            self._embeddings[which] = normalize_rows(vectors)
        return self._embeddings[which]

    def probe(self) -> ProbeFit:
        """The frozen-embedding probe on the training rows: a strategy, the LP-FT head init and the evaluation baseline."""
        if self._probe is None:
            self._probe = fit_probe(self.frozen("train"), self.train.labels, self.train.n_classes, seed=self.options.seed)
        return self._probe


def split_validation(data: LabeledSet, fraction: float, seed: int) -> tuple[LabeledSet, LabeledSet | None]:
    """Stratified hold-out of ``fraction`` of the rows (at least one per class when it can be)."""
    if fraction <= 0 or len(data) < 10:
        return data, None
    from sklearn.model_selection import train_test_split

    index = np.arange(len(data))
    n_val = max(int(round(fraction * len(data))), 1)
    counts = np.bincount(data.labels)
    stratify = data.labels if counts[counts > 0].min() >= 2 and n_val >= len(counts[counts > 0]) else None
    train_idx, val_idx = train_test_split(index, test_size=n_val, random_state=seed, stratify=stratify)
    return data.subset(np.sort(train_idx)), data.subset(np.sort(val_idx))
