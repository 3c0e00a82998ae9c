"""The measured fine-tuning signal: generic block replay, cross-fitting, budget; and the gain estimate it feeds."""

from __future__ import annotations

import numpy as np
import pytest

from calibgate.planner.gain import MAX_SHARE, measured_gain, prior_gain
from calibgate.planner.priors import Priors
from tests.conftest import demo_data_dir, pick, read_jsonl

PRIOR_SHARE = Priors().share  # the hand-set prior (hand_set_priors pins it)

pytestmark = pytest.mark.usefixtures("hand_set_priors")


@pytest.fixture(scope="module")
def demo_rows() -> list[dict]:
    rows = read_jsonl(demo_data_dir() / "train.jsonl")
    return pick(rows, sorted({r["label"] for r in rows})[:4], 20)


def _sets(demo_rows, n=60):
    rows = demo_rows[:n]
    names = sorted({r["label"] for r in rows})
    return [r["text"] for r in rows], np.array([names.index(r["label"]) for r in rows]), len(names)


@pytest.mark.parametrize("model_fixture", ["tiny_bert_dir", "tiny_llama_dir"])
def test_tuned_view_replays_blocks_and_predicts_every_row_out_of_fold(model_fixture, request, demo_rows):
    from calibgate.embeddings.encoder import embed_texts, resolve_model_dir
    from calibgate.training.tuned_view import measure_tuned_view

    info = resolve_model_dir(str(request.getfixturevalue(model_fixture)))
    texts, labels, k = _sets(demo_rows)
    vectors = embed_texts(texts, model=info, cache=False).vectors
    view = measure_tuned_view(texts, labels, k, info=info, embeddings=vectors, probe_C=10.0, seed=0, budget_seconds=1e6)
    assert view.tuned_proba.shape == view.probe_proba.shape == (len(texts), k)
    np.testing.assert_allclose(view.tuned_proba.sum(1), 1, atol=1e-4)
    assert view.folds == 3 and 1 <= view.layers <= view.n_layers and view.train_rows == 40
    assert len(view.epoch_log_loss) == 4 and view.epoch_log_loss[view.best_epoch] == min(view.epoch_log_loss)
    last = float(-np.mean(np.log(np.clip(view.tuned_proba[np.arange(len(labels)), labels], 1e-9, None))))
    assert last == pytest.approx(view.epoch_log_loss[-1], rel=1e-3)  # the comparison uses the last epoch
    assert view.full_step_examples_per_second > 0
    # epoch 0 is the LP-FT start: the frozen probe itself, so its out-of-fold loss equals the probe's
    rows = np.arange(len(labels))
    probe_loss = float(-np.mean(np.log(np.clip(view.probe_proba[rows, labels], 1e-9, None))))
    assert view.epoch_log_loss[0] == pytest.approx(probe_loss, rel=1e-3)


def test_tuned_view_shrinks_to_its_budget_and_refuses_past_it(tiny_bert_dir, demo_rows):
    from calibgate.embeddings.encoder import embed_texts, resolve_model_dir
    from calibgate.training.tuned_view import TunedViewUnavailable, _fit_budget, measure_tuned_view

    assert _fit_budget(300, 3, 2, 3, 6, forward=0.001, budget=1e6) == (2, 3, 300)
    layers, epochs, rows = _fit_budget(300, 3, 2, 3, 6, forward=0.01, budget=20)
    assert (layers, epochs) < (2, 3) and rows == 300
    assert _fit_budget(300, 3, 2, 3, 6, forward=0.01, budget=5)[2] < 300  # fewer rows before giving up
    info = resolve_model_dir(str(tiny_bert_dir))
    texts, labels, k = _sets(demo_rows)
    vectors = embed_texts(texts, model=info, cache=False).vectors
    with pytest.raises(TunedViewUnavailable, match="over the 1e-09 s budget"):  # not even MIN_ROWS fit
        measure_tuned_view(texts, labels, k, info=info, embeddings=vectors, probe_C=10.0, budget_seconds=1e-9)


@pytest.mark.parametrize("max_rows", [45, 78])  # 78 of 80 leaves 2 rows out for 4 classes: sklearn's split raised
def test_sampled_rows_are_reported(tiny_bert_dir, demo_rows, max_rows):
    from calibgate.embeddings.encoder import embed_texts, resolve_model_dir
    from calibgate.training.tuned_view import measure_tuned_view

    info = resolve_model_dir(str(tiny_bert_dir))
    texts, labels, k = _sets(demo_rows, n=80)
    vectors = embed_texts(texts, model=info, cache=False).vectors
    view = measure_tuned_view(texts, labels, k, info=info, embeddings=vectors, probe_C=10.0, max_rows=max_rows, budget_seconds=1e6)
    assert len(view.rows) == max_rows and (labels[view.rows] == view.labels).all()


def _proba(hits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Probabilities whose argmax is right exactly where ``hits``."""
    p = np.full((len(labels), k), 0.1 / (k - 1))
    wrong = (labels + 1) % k
    p[np.arange(len(labels)), np.where(hits, labels, wrong)] = 0.9
    return p


def test_measured_gain_moves_from_the_prior_by_its_precision():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    probe_hits = rng.random(400) < 0.75
    big = probe_hits | (rng.random(400) < 0.6)  # recovers ~60% of the probe's errors
    none = probe_hits.copy()
    up = measured_gain(labels, _proba(probe_hits, labels, 2), _proba(big, labels, 2))
    flat = measured_gain(labels, _proba(probe_hits, labels, 2), _proba(none, labels, 2))
    assert up.measured and flat.measured
    assert up.share > PRIOR_SHARE
    assert flat.share == PRIOR_SHARE and "which stands" in flat.source  # one-sided: a null does not lower the prior
    assert up.share <= MAX_SHARE and up.share_low <= up.share <= up.share_high
    assert up.gain == pytest.approx((big.mean() - probe_hits.mean()) * 100)
    assert up.gain_low < up.gain < up.gain_high
    assert len(up.boot_shares) == len(up.boot_probe_shift) > 100


def test_a_noisy_measurement_leans_on_the_prior():
    # a probe that errs on 3 of 100 rows: whatever tuning does there says little about the share
    labels = np.zeros(100, dtype=int)
    probe_hits = np.ones(100, dtype=bool)
    probe_hits[:3] = False
    tuned_hits = probe_hits.copy()
    tuned_hits[:3] = True  # a "100%" recovery, from three rows
    g = measured_gain(labels, _proba(probe_hits, labels, 2), _proba(tuned_hits, labels, 2))
    assert PRIOR_SHARE < g.share < 0.5  # floored variance (1 / 3 errors): the prior still weighs heavily


def test_prior_gain_says_it_is_a_prior():
    g = prior_gain()
    assert not g.measured and g.share == PRIOR_SHARE and "prior" in g.source and g.boot_shares is None


def test_a_measurement_is_read_back_from_the_cache_and_a_damaged_entry_is_measured_again(tiny_bert_dir, demo_rows, tmp_path, monkeypatch):
    from calibgate.embeddings.encoder import embed_texts, resolve_model_dir
    from calibgate.training import tuned_view

    monkeypatch.setenv("CALIBGATE_CACHE_DIR", str(tmp_path))
    info = resolve_model_dir(str(tiny_bert_dir))
    texts, labels, k = _sets(demo_rows)
    vectors = embed_texts(texts, model=info, cache=False).vectors
    first = tuned_view.cached_tuned_view(texts, labels, k, info=info, embeddings=vectors, probe_C=10.0, budget_seconds=1e6)
    entries = list((tmp_path / "tuned-view").rglob("*.npz"))
    assert len(entries) == 1
    calls = []
    monkeypatch.setattr(tuned_view, "measure_tuned_view", lambda *a, **kw: calls.append(1))
    again = tuned_view.cached_tuned_view(texts, labels, k, info=info, embeddings=vectors, probe_C=10.0, budget_seconds=1e6)
    assert not calls  # read back, not measured
    for name in ("rows", "labels", "tuned_proba", "probe_proba"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    assert again.epoch_log_loss == first.epoch_log_loss and again.layers == first.layers
    assert again.cpu_seconds == first.cpu_seconds  # what the measurement cost when it ran
    entries[0].write_bytes(b"not an npz")
    monkeypatch.undo()
    monkeypatch.setenv("CALIBGATE_CACHE_DIR", str(tmp_path))
    remeasured = tuned_view.cached_tuned_view(texts, labels, k, info=info, embeddings=vectors, probe_C=10.0, budget_seconds=1e6)
    np.testing.assert_allclose(remeasured.probe_proba, first.probe_proba, atol=1e-6)
