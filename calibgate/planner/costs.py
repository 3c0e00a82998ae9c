"""Cost model: training seconds per candidate for a model size and hardware class.

Throughputs are per example and epoch, measured on the reference setup (a
22.7M-parameter MiniLM, 2 CPU cores, sequences of ~32 tokens with dynamic
padding): embedding ~200/s, LoRA ~40/s, full fine-tuning ~25/s. They scale
linearly with parameter count and token length (transformer FLOPs per token
~ 6N for training, 2N for inference; Kaplan et al. 2020) and by a speed-up
per hardware class. This lets the same plan judge a billion-parameter model,
where full fine-tuning is dear.
"""

from __future__ import annotations

from dataclasses import dataclass

REFERENCE_PARAMS = 22.7e6
REFERENCE_TOKENS = 32.0
HARDWARE_SPEEDUP = {"cpu": 1.0, "gpu": 40.0}
EMBED_PER_S = 200.0
LORA_PER_S = 40.0
FULL_PER_S = 25.0
EPOCHS = 4  # typical with early stopping on validation loss


@dataclass(frozen=True)
class CostModel:
    params: float = REFERENCE_PARAMS
    mean_tokens: float = REFERENCE_TOKENS
    hardware: str = "cpu"

    @property
    def scale(self) -> float:
        return (self.params / REFERENCE_PARAMS) * (max(self.mean_tokens, 4.0) / REFERENCE_TOKENS) / HARDWARE_SPEEDUP.get(
            self.hardware, 1.0
        )

    def embed_seconds(self, n: int) -> float:
        return n / EMBED_PER_S * self.scale

    def train_seconds(self, strategy: str, n: int, *, lora_rank: int | None = None, n_classes: int = 2) -> float:
        """Estimated wall seconds to train ``strategy`` on ``n`` examples (including embedding them)."""
        embed = self.embed_seconds(n)
        if strategy == "embedding-probe":
            return embed + 0.002 * n * max(1.0, n_classes / 10) + 1.0
        if strategy == "retrieval":
            return embed + 0.5
        if strategy == "lora":
            rank_factor = 1.0 + (lora_rank or 8) / 256
            return embed + EPOCHS * n / LORA_PER_S * self.scale * rank_factor
        if strategy == "full-finetune":
            return embed + EPOCHS * n / FULL_PER_S * self.scale
        return 0.0


def latency_class(strategy: str) -> str:
    return {
        "embedding-probe": "encoder",
        "retrieval": "encoder+index",
        "lora": "encoder",
        "full-finetune": "encoder",
    }.get(strategy, "none")
