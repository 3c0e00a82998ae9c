"""Cost model: training seconds per candidate for a model size and hardware class.

When the plan measured the fine-tuning signal, the throughputs are the ones
measured there, on this machine, with this model and these texts: a timed
full-model training step and the timed forward pass that cached the hidden
states (``CostModel.calibrated``). Otherwise they are the reference setup's
(a 22.7M-parameter MiniLM, 2 CPU cores, sequences of ~32 tokens with dynamic
padding: embedding ~200/s, full fine-tuning ~25/s), scaled linearly with
parameter count and token length (transformer FLOPs per token ~ 6N for
training, 2N for inference; Kaplan et al. 2020) and by a speed-up per
hardware class. What each strategy consumes (embedding passes, a head fit,
epochs of tuning steps) is its cost function in the strategy catalogue,
:mod:`calibgate.records.strategies`; this module only prices the units.
"""

from __future__ import annotations

from dataclasses import dataclass

from calibgate.records.strategies import STRATEGIES

REFERENCE_PARAMS = 22.7e6
REFERENCE_TOKENS = 32.0
HARDWARE_SPEEDUP = {"cpu": 1.0, "gpu": 40.0}
EMBED_PER_S = 200.0
FULL_PER_S = 25.0


@dataclass(frozen=True)
class CostModel:
    params: float = REFERENCE_PARAMS
    mean_tokens: float = REFERENCE_TOKENS
    hardware: str = "cpu"
    full_per_s: float | None = None  # measured on this machine (None: reference throughput, scaled)
    embed_per_s: float | None = None

    def calibrated(self, *, full_per_s: float | None, embed_per_s: float) -> "CostModel":
        """The same model with throughputs measured on this machine (``full_per_s`` None: training not timed, its
        reference throughput stays)."""
        return CostModel(self.params, self.mean_tokens, self.hardware, full_per_s=full_per_s, embed_per_s=embed_per_s)

    @property
    def measured(self) -> bool:
        return self.full_per_s is not None

    @property
    def scale(self) -> float:
        return (self.params / REFERENCE_PARAMS) * (max(self.mean_tokens, 4.0) / REFERENCE_TOKENS) / HARDWARE_SPEEDUP.get(
            self.hardware, 1.0
        )

    def embed_seconds(self, n: int) -> float:
        return n / self.embed_per_s if self.embed_per_s else n / EMBED_PER_S * self.scale

    def tune_seconds_per_example(self) -> float:
        """Seconds of one full-model training step per example."""
        return 1.0 / self.full_per_s if self.full_per_s else self.scale / FULL_PER_S

    def train_seconds(self, strategy: str, n: int, *, lora_rank: int | None = None, n_classes: int = 2) -> float:
        """Estimated wall seconds to train ``strategy`` on ``n`` examples (including embedding them); 0 for a
        name outside the catalogue (a data action trains nothing)."""
        entry = STRATEGIES.get(strategy)
        return entry.cost(self, n, lora_rank, n_classes) if entry else 0.0


def latency_class(strategy: str) -> str:
    entry = STRATEGIES.get(strategy)
    return entry.latency_class if entry else "none"
