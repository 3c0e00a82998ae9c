"""Progress of long steps (embedding, training epochs, the ci stages) on stderr.

On a terminal a tqdm bar; anywhere else (a CI log, a pipe) plain lines:
one when a stage starts, then one every ``CALIBGATE_PROGRESS_SECONDS``
(default 15) with the count, rate and time left, and one when it ends, so an
eight-minute training shows it is alive. Nothing is printed unless the
caller asked for progress; stdout is never touched.
"""

from __future__ import annotations

import os
import sys
import time


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("CALIBGATE_PROGRESS_SECONDS", "15")))
    except ValueError:
        return 15.0


def line(message: str, *, enabled: bool = True) -> None:
    """One plain progress line on stderr (``calibgate: message``)."""
    if enabled:
        print(f"calibgate: {message}", file=sys.stderr, flush=True)


class PlainProgress:
    """tqdm's ``update`` / ``set_postfix`` / ``close`` as periodic plain lines."""

    def __init__(self, total: int, desc: str, unit: str):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self.postfix: dict = {}
        self.started = self.last = time.monotonic()
        line(f"{desc}: {total} {unit}s")

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= _interval() and self.n < self.total:
            self.last = now
            line(self._status(now))

    def set_postfix(self, **fields) -> None:
        self.postfix = fields

    def close(self) -> None:
        line(f"{self.desc}: done, {self.n}/{self.total} {self.unit}s in {time.monotonic() - self.started:.1f}s")

    def _status(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.n / elapsed
        left = (self.total - self.n) / rate if rate > 0 else float("nan")
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        share = self.n / self.total if self.total else 1.0
        return f"{self.desc}: {self.n}/{self.total} {self.unit}s ({share:.0%}), {rate:.1f} {self.unit}/s, about {left:.0f}s left{extra}"


def bar(total: int, desc: str, *, unit: str = "item", enabled: bool = True):
    """A progress reporter for ``total`` items, or None when not ``enabled``: tqdm on a terminal, plain lines otherwise."""
    if not enabled:
        return None
    if sys.stderr.isatty():
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return PlainProgress(total, desc, unit)
        return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
    return PlainProgress(total, desc, unit)
