"""Every strategy trains on the tiny BERT, saves a verifiable run and reloads through the serving graph."""

from __future__ import annotations

import numpy as np
import pytest

from calibgate.runs import load_run


def _reload_predict(run_dir, texts):
    from calibgate.training.predict import predict_proba
    from calibgate.modeling import load_classifier

    model, tokenizer, manifest = load_classifier(run_dir)
    return predict_proba(model, tokenizer, texts, max_length=manifest.max_length), manifest


@pytest.mark.parametrize("strategy", ["embedding-probe", "retrieval", "lora", "full-finetune"])
def test_strategy_trains_saves_and_reloads(strategy, tiny_sets, tiny_bert_dir, tmp_path):
    from calibgate.training import fit

    train, test = tiny_sets
    trained = fit(train, strategy=strategy, model=tiny_bert_dir, epochs=1, lora_rank=4 if strategy == "lora" else None)
    probs = trained.predict_proba(test.texts)
    assert probs.shape == (len(test), train.n_classes)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert set(trained.predict(test.texts)) <= set(train.label_names)  # closed label space

    manifest = trained.save(tmp_path / "run", data={"source": "tiny", "n": len(train)})
    assert load_run(tmp_path / "run").files == manifest.files  # verifies
    files = set(manifest.files)
    assert {"head.safetensors", "encoder/config.json", "encoder/model.safetensors", "README.md", "curves.json",
            "train_config.json", "baseline/probe_head.safetensors"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pkl", ".pickle"))]  # safetensors only
    assert ("adapter/adapter_model.safetensors" in files) == (strategy == "lora")

    reloaded, manifest = _reload_predict(tmp_path / "run", test.texts)
    assert manifest.strategy == strategy
    # the run directory serves the same function as the in-memory model
    np.testing.assert_allclose(reloaded, probs, atol=2e-4)
    card = (tmp_path / "run" / "README.md").read_text()
    assert card.startswith("---\n") and "library_name:" in card and "tags:" in card and strategy in card


def test_tuned_head_starts_from_the_probe(tiny_sets, tiny_bert_dir):
    from calibgate.training import fit

    train, _ = tiny_sets
    probe = fit(train, strategy="embedding-probe", model=tiny_bert_dir)
    tuned = fit(train, strategy="full-finetune", model=tiny_bert_dir, epochs=1, validation_fraction=0.0)
    assert tuned.train_config["head_init"].startswith("probe")
    assert tuned.curves[0]["epoch"] == 0
    # one epoch moves the head only a little away from the probe's solution (LP-FT), same argmax scale
    w_probe, w_tuned = probe.head_tensors["weight"].numpy(), tuned.head_tensors["weight"].numpy()
    assert np.corrcoef(w_probe.ravel(), w_tuned.ravel())[0, 1] > 0.9


def test_lora_changes_adapted_weights_only(tiny_sets, tiny_bert_dir):
    import torch
    from transformers import AutoModel

    from calibgate.training import fit

    train, _ = tiny_sets
    trained = fit(train, strategy="lora", lora_rank=4, model=tiny_bert_dir, epochs=1, validation_fraction=0.0)
    base = AutoModel.from_pretrained(str(tiny_bert_dir)).state_dict()
    merged = trained.encoder.state_dict()
    assert set(trained.train_config["target_modules"]) == {"query", "key", "value", "dense"}
    changed = {k for k in base if not torch.equal(base[k], merged[k])}
    assert any(".attention.self.query.weight" in k for k in changed)
    assert all(k.endswith(".weight") for k in changed)  # bias="none": biases untouched
    assert not any(k.startswith("pooler") or "embeddings" in k or "LayerNorm" in k for k in changed)
    state, config = trained.adapter
    assert config.r == 4 and any("lora_A" in k for k in state)


def test_fit_is_deterministic_given_the_seed(tiny_sets, tiny_bert_dir):
    from calibgate.training import fit

    train, test = tiny_sets
    a = fit(train, strategy="lora", lora_rank=2, model=tiny_bert_dir, epochs=1, seed=3).predict_proba(test.texts)
    b = fit(train, strategy="lora", lora_rank=2, model=tiny_bert_dir, epochs=1, seed=3).predict_proba(test.texts)
    np.testing.assert_array_equal(a, b)


def test_modifiers_class_weights_and_resampling(tiny_sets, tiny_bert_dir):
    from calibgate.training import fit
    from calibgate.training.strategies import _class_weights

    train, test = tiny_sets
    skewed = train.subset(np.r_[np.arange(0, 10), np.arange(10, 13), np.arange(20, 30), np.arange(30, 40)])
    weights = _class_weights(skewed.labels, skewed.n_classes)
    assert weights[1] > 2 * weights[0]
    trained = fit(skewed, strategy="full-finetune", model=tiny_bert_dir, epochs=1, modifiers=["class-weighted-loss", "resample"])
    assert trained.modifiers == ("class-weighted-loss", "resample")
    assert set(trained.predict(test.texts)) <= set(train.label_names)


def test_retrieval_head_stores_training_keys(tiny_sets, tiny_bert_dir):
    from calibgate.training import fit

    train, _ = tiny_sets
    trained = fit(train, strategy="retrieval", model=tiny_bert_dir)
    assert trained.head_spec.kind == "knn" and trained.head_spec.k >= 1
    assert trained.head_tensors["keys"].shape[0] == len(train)
    # each training text is its own nearest key: with k=1 it would be recalled exactly
    assert trained.head_spec.weighting in ("uniform", "similarity")


def test_knn_leave_one_out_picks_a_sensible_k():
    from calibgate.training.frozen import fit_knn

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8))
    labels = np.repeat(np.arange(3), 30)
    x = centers[labels] + 0.8 * rng.normal(size=(90, 8))
    flipped = labels.copy()
    flipped[::10] = (flipped[::10] + 1) % 3  # planted noise: k=1 copies it, larger k votes it down
    fit = fit_knn(x, flipped, 3)
    assert fit.k > 1 and fit.loo_accuracy > 0.7


def test_probe_binary_and_absent_classes_keep_the_label_space_closed():
    from calibgate.training.frozen import fit_probe, probe_logits

    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(1, 1, (20, 5)), rng.normal(-1, 1, (20, 5))]
    labels = np.r_[np.zeros(20, int), np.full(20, 2)]  # class 1 of 3 never seen
    fit = fit_probe(x, labels, 3)
    pred = probe_logits(fit, x).argmax(axis=1)
    assert set(pred) <= {0, 2} and (pred == labels).mean() > 0.8
