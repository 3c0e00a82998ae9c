"""The strategy registry: one small class per adaptation, registered by name.

The CLI, plan files and :func:`calibgate.training.fit` refer to strategies by
``name`` (peft's ``register_peft_method`` pattern). Trainer classes live in
:mod:`calibgate.training.strategies`, imported on first lookup.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, ClassVar

from calibgate.training.options import check_strategy

if TYPE_CHECKING:
    from calibgate.training.job import FitJob
    from calibgate.training.model import TrainedModel

_REGISTRY: dict[str, type["Strategy"]] = {}


class Strategy:
    """A way to turn a base encoder and labeled texts into a :class:`TrainedModel`."""

    name: ClassVar[str]
    tunes_encoder: ClassVar[bool] = False

    def fit(self, job: "FitJob") -> "TrainedModel":  # pragma: no cover - interface
        raise NotImplementedError


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    _REGISTRY[cls.name] = cls
    return cls


def get_strategy(name: str) -> Strategy:
    check_strategy(name)
    if name not in _REGISTRY:
        importlib.import_module("calibgate.training.strategies")
    return _REGISTRY[name]()


def registered() -> dict[str, type[Strategy]]:
    importlib.import_module("calibgate.training.strategies")
    return dict(_REGISTRY)


__all__: list[str] = ["Strategy", "register_strategy", "get_strategy", "registered"]
