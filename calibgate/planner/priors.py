"""The planner's priors about fine-tuning, fitted on trained candidates and shipped as ``priors.json``.

What the calibration set cannot measure well at a few hundred rows:

* ``shift``: how far full fine-tuning moves the probe's accuracy at the
  target size, as a shift of its log-odds, ``logit(full) - logit(probe)``,
  with its spread across tasks (``shift_sd``). A log-odds shift, not a share
  of the probe's error: the same tuning gains a few points where the probe
  is at 80%, a fraction of a point where it is at 98%, and less than a
  share model claims where most of the error is irreducible (five-way
  sentiment at 40%). On the eight shared data sets a constant share missed
  the gap by 2.1 points on average (6.8 on sst5), a constant shift by 1.5
  (fitted leave one data set out). The measured fine-tuning signal can
  only raise it (:mod:`calibgate.planner.gain`).
* ``lora_offset``: per rank, LoRA's test accuracy minus full fine-tuning's,
  with ``calibgate train``'s recipes (LoRA at a ten times higher learning
  rate often beats full fine-tuning). A mean difference, not a ratio of
  gains: a ratio is unstable where full fine-tuning gains little.

:func:`fit_priors` fits them from the regret benchmark's trained candidates
(test accuracy of each candidate per data set): means, because the plan
maximises expected accuracy, and the sample spread (floored). The benchmark
reports plans made with priors fitted on the other data sets only (leave one
data set out) and writes the fit on all of them here: ``calibgate bench
regret ... --write-priors calibgate/planner/priors.json``. Without the file
the hand-set defaults below apply.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

PRIORS_FILE = Path(__file__).with_name("priors.json")
MIN_SHIFT_SD = 0.1
MAX_SHIFT = 3.0  # log-odds: 50% -> 95%


def logit(p):
    p = np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


@dataclass(frozen=True)
class Priors:
    shift: float = 0.3
    shift_sd: float = 0.3
    lora_offset: dict[int, float] = field(default_factory=lambda: {8: 0.0, 16: 0.0})  # hand-set: LoRA matches full FT
    fitted_on: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return f"fitted on {len(self.fitted_on)} data sets ({', '.join(self.fitted_on)})" if self.fitted_on else "hand-set defaults"

    def offset(self, rank: int) -> float:
        """LoRA's accuracy minus full fine-tuning's at ``rank``: linear in log2(rank) between fitted ranks, flat
        beyond them."""
        ranks = sorted(self.lora_offset)
        if not ranks:
            return 0.0
        x = [math.log2(r) for r in ranks]
        return float(np.interp(math.log2(max(rank, 1)), x, [self.lora_offset[r] for r in ranks]))

    def to_json(self) -> str:
        record = asdict(self)
        record["lora_offset"] = {str(k): v for k, v in self.lora_offset.items()}
        record["fitted_on"] = list(self.fitted_on)
        return json.dumps(record, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Priors":
        raw = json.loads(text)
        return cls(
            shift=float(raw["shift"]), shift_sd=float(raw["shift_sd"]),
            lora_offset={int(k): float(v) for k, v in raw["lora_offset"].items()}, fitted_on=tuple(raw.get("fitted_on", ())),
        )


@lru_cache(maxsize=1)
def load_priors() -> Priors:
    """The shipped priors (``priors.json`` beside this module), else the hand-set defaults."""
    return Priors.from_json(PRIORS_FILE.read_text(encoding="utf-8")) if PRIORS_FILE.exists() else Priors()


def fit_priors(results: dict[str, dict[str, float]]) -> Priors:
    """Priors from ``{data set: {candidate key: test accuracy}}`` (keys as the plan records them: ``embedding-probe``,
    ``full-finetune``, ``lora/r8``...); see the module docstring."""
    shifts, offsets = [], {}
    for accuracies in results.values():
        probe, full = accuracies["embedding-probe"], accuracies["full-finetune"]
        shifts.append(float(logit(full) - logit(probe)))
        for key, accuracy in accuracies.items():
            if key.startswith("lora/r"):
                offsets.setdefault(int(key.split("/r")[1]), []).append(accuracy - full)
    shifts = np.asarray(shifts)
    default = Priors()
    return Priors(
        shift=float(np.clip(shifts.mean(), -MAX_SHIFT, MAX_SHIFT)),
        shift_sd=max(MIN_SHIFT_SD, float(shifts.std(ddof=1))) if len(shifts) > 1 else default.shift_sd,
        lora_offset={r: float(np.mean(v)) for r, v in sorted(offsets.items())} or default.lora_offset,
        fitted_on=tuple(sorted(results)),
    )
