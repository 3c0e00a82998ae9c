"""The measured fine-tuning signal: the hidden-state view on real (tiny) encoders and decoders, its cache, and the gain
estimate it feeds (exact cases in tests/planner/test_gain.py)."""

from __future__ import annotations

import numpy as np
import pytest

from calibgate.planner.gain import measured_gain, prior_gain, reading
from calibgate.planner.priors import Priors
from tests.conftest import demo_data_dir, pick, read_jsonl

PRIOR_SHIFT = Priors().shift  # the hand-set prior (hand_set_priors pins it)

pytestmark = pytest.mark.usefixtures("hand_set_priors")


@pytest.fixture(scope="module")
def demo_rows() -> list[dict]:
    rows = read_jsonl(demo_data_dir() / "train.jsonl")
    return pick(rows, sorted({r["label"] for r in rows})[:4], 20)


def _sets(demo_rows, n=60):
    rows = demo_rows[:n]
    names = sorted({r["label"] for r in rows})
    return [r["text"] for r in rows], np.array([names.index(r["label"]) for r in rows]), len(names)


def _probe_oof(vectors, labels, k, folds=3, seed=0):
    from calibgate.signals import probes

    return probes.oof_proba(vectors, labels, k, probes.logistic(10.0), folds=folds, seed=seed)


def test_layer_indices_are_evenly_spaced_and_end_at_the_last_block():
    from calibgate.training.hidden_view import layer_indices

    assert layer_indices(2) == [1, 2] and layer_indices(6) == [1, 2, 3, 4, 5, 6]
    picked = layer_indices(24)
    assert len(picked) == 6 and picked[-1] == 24 and picked == sorted(set(picked)) and picked[0] >= 1


@pytest.mark.parametrize("model_fixture", ["tiny_bert_dir", "tiny_llama_dir"])
def test_hidden_view_predicts_every_row_out_of_fold_on_the_probe_folds(model_fixture, request, demo_rows):
    from calibgate.embeddings.encoder import embed_texts, resolve_model_dir
    from calibgate.training.hidden_view import measure_hidden_view

    info = resolve_model_dir(str(request.getfixturevalue(model_fixture)))
    texts, labels, k = _sets(demo_rows)
    vectors = embed_texts(texts, model=info, cache=False).vectors
    probe = _probe_oof(vectors, labels, k)
    view = measure_hidden_view(texts, labels, k, info=info, probe_proba=probe, folds=3, seed=0)
    assert view.layer_proba.shape == view.probe_proba.shape == (len(texts), k)
    np.testing.assert_allclose(view.layer_proba.sum(1), 1, atol=1e-6)
    np.testing.assert_array_equal(view.probe_proba, probe)  # paired: the probe's own out-of-fold predictions
    assert view.folds == 3 and view.n_layers >= 1 and list(view.layers)[-1] == view.n_layers
    assert view.C in (1.0, 10.0, 100.0)
    assert view.full_step_examples_per_second > 0 and view.embed_examples_per_second > 0
    assert view.cpu_seconds > 0
    gain = measured_gain(view.labels, view.probe_proba, view.layer_proba)
    calibration = Priors()
    assert gain.measured
    assert gain.shift == pytest.approx(float(calibration.from_reading(reading(gain.probe_accuracy, gain.tuned_accuracy))))


def test_the_last_block_pooled_is_the_sentence_embedding(tiny_bert_dir, demo_rows):
    """The view's last block is exactly what the frozen probe sees (so the two views differ only by the earlier blocks)."""
    from calibgate.embeddings.encoder import embed_texts, load_encoder, resolve_model_dir
    from calibgate.training.hidden_view import _pooled_layers, layer_indices

    info = resolve_model_dir(str(tiny_bert_dir))
    texts, _, _ = _sets(demo_rows, n=20)
    tokenizer, model = load_encoder(info)
    n_layers = model.config.num_hidden_layers
    states, rate, ids = _pooled_layers(texts, info, tokenizer, model, n_layers, layer_indices(n_layers))
    vectors = embed_texts(texts, model=info, cache=False).vectors
    last = states[:, -1]
    if not info.normalize:
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(last, vectors, atol=1e-4)
    assert len(ids) == len(texts) and rate > 0


def test_a_model_without_layers_is_not_measured_and_says_why(tiny_bert_dir, demo_rows, monkeypatch):
    from calibgate.embeddings.encoder import load_encoder, resolve_model_dir
    from calibgate.training.hidden_view import HiddenViewUnavailable, measure_hidden_view

    info = resolve_model_dir(str(tiny_bert_dir))
    texts, labels, k = _sets(demo_rows, n=20)
    _, model = load_encoder(info)
    monkeypatch.setattr(model.config, "num_hidden_layers", 0)
    with pytest.raises(HiddenViewUnavailable, match="num_hidden_layers"):
        measure_hidden_view(texts, labels, k, info=info, probe_proba=np.full((20, k), 1 / k), folds=2)


def test_a_measurement_is_read_back_from_the_cache_and_a_damaged_entry_is_measured_again(tiny_bert_dir, demo_rows, tmp_path, monkeypatch):
    from calibgate.embeddings.encoder import embed_texts, resolve_model_dir
    from calibgate.training import hidden_view

    monkeypatch.setenv("CALIBGATE_CACHE_DIR", str(tmp_path))
    info = resolve_model_dir(str(tiny_bert_dir))
    texts, labels, k = _sets(demo_rows)
    probe = _probe_oof(embed_texts(texts, model=info, cache=False).vectors, labels, k)
    first = hidden_view.cached_hidden_view(texts, labels, k, info=info, probe_proba=probe, folds=3)
    entries = list((tmp_path / "hidden-view").rglob("*.npz"))
    assert len(entries) == 1
    calls = []
    monkeypatch.setattr(hidden_view, "measure_hidden_view", lambda *a, **kw: calls.append(1) or first)
    again = hidden_view.cached_hidden_view(texts, labels, k, info=info, probe_proba=probe, folds=3)
    assert not calls  # read back, not measured
    for name in ("labels", "layer_proba", "probe_proba", "layers"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    assert again.cpu_seconds == first.cpu_seconds and again.C == first.C  # what the measurement cost when it ran
    other = hidden_view.cached_hidden_view(texts, labels, k, info=info, probe_proba=probe, folds=3, seed=1)
    assert other is first and calls == [1]  # another seed is another measurement (the stub measured it)
    assert len(list((tmp_path / "hidden-view").rglob("*.npz"))) == 2
    entries[0].write_bytes(b"not an npz")
    monkeypatch.undo()
    monkeypatch.setenv("CALIBGATE_CACHE_DIR", str(tmp_path))
    remeasured = hidden_view.cached_hidden_view(texts, labels, k, info=info, probe_proba=probe, folds=3)
    np.testing.assert_allclose(remeasured.layer_proba, first.layer_proba, atol=1e-6)


def test_prior_gain_says_it_is_a_prior():
    g = prior_gain()
    assert not g.measured and g.shift == PRIOR_SHIFT and "prior" in g.source and g.boot_shifts is None


def test_training_is_not_timed_past_its_time_or_memory_budget(tiny_bert_dir, demo_rows, tmp_path, monkeypatch):
    """A model whose training steps would take too long (or not fit in memory) is not trained to price itself: the view
    is still measured, the cost model keeps its reference training throughput, and the cache round-trips the gap."""
    from calibgate.embeddings.encoder import embed_texts, resolve_model_dir
    from calibgate.training import hidden_view

    monkeypatch.setenv("CALIBGATE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(hidden_view, "THROUGHPUT_BUDGET_SECONDS", 1e-9)
    info = resolve_model_dir(str(tiny_bert_dir))
    texts, labels, k = _sets(demo_rows)
    probe = _probe_oof(embed_texts(texts, model=info, cache=False).vectors, labels, k)
    view = hidden_view.cached_hidden_view(texts, labels, k, info=info, probe_proba=probe, folds=3)
    assert view.full_step_examples_per_second is None and view.layer_proba.shape == (len(texts), k)
    again = hidden_view.cached_hidden_view(texts, labels, k, info=info, probe_proba=probe, folds=3)
    assert again.full_step_examples_per_second is None and again.cpu_seconds == view.cpu_seconds  # read back
    from calibgate.planner.costs import CostModel

    costs = CostModel().calibrated(full_per_s=None, embed_per_s=view.embed_examples_per_second)
    assert not costs.measured and costs.tune_seconds_per_example() == CostModel().tune_seconds_per_example()
    monkeypatch.setattr(hidden_view, "THROUGHPUT_BUDGET_SECONDS", 1e9)
    monkeypatch.setattr(hidden_view, "TRAIN_BYTES_PER_PARAM", 1e18)  # no machine has that much memory
    from calibgate.embeddings.encoder import load_encoder

    assert not hidden_view._can_time_training(load_encoder(info)[1], embed_rate=1000.0)
