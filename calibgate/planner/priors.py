"""The planner's priors about fine-tuning, fitted on trained candidates and shipped as ``priors.json``.

Two numbers the calibration set cannot measure well at a few hundred rows:

* ``share``: the share of the frozen probe's remaining error that full
  fine-tuning recovers at the target size, with its spread across tasks
  (``share_sd``); the measured fine-tuning signal can only raise it
  (:mod:`calibgate.planner.gain`);
* ``lora_ratio``: LoRA's gain over the probe as a multiple of full
  fine-tuning's, per rank, with ``calibgate train``'s recipes (LoRA at a ten
  times higher learning rate can beat full fine-tuning).

:func:`fit_priors` fits them from the regret benchmark's trained candidates
(test accuracy of each candidate per data set): the median share, a robust
spread (1.4826 x MAD, floored), and per rank the median ratio over data sets
where full fine-tuning gained at least a point. The benchmark reports plans
made with priors fitted on the other data sets only (leave one data set out)
and writes the fit on all of them here: ``calibgate bench regret ...
--write-priors calibgate/planner/priors.json``. Without the file the
hand-set defaults below apply.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

PRIORS_FILE = Path(__file__).with_name("priors.json")
MIN_SHARE_SD = 0.1
MIN_GAIN_FOR_RATIO = 0.01  # a LoRA/full ratio is read only where full fine-tuning gained at least a point
RATIO_RANGE = (0.5, 1.5)


@dataclass(frozen=True)
class Priors:
    share: float = 0.25
    share_sd: float = 0.15
    lora_ratio: dict[int, float] = field(default_factory=lambda: {8: 0.8, 16: 8 / 9})  # hand-set: r / (r + 2)
    fitted_on: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return f"fitted on {len(self.fitted_on)} data sets ({', '.join(self.fitted_on)})" if self.fitted_on else "hand-set defaults"

    def lora_share(self, rank: int) -> float:
        """LoRA's gain as a multiple of full fine-tuning's at ``rank``: linear in log2(rank) between fitted ranks, flat
        beyond them."""
        ranks = sorted(self.lora_ratio)
        if not ranks:
            return 1.0
        x = [math.log2(r) for r in ranks]
        return float(np.interp(math.log2(max(rank, 1)), x, [self.lora_ratio[r] for r in ranks]))

    def to_json(self) -> str:
        record = asdict(self)
        record["lora_ratio"] = {str(k): v for k, v in self.lora_ratio.items()}
        record["fitted_on"] = list(self.fitted_on)
        return json.dumps(record, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Priors":
        raw = json.loads(text)
        return cls(
            share=float(raw["share"]), share_sd=float(raw["share_sd"]),
            lora_ratio={int(k): float(v) for k, v in raw["lora_ratio"].items()}, fitted_on=tuple(raw.get("fitted_on", ())),
        )


@lru_cache(maxsize=1)
def load_priors() -> Priors:
    """The shipped priors (``priors.json`` beside this module), else the hand-set defaults."""
    return Priors.from_json(PRIORS_FILE.read_text(encoding="utf-8")) if PRIORS_FILE.exists() else Priors()


def fit_priors(results: dict[str, dict[str, float]]) -> Priors:
    """Priors from ``{data set: {candidate key: test accuracy}}`` (keys as the plan records them: ``embedding-probe``,
    ``full-finetune``, ``lora/r8``...); see the module docstring."""
    shares, ratios = [], {}
    for accuracies in results.values():
        probe, full = accuracies["embedding-probe"], accuracies["full-finetune"]
        shares.append((full - probe) / max(1.0 - probe, 1e-9))
        for key, accuracy in accuracies.items():
            if key.startswith("lora/r") and full - probe >= MIN_GAIN_FOR_RATIO:
                ratios.setdefault(int(key.split("/r")[1]), []).append((accuracy - probe) / (full - probe))
    shares = np.asarray(shares)
    spread = 1.4826 * float(np.median(np.abs(shares - np.median(shares)))) if len(shares) > 1 else Priors().share_sd
    default = Priors()
    return Priors(
        share=float(np.clip(np.median(shares), 0.0, 0.8)),
        share_sd=max(MIN_SHARE_SD, spread),
        lora_ratio={r: float(np.clip(np.median(v), *RATIO_RANGE)) for r, v in sorted(ratios.items())} or default.lora_ratio,
        fitted_on=tuple(sorted(results)),
    )
