"""``fit``: train one strategy in memory, no run directory (the library entry point)."""

from __future__ import annotations

import os
import random
from typing import Iterable

import numpy as np

from calibgate.data.jsonl import LabeledSet
from calibgate.errors import DataError
from calibgate.training.options import make_options


def fit(
    train: LabeledSet,
    *,
    strategy: str,
    lora_rank: int | None = None,
    model: str | os.PathLike | None = None,
    modifiers: Iterable[str] = (),
    seed: int = 0,
    validation: LabeledSet | None = None,
    validation_fraction: float = 0.1,
    epochs: int | None = None,
    batch_size: int | None = None,
    encoder_lr: float | None = None,
    head_lr: float = 1e-3,
    patience: int = 2,
    max_length: int | None = None,
    device: str | None = None,
    progress: bool = False,
):
    """Train ``strategy`` on ``train`` and return a :class:`~calibgate.training.model.TrainedModel`.

    ``validation`` is the early-stopping slice; without it ``validation_fraction``
    of ``train`` is held out (stratified; 0 disables early stopping). Deterministic
    given ``seed`` on CPU. Raises :class:`~calibgate.errors.ConfigError` for bad
    options before loading anything.
    """
    from calibgate.embeddings.encoder import resolve_model_dir
    from calibgate.training.job import FitJob, split_validation
    from calibgate.training.registry import get_strategy

    options = make_options(
        strategy=strategy, lora_rank=lora_rank, epochs=epochs, batch_size=batch_size, modifiers=modifiers, seed=seed,
        validation_fraction=validation_fraction, encoder_lr=encoder_lr, head_lr=head_lr, patience=patience,
        max_length=max_length, device=device, progress=progress,
    )
    trainer = get_strategy(options.strategy)
    if len(train) < 2 or len(np.unique(train.labels)) < 2:
        raise DataError(f"{train.source}: {len(train)} rows in {len(np.unique(train.labels))} class(es)", fix="train on at least two classes")
    if validation is not None and tuple(validation.label_names) != tuple(train.label_names):
        raise DataError("the validation set's label space differs from the training set's", fix="load it with label_names=train.label_names")
    info = resolve_model_dir(model)
    _seed_everything(options.seed)
    if validation is None and options.tunes_encoder:
        train, validation = split_validation(train, options.validation_fraction, options.seed)
    job = FitJob(train=train, validation=validation if options.tunes_encoder else None, info=info, options=options)
    return trainer.fit(job)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    import torch

    torch.manual_seed(seed)
