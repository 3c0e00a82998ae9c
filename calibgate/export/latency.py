"""Latency and throughput on real texts: p50/p95/p99 at batch 1, texts per second at batch 32.

Inputs are tokenized before timing, so the figures are model time only
(tokenisation with ``tokenizers`` adds tens of microseconds per text). Each
measurement warms up first (allocations, kernel selection), then times one
call per text, cycling through the texts so the sequence lengths are the
real ones. Threads are fixed and recorded. Torch eager is timed the same way
on the same inputs, for comparison.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from calibgate.records.export import Latency

Batch = tuple[np.ndarray, np.ndarray]


def measure(
    run: Callable[[np.ndarray, np.ndarray], object],
    singles: Sequence[Batch],
    batches32: Sequence[Batch],
    *,
    runs: int,
    threads: int,
    warmup: int = 10,
) -> Latency:
    """Time ``run(input_ids, attention_mask)`` on pre-tokenized inputs."""
    for i in range(warmup):
        run(*singles[i % len(singles)])
    timings = np.empty(runs)
    for i in range(runs):
        ids, mask = singles[i % len(singles)]
        start = time.perf_counter()
        run(ids, mask)
        timings[i] = time.perf_counter() - start
    run(*batches32[0])  # warm the batch-32 shapes
    start = time.perf_counter()
    n = 0
    for ids, mask in batches32:
        run(ids, mask)
        n += ids.shape[0]
    throughput = n / (time.perf_counter() - start)
    p50, p95, p99 = np.percentile(timings * 1000.0, [50, 95, 99])
    lengths = [int(mask.sum()) for _, mask in singles]
    return Latency(
        p50_ms=round(float(p50), 3),
        p95_ms=round(float(p95), 3),
        p99_ms=round(float(p99), 3),
        batch1_runs=runs,
        throughput_batch32=round(throughput, 1),
        sequence_length=round(float(np.mean(lengths)), 1),
        threads=threads,
        warmup_runs=warmup,
        includes_tokenization=False,
    )


def timing_inputs(tokenizer, texts: Sequence[str], *, n_batches: int = 8) -> tuple[list[Batch], list[Batch]]:
    """Batch-1 inputs per text and up to ``n_batches`` batch-32 inputs in the texts' own order."""
    rows = tokenizer.encode(texts)
    singles = [tokenizer.pad([row]) for row in rows]
    batches = [tokenizer.pad(rows[i : i + 32]) for i in range(0, len(rows), 32)][:n_batches]
    return singles, batches


def measure_onnx(session, tokenizer, texts: Sequence[str], *, runs: int, threads: int) -> Latency:
    singles, batches = timing_inputs(tokenizer, texts)

    def run(ids, mask):
        return session.run(["logits"], {"input_ids": ids, "attention_mask": mask})

    return measure(run, singles, batches, runs=runs, threads=threads)


def measure_torch(classifier, tokenizer, texts: Sequence[str], *, runs: int, threads: int) -> Latency:
    """Torch eager (``inference_mode``) on the same inputs; sets torch's intra-op threads to ``threads``."""
    import torch

    torch.set_num_threads(threads)
    singles, batches = timing_inputs(tokenizer, texts)

    def run(ids, mask):
        with torch.inference_mode():
            return classifier(torch.from_numpy(ids), torch.from_numpy(mask))

    return measure(run, singles, batches, runs=runs, threads=threads)
