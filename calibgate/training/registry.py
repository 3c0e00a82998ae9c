"""The strategy registry: one small class per adaptation, registered by name.

The CLI, plan files and :func:`calibgate.training.fit` refer to strategies by
``name`` (peft's ``register_peft_method`` pattern). Each name is an entry of
the strategy catalogue (:mod:`calibgate.records.strategies`), whose
``trainer`` names the class; its module is imported on first lookup.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, ClassVar

from calibgate.records.strategies import STRATEGIES, spec

if TYPE_CHECKING:
    from calibgate.training.job import FitJob
    from calibgate.training.model import TrainedModel

_REGISTRY: dict[str, type["Strategy"]] = {}


class Strategy:
    """A way to turn a base encoder and labeled texts into a :class:`TrainedModel`."""

    name: ClassVar[str]

    def fit(self, job: "FitJob") -> "TrainedModel":  # pragma: no cover - interface
        raise NotImplementedError


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: the trainer of the catalogue entry ``cls.name``."""
    if cls.name not in STRATEGIES:
        raise TypeError(f"{cls.__name__}: strategy {cls.name!r} is not in calibgate.records.strategies")
    _REGISTRY[cls.name] = cls
    return cls


def get_strategy(name: str) -> Strategy:
    entry = spec(name)
    if name not in _REGISTRY:
        importlib.import_module(entry.trainer.split(":")[0])
    return _REGISTRY[name]()


def registered() -> dict[str, type[Strategy]]:
    for entry in STRATEGIES.values():
        importlib.import_module(entry.trainer.split(":")[0])
    return dict(_REGISTRY)


__all__: list[str] = ["Strategy", "register_strategy", "get_strategy", "registered"]
