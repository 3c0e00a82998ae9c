"""Signals on real data with the real MiniLM: planted label noise and shift are recovered."""

from __future__ import annotations

import numpy as np
import pytest

from calibgate.data.jsonl import from_records
from calibgate.embeddings import embed_texts
from calibgate.signals.base import SignalContext, compute_signals
from tests.conftest import read_jsonl
from tests.synthetic import flip_labels

pytestmark = pytest.mark.slow


def _sample(path, n, seed):
    rows = read_jsonl(path)
    rng = np.random.default_rng(seed)
    return [rows[i] for i in rng.choice(len(rows), n, replace=False)]


def _context(rows, **kwargs):
    data = from_records([r["text"] for r in rows], [r["label"] for r in rows])
    emb = embed_texts(data.texts)
    return SignalContext(emb.vectors, data.labels, data.label_names, data.texts, **kwargs), data


def test_planted_label_noise_on_sms_spam(shared_datasets):
    rows = _sample(shared_datasets / "sms_spam" / "train.jsonl", 400, seed=0)
    ctx, data = _context(rows)
    clean = compute_signals(ctx, names=("label_noise",))["label_noise"]
    noisy_labels, flipped = flip_labels(data.labels, 0.10, 2, seed=0)
    noisy_ctx = SignalContext(ctx.embeddings, noisy_labels, data.label_names, data.texts)
    noisy = compute_signals(noisy_ctx, names=("label_noise",))["label_noise"]
    assert clean.estimated_rate <= 0.02
    assert abs(noisy.estimated_rate - 0.10) <= 0.045, noisy.estimated_rate
    suspects = [s.index for s in noisy.suspects]
    assert flipped[suspects].mean() >= 0.8


def test_shifted_production_sample(shared_datasets):
    cal_rows = _sample(shared_datasets / "banking77" / "train.jsonl", 200, seed=1)
    ctx, _ = _context(cal_rows)
    same = embed_texts([r["text"] for r in _sample(shared_datasets / "banking77" / "test.jsonl", 100, seed=2)]).vectors
    other = embed_texts([r["text"] for r in _sample(shared_datasets / "sms_spam" / "test.jsonl", 100, seed=2)]).vectors
    calm = compute_signals(SignalContext(ctx.embeddings, ctx.labels, ctx.label_names, ctx.texts, production_embeddings=same), names=("domain_shift",))["domain_shift"]
    alarm = compute_signals(SignalContext(ctx.embeddings, ctx.labels, ctx.label_names, ctx.texts, production_embeddings=other), names=("domain_shift",))["domain_shift"]
    assert alarm.auc > 0.95 and alarm.status == "alert"
    assert calm.auc < 0.7 and calm.status != "alert"
