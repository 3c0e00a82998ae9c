"""Measured fine-tuning headroom for the planner: a cross-fitted probe on every layer's hidden states.

The planner's question is how much tuning the encoder adds over the frozen
probe on *this* task. A sentence embedding is one pooled view of the last
layer, shaped by the encoder's own pre-training objective (semantic
similarity, for MiniLM); what fine-tuning can add is, first of all, what the
encoder already computes but that view does not expose linearly. This
module measures exactly that: the hidden states of up to ``MAX_LAYERS``
blocks (evenly spaced, the last one included) are pooled the way the model
pools, L2-normalised per block and concatenated, and a logistic-regression
probe on them is cross-fitted on the same folds as the frozen probe, so
every calibration row gets two paired out-of-fold predictions.

Why this and not a short tuning run: both were measured on the eight shared
data sets at 100-500 calibration rows (benchmarks/RESULTS-regret.md). The
earlier signal here tuned the top two blocks for three epochs (LP-FT,
cross-fitted, 20-100 CPU s a plan); its out-of-fold gain averaged about zero
on sst2 and cr, where full fine-tuning adds 5-7 points. The hidden-state
probe reads +3 to +4 points there, +0-1 on sms_spam (true +0.8) and below
zero on banking77 (true -0.3), for one forward pass and a few logistic fits
(1-5 CPU s). It is not full fine-tuning's gain: it sees no re-organisation
of the encoder and is noisy at a few hundred rows, so the planner reads the
shift through a line fitted against trained candidates
(:mod:`calibgate.planner.gain`).

The same pass is timed (the embedding throughput), and a few full-model
training steps on median-length texts are timed too: the cost model
calibrates itself from both (:meth:`calibgate.planner.costs.CostModel.calibrated`).
The training steps are skipped, and the cost model keeps its reference
throughput for training, when they would cost more than
``THROUGHPUT_BUDGET_SECONDS`` (priced from the timed forward pass) or when a
copy of the model with its gradients and AdamW state would not fit in half
the free memory: a multi-billion-parameter decoder must not exhaust a CI
runner to price its own training.

Results are cached on disk beside the embeddings (:func:`cached_hidden_view`),
keyed by the texts, labels, model fingerprint, settings and this module's
source, and keep what the measurement cost when it ran.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from calibgate.embeddings.encoder import ModelInfo, load_encoder, pool

MAX_LAYERS = 6
BATCH_SIZE = 32
THROUGHPUT_BATCH = 16
THROUGHPUT_STEPS = 2
THROUGHPUT_BUDGET_SECONDS = 20.0
BACKWARD_COST = 6.0  # a training step priced in forward passes (forward, backward, AdamW; measured on MiniLM)
TRAIN_BYTES_PER_PARAM = 16  # fp32 weights, gradients and two AdamW moments


class HiddenViewUnavailable(RuntimeError):
    """The encoder does not return per-layer hidden states."""


@dataclass(frozen=True)
class HiddenView:
    """Paired out-of-fold probabilities of the hidden-state probe and the frozen probe, and what they cost."""

    labels: np.ndarray
    layer_proba: np.ndarray  # (n, K), out of fold
    probe_proba: np.ndarray  # (n, K), out of fold, same folds
    folds: int
    layers: np.ndarray  # block indices read (1 = the first block's output)
    n_layers: int  # blocks in the encoder
    C: float  # the hidden-state probe's inverse regularisation (chosen by out-of-fold log loss)
    seconds: float
    cpu_seconds: float
    full_step_examples_per_second: float | None  # a full-model training step, measured here (None: skipped, see above)
    embed_examples_per_second: float


def layer_indices(n_layers: int, most: int = MAX_LAYERS) -> list[int]:
    """Up to ``most`` block indices, evenly spaced over 1..n_layers, always ending at the last block."""
    if n_layers <= most:
        return list(range(1, n_layers + 1))
    return sorted({int(round(n_layers - i * (n_layers - 1) / (most - 1))) for i in range(most)})


def measure_hidden_view(
    texts, labels: np.ndarray, n_classes: int, *, info: ModelInfo, probe_proba: np.ndarray, folds: int, seed: int = 0
) -> HiddenView:
    """Cross-fit the hidden-state probe on ``folds`` folds (the frozen probe's ``probe_proba`` used the same ones)."""
    from calibgate.signals import probes

    started, cpu_started = time.perf_counter(), time.process_time()
    labels = np.asarray(labels)
    tokenizer, model = load_encoder(info)
    n_layers = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    if n_layers < 1:
        raise HiddenViewUnavailable(f"{info.name}'s config names no num_hidden_layers")
    layers = layer_indices(n_layers)
    features, embed_rate, ids = _pooled_layers(texts, info, tokenizer, model, n_layers, layers)
    x = features.reshape(len(texts), -1) / math.sqrt(len(layers))
    C = probes.select_C(x, labels, n_classes, seed=seed)
    layer_proba = probes.oof_proba(x, labels, n_classes, probes.logistic(C), folds=folds, seed=seed)
    full_rate = _full_step_rate(model, ids, tokenizer, info) if _can_time_training(model, embed_rate) else None
    return HiddenView(
        labels=labels, layer_proba=layer_proba, probe_proba=np.asarray(probe_proba), folds=folds,
        layers=np.asarray(layers), n_layers=n_layers, C=float(C),
        seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu_started,
        full_step_examples_per_second=full_rate, embed_examples_per_second=embed_rate,
    )


def cached_hidden_view(texts, labels, n_classes: int, *, info: ModelInfo, probe_proba: np.ndarray, folds: int,
                       seed: int = 0, cache: bool = True) -> HiddenView:
    """:func:`measure_hidden_view`, read from the disk cache when this exact measurement already ran; a damaged entry
    is measured again. Arrays are stored as npz and read without pickle."""
    measure = lambda: measure_hidden_view(texts, labels, n_classes, info=info, probe_proba=probe_proba, folds=folds, seed=seed)  # noqa: E731
    if not cache:
        return measure()
    from calibgate.embeddings.encoder import cache_dir, read_cached_arrays, write_cached_arrays

    key = hashlib.sha256(json.dumps(
        [list(texts), np.asarray(labels).tolist(), n_classes, info.fingerprint, folds, seed, MAX_LAYERS,
         hashlib.sha256(np.ascontiguousarray(probe_proba, dtype=np.float64).tobytes()).hexdigest(),
         hashlib.sha256(Path(__file__).read_bytes()).hexdigest()],
        ensure_ascii=False,
    ).encode("utf-8")).hexdigest()[:32]
    path = cache_dir() / "hidden-view" / info.fingerprint / f"{key}.npz"
    stored = read_cached_arrays(path, [f.name for f in fields(HiddenView)])
    if stored is not None:
        try:
            view = HiddenView(**{name: v if v.ndim else v.item() for name, v in stored.items()})
            rate = view.full_step_examples_per_second  # NaN on disk: not timed
            return replace(view, full_step_examples_per_second=None if np.isnan(rate) else rate)
        except (ValueError, TypeError):
            pass  # a damaged cache entry is measured again
    view = measure()
    write_cached_arrays(path, {name: np.asarray(np.nan if value is None else value) for name, value in asdict(view).items()})
    return view


def _pooled_layers(texts, info: ModelInfo, tokenizer, model, n_layers: int, layers: list[int]) -> tuple[np.ndarray, float, list[list[int]]]:
    """(n, len(layers), dim) L2-normalised pooled hidden states of the blocks ``layers`` (1 = the first block's output),
    texts per second, token ids."""
    import torch

    ids = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=info.max_length)["input_ids"]
    order = np.argsort([-len(r) for r in ids], kind="stable")
    out = np.zeros((len(texts), len(layers), model.config.hidden_size), dtype=np.float32)
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH_SIZE):
            index = order[start : start + BATCH_SIZE]
            batch = tokenizer([texts[i] for i in index], padding=True, truncation=True, max_length=info.max_length, return_tensors="pt")
            states = getattr(model(**batch, output_hidden_states=True), "hidden_states", None)
            if states is None or len(states) != n_layers + 1:
                raise HiddenViewUnavailable(f"{info.name} returned {0 if states is None else len(states)} hidden states, not {n_layers + 1}")
            pooled = torch.stack([pool(states[i], batch["attention_mask"], pooling=info.pooling, normalize=True) for i in layers], dim=1)
            out[index] = pooled.float().numpy()
    rate = len(texts) / max(time.perf_counter() - started, 1e-6)
    return out, rate, ids


def _can_time_training(model, embed_rate: float) -> bool:
    """Whether the timed training steps fit their time budget and half the free memory (see the module docstring)."""
    import os

    seconds = (THROUGHPUT_STEPS + 1) * BACKWARD_COST * THROUGHPUT_BATCH / max(embed_rate, 1e-6)
    params = sum(p.numel() for p in model.parameters())
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not a POSIX sysconf: trust the time estimate alone
        free = float("inf")
    return seconds <= THROUGHPUT_BUDGET_SECONDS and params * TRAIN_BYTES_PER_PARAM <= free / 2


def _full_step_rate(model, ids: list[list[int]], tokenizer, info: ModelInfo) -> float:
    """Examples per second of a full-model training step (forward, backward, AdamW) on this machine."""
    import torch

    from calibgate.training.predict import collate, pad_id

    work = copy.deepcopy(model)
    work.train()
    optimizer = torch.optim.AdamW(work.parameters(), lr=1e-6)
    rows = np.argsort([len(r) for r in ids], kind="stable")
    rows = rows[max(0, len(rows) // 2 - THROUGHPUT_BATCH // 2):][:THROUGHPUT_BATCH]  # median-length texts
    input_ids, mask = collate([ids[i] for i in rows], pad_id(tokenizer))
    seconds = 0.0
    for step in range(THROUGHPUT_STEPS + 1):
        begun = time.perf_counter()
        hidden = work(input_ids=input_ids, attention_mask=mask).last_hidden_state
        loss = pool(hidden, mask, pooling=info.pooling, normalize=True).pow(2).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step:  # the first step warms up allocators and kernels
            seconds += time.perf_counter() - begun
    del work
    return THROUGHPUT_STEPS * len(rows) / max(seconds, 1e-6)
