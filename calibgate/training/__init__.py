"""Training: every strategy the planner recommends, behind one function.

Library entry point (no run directory; what the regret benchmark calls)::

    from calibgate.training import fit
    trained = fit(
        train,                      # calibgate.data.LabeledSet
        strategy="lora",            # "embedding-probe" | "retrieval" | "lora" | "full-finetune"
        lora_rank=8,                # lora only; default 8
        model=None,                 # None: bundled all-MiniLM-L6-v2, or a local HF model directory
        modifiers=(),               # "class-weighted-loss", "resample", "early-stopping"
        seed=0,                     # deterministic on CPU given the seed
        validation=None,            # early-stopping slice; default: 10% of train held out (stratified)
        validation_fraction=0.1,    # 0 disables early stopping
        epochs=None,                # default 5 (best validation-loss checkpoint restored)
        batch_size=None,            # default 16 on CPU, memory-aware on CUDA
        progress=False,             # tqdm bar on stderr (only on a tty)
    )
    trained.predict_proba(texts)   # np.ndarray (n, len(trained.label_names)), label_names order
    trained.predict(texts)         # list of label strings, always training labels
    trained.train_seconds          # wall seconds, probe fit included
    trained.curves                 # per-epoch train/validation loss and accuracy
    trained.save("runs/x", data=..., plan=..., git_commit=...)   # atomic run directory

Command entry point: :func:`calibgate.training.api.train` (``calibgate train``, through
:func:`calibgate.api.train`, which passes it the planner).
Strategies are classes registered by name in :mod:`calibgate.training.registry`.
"""

from __future__ import annotations

import importlib
from typing import Any

from calibgate.records.strategies import TRAINABLE as STRATEGIES

_LAZY = {
    "fit": "calibgate.training.fitting:fit",
    "TrainedModel": "calibgate.training.model:TrainedModel",
    "train": "calibgate.training.api:train",
}

__all__ = ["STRATEGIES", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'calibgate.training' has no attribute {name!r}")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
