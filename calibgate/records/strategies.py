"""The strategy catalogue: one record per way of adapting an encoder, read by every package that names one.

The planner (order, cost, display key), training (whether the encoder is
tuned, which trainer class), runs (the manifest's strategy field), evaluation
(which encoder the base model is) and the report (the key a plan records)
all read this table instead of keeping their own lists. Adding a strategy is
one entry here plus its trainer class.

A cost function maps a :class:`CostTerms` (throughputs the planner's cost
model measured or scaled) to training seconds; it says only what the
strategy consumes: embedding passes, a head fit, epochs of tuning steps.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Literal, Protocol

from calibgate.errors import ConfigError

EPOCHS = 4  # tuning epochs the cost model assumes: typical with early stopping on validation loss
LORA_COST = 0.95  # LoRA seconds per example / full fine-tuning's: the full forward and backward still run (measured 0.9-1.1x on CPU)


class CostTerms(Protocol):
    """What a cost function may ask of the planner's cost model."""

    def embed_seconds(self, n: int) -> float: ...

    def tune_seconds_per_example(self) -> float: ...


@dataclass(frozen=True)
class StrategySpec:
    name: str
    order: int = 0  # simpler first; breaks ties between equally priced candidates
    tunes_encoder: bool = False
    ranked: bool = False  # takes a LoRA rank, shown in its key as ``name/r<rank>``
    latency_class: str = "encoder"
    library: str = "calibgate"  # the model card's library_name
    trainer: str = ""  # "module:Class" the training registry imports on first use
    cost: Callable[[CostTerms, int, int | None, int], float] = lambda terms, n, rank, n_classes: 0.0
    summary: str = ""

    def key(self, lora_rank: int | None = None) -> str:
        return f"{self.name}/r{lora_rank}" if self.ranked and lora_rank else self.name


def _probe_cost(terms: CostTerms, n: int, rank: int | None, n_classes: int) -> float:
    return terms.embed_seconds(n) + 0.002 * n * max(1.0, n_classes / 10) + 1.0


def _retrieval_cost(terms: CostTerms, n: int, rank: int | None, n_classes: int) -> float:
    return terms.embed_seconds(n) + 0.5


def _lora_cost(terms: CostTerms, n: int, rank: int | None, n_classes: int) -> float:
    rank_factor = 1.0 + (rank or 8) / 256
    return terms.embed_seconds(n) + EPOCHS * n * terms.tune_seconds_per_example() * LORA_COST * rank_factor


def _full_cost(terms: CostTerms, n: int, rank: int | None, n_classes: int) -> float:
    return terms.embed_seconds(n) + EPOCHS * n * terms.tune_seconds_per_example()


STRATEGIES: dict[str, StrategySpec] = {
    s.name: s
    for s in (
        StrategySpec(
            "embedding-probe", order=0, latency_class="encoder", trainer="calibgate.training.strategies:EmbeddingProbe",
            cost=_probe_cost, summary="frozen encoder, logistic-regression head",
        ),
        StrategySpec(
            "retrieval", order=1, latency_class="encoder+index", trainer="calibgate.training.strategies:Retrieval",
            cost=_retrieval_cost, summary="frozen encoder, kNN vote over the labeled examples",
        ),
        StrategySpec(
            "lora", order=2, tunes_encoder=True, ranked=True, library="peft", trainer="calibgate.training.strategies:LoRA",
            cost=_lora_cost, summary="low-rank adapters on the encoder, merged, with a trained head",
        ),
        StrategySpec(
            "full-finetune", order=3, tunes_encoder=True, library="transformers",
            trainer="calibgate.training.strategies:FullFinetune", cost=_full_cost,
            summary="every encoder weight tuned, with a trained head",
        ),
    )
}
TRAINABLE: tuple[str, ...] = tuple(STRATEGIES)
# what a plan may recommend before training: advice about the calibration data, not a trainer
DATA_ACTIONS: tuple[str, ...] = ("collect-more-labels", "fix-labels")

TrainableName = Literal["embedding-probe", "retrieval", "lora", "full-finetune"]
StrategyName = Literal["embedding-probe", "retrieval", "lora", "full-finetune", "collect-more-labels", "fix-labels"]
assert TrainableName.__args__ == TRAINABLE and StrategyName.__args__ == TRAINABLE + DATA_ACTIONS  # one list, two views


def spec(name: str) -> StrategySpec:
    """The catalogue entry of ``name``; :class:`ConfigError` with the closest name for anything else."""
    found = STRATEGIES.get(name)
    if found is None:
        close = difflib.get_close_matches(str(name), TRAINABLE, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"unknown strategy {name!r}", fix=f"{hint}use one of {', '.join(TRAINABLE)}")
    return found


def candidate_key(strategy: str, lora_rank: int | None) -> str:
    """The key a plan records a candidate by (``lora/r8``, ``full-finetune``); the report and benchmarks match on it."""
    known = STRATEGIES.get(strategy)
    return known.key(lora_rank) if known else (f"{strategy}/r{lora_rank}" if lora_rank else strategy)


def tunes_encoder(strategy: str) -> bool:
    known = STRATEGIES.get(strategy)
    return bool(known and known.tunes_encoder)
