"""Calibration signals: each a small registered class computing one record of the plan.

Signals read frozen embeddings and labels (no torch): see :mod:`calibgate.signals.base`.
"""

from calibgate.signals.base import SIGNALS, SignalContext, compute_signals, register_signal

__all__ = ["SIGNALS", "SignalContext", "compute_signals", "register_signal"]
