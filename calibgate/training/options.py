"""Training options, validated once at the public entry (no torch here).

Every check raises :class:`~calibgate.errors.ConfigError` (exit code 2) with
the bad value and the fix, before any model or data is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from calibgate.errors import ConfigError
from calibgate.records.strategies import spec, tunes_encoder
from calibgate.records.thresholds import MAX_LORA_RANK
DEFAULT_LORA_RANK = 8

# plan modifiers the trainers honour; aliases map to the canonical name
MODIFIERS = {
    "class-weighted-loss": "class-weighted-loss",
    "class-weights": "class-weighted-loss",
    "resample": "resample",
    "oversample": "resample",
    "early-stopping": "early-stopping",
    "early-stop": "early-stopping",
}


@dataclass(frozen=True)
class FitOptions:
    """Knobs of one training job; defaults are the recipe measured in benchmarks/RESULTS-training.md."""

    strategy: str
    lora_rank: int | None = None
    epochs: int = 5
    batch_size: int | None = None  # None: memory-aware default
    encoder_lr: float | None = None  # None: 5e-4 for LoRA, 5e-5 for full fine-tuning
    head_lr: float = 1e-3
    patience: int = 2
    validation_fraction: float = 0.1
    max_length: int | None = None
    modifiers: tuple[str, ...] = ()
    seed: int = 0
    device: str | None = None
    progress: bool = False

    @property
    def tunes_encoder(self) -> bool:
        return tunes_encoder(self.strategy)

    def resolved_encoder_lr(self) -> float:
        if self.encoder_lr is not None:
            return self.encoder_lr
        return 5e-4 if self.strategy == "lora" else 5e-5


def check_strategy(strategy: str) -> str:
    return spec(strategy).name


def normalize_modifiers(modifiers) -> tuple[str, ...]:
    """Canonical modifier names, in order, without duplicates; unknown names are an error."""
    out: list[str] = []
    for raw in modifiers or ():
        name = MODIFIERS.get(str(raw).strip().lower())
        if name is None:
            raise ConfigError(
                f"unknown training modifier {raw!r}", fix=f"use one of {', '.join(sorted(set(MODIFIERS.values())))}"
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def make_options(
    *,
    strategy: str,
    lora_rank: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    modifiers=(),
    seed: int = 0,
    validation_fraction: float = 0.1,
    **kwargs,
) -> FitOptions:
    """Validate user-facing options into :class:`FitOptions`."""
    check_strategy(strategy)
    if lora_rank is not None and (isinstance(lora_rank, bool) or not isinstance(lora_rank, int) or not 1 <= lora_rank <= MAX_LORA_RANK):
        raise ConfigError(f"LoRA rank must be an integer from 1 to {MAX_LORA_RANK}, got {lora_rank!r}",
                          fix="pass --lora-rank 4, 8, 16 or 32")
    if lora_rank is not None and strategy != "lora":
        raise ConfigError(f"--lora-rank {lora_rank} given for strategy {strategy!r}", fix="drop --lora-rank or use --strategy lora")
    if epochs is not None and (not isinstance(epochs, int) or epochs <= 0):
        raise ConfigError(f"epochs must be a positive integer, got {epochs!r}", fix="pass --epochs 1 or more")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
        raise ConfigError(f"batch size must be a positive integer, got {batch_size!r}", fix="pass --batch-size 16")
    if not 0.0 <= validation_fraction < 0.9:
        raise ConfigError(f"validation fraction must be in [0, 0.9), got {validation_fraction!r}", fix="use 0.1")
    return FitOptions(
        strategy=strategy,
        lora_rank=(lora_rank or DEFAULT_LORA_RANK) if strategy == "lora" else None,
        epochs=epochs or 5,
        batch_size=batch_size,
        modifiers=normalize_modifiers(modifiers),
        seed=int(seed),
        validation_fraction=validation_fraction,
        **kwargs,
    )
