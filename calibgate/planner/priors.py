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
  (fitted leave one data set out). Used as it stands where the fine-tuning
  signal is not measured (``--fast``, models whose layers cannot be read);
  where it is, the calibrated reading below replaces it
  (:mod:`calibgate.planner.gain`).
* ``lora_offset``: per rank, LoRA's test accuracy minus full fine-tuning's,
  with ``calibgate train``'s recipes (LoRA at a ten times higher learning
  rate often beats full fine-tuning). A mean difference, not a ratio of
  gains: a ratio is unstable where full fine-tuning gains little.
* ``reading_*``: how the measured signal (the hidden-state probe's log-odds
  shift over the frozen probe, out of fold on the calibration set) maps to
  full fine-tuning's shift at the target size: ``reading_intercept +
  reading_slope x reading``, least squares over the benchmark's plans (each
  data set weighs the same), with the residual spread ``reading_sd``. The
  intercept is what tuning adds that the hidden states do not show; a slope
  under 1 is what a reading taken on a few hundred rows is worth (a noisy
  predictor's fitted slope shrinks toward zero). On the eight shared data
  sets the reading taken at face value (scaled x2, only ever raising the
  prior) predicted the probe-to-fine-tuning gap worse than the prior alone
  (mean error 2.5 against 2.3 points); the calibrated reading's figures are
  in benchmarks/RESULTS-regret.md.

:func:`fit_priors` fits them from the regret benchmark's trained candidates
(test accuracy of each candidate per data set) and its plans' readings:
means, because the plan maximises expected accuracy, the sample spread
(floored), and the reading's line. The benchmark
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
MAX_SLOPE = 2.0  # a reading worth more than twice itself is an artefact of a few data sets
MIN_READING_SETS = 3  # fewer data sets than this cannot separate a slope from their differences


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
    # hand-set: the reading counts half, on top of the prior shift
    reading_intercept: float = 0.3
    reading_slope: float = 0.5
    reading_sd: float = 0.3
    reading_fitted_on: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return f"fitted on {len(self.fitted_on)} data sets ({', '.join(self.fitted_on)})" if self.fitted_on else "hand-set defaults"

    @property
    def reading_source(self) -> str:
        fitted = self.reading_fitted_on
        return f"fitted on {len(fitted)} data sets' plans against their trained candidates" if fitted else "hand-set"

    def from_reading(self, reading):
        """Full fine-tuning's log-odds shift predicted from the measured reading (array-friendly), capped."""
        return np.clip(self.reading_intercept + self.reading_slope * np.asarray(reading, dtype=float), -MAX_SHIFT, MAX_SHIFT)

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
        record["reading_fitted_on"] = list(self.reading_fitted_on)
        return json.dumps(record, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Priors":
        raw = json.loads(text)
        default = cls()
        return cls(
            shift=float(raw["shift"]), shift_sd=float(raw["shift_sd"]),
            lora_offset={int(k): float(v) for k, v in raw["lora_offset"].items()}, fitted_on=tuple(raw.get("fitted_on", ())),
            reading_intercept=float(raw.get("reading_intercept", default.reading_intercept)),
            reading_slope=float(raw.get("reading_slope", default.reading_slope)),
            reading_sd=float(raw.get("reading_sd", default.reading_sd)),
            reading_fitted_on=tuple(raw.get("reading_fitted_on", ())),
        )


@lru_cache(maxsize=1)
def load_priors() -> Priors:
    """The shipped priors (``priors.json`` beside this module), else the hand-set defaults."""
    return Priors.from_json(PRIORS_FILE.read_text(encoding="utf-8")) if PRIORS_FILE.exists() else Priors()


def true_shift(accuracies: dict[str, float]) -> float:
    """Full fine-tuning's log-odds shift over the probe, from trained candidates' test accuracies."""
    return float(logit(accuracies["full-finetune"]) - logit(accuracies["embedding-probe"]))


def fit_priors(results: dict[str, dict[str, float]], readings: dict[str, list[float]] | None = None) -> Priors:
    """Priors from ``{data set: {candidate key: test accuracy}}`` (keys as the plan records them: ``embedding-probe``,
    ``full-finetune``, ``lora/r8``...) and ``{data set: [reading of each benchmark plan]}``; see the module
    docstring. Without readings on at least ``MIN_READING_SETS`` of those data sets the reading's calibration keeps
    its hand-set defaults."""
    shifts, offsets = [], {}
    for accuracies in results.values():
        shifts.append(true_shift(accuracies))
        full = accuracies["full-finetune"]
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
        **_fit_reading(results, readings or {}),
    )


def _fit_reading(results: dict[str, dict[str, float]], readings: dict[str, list[float]]) -> dict:
    """Weighted least squares of each data set's true shift on its plans' readings (each data set weighs 1), slope
    within [0, MAX_SLOPE]; the residual spread, floored, as the prediction's sd."""
    used = sorted(name for name in results if readings.get(name))
    if len(used) < MIN_READING_SETS:
        return {}
    x = np.concatenate([np.asarray(readings[name], dtype=float) for name in used])
    y = np.concatenate([np.full(len(readings[name]), true_shift(results[name])) for name in used])
    w = np.concatenate([np.full(len(readings[name]), 1.0 / len(readings[name])) for name in used])
    x_mean, y_mean = np.average(x, weights=w), np.average(y, weights=w)
    spread = np.average((x - x_mean) ** 2, weights=w)
    slope = float(np.clip(np.average((x - x_mean) * (y - y_mean), weights=w) / spread, 0.0, MAX_SLOPE)) if spread > 0 else 0.0
    intercept = float(y_mean - slope * x_mean)
    residual = y - (intercept + slope * x)
    dof = max(len(used) - 2, 1)  # data sets, not plans, are the independent units
    sd = float(np.sqrt(np.sum(w * residual**2) / dof))
    return {
        "reading_intercept": intercept, "reading_slope": slope, "reading_sd": max(MIN_SHIFT_SD, sd),
        "reading_fitted_on": tuple(used),
    }
