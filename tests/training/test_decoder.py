"""Decoder SLMs (Llama-style, last-token pooling) train with LoRA and the probe, save and reload."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("strategy", ["lora", "embedding-probe"])
def test_llama_trains_saves_reloads_and_predicts(strategy, tiny_sets, tiny_llama_dir, tmp_path):
    from calibgate.training.predict import predict_proba
    from calibgate.modeling import load_classifier
    from calibgate.training import fit

    train, test = tiny_sets
    trained = fit(train, strategy=strategy, model=tiny_llama_dir, epochs=1, lora_rank=4 if strategy == "lora" else None)
    if strategy == "lora":
        assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= set(trained.train_config["target_modules"])
    probs = trained.predict_proba(test.texts)
    trained.save(tmp_path / "run")
    model, tokenizer, manifest = load_classifier(tmp_path / "run")
    assert manifest.pooling == "last" and manifest.model_type == "llama"
    reloaded = predict_proba(model, tokenizer, test.texts, max_length=manifest.max_length)
    np.testing.assert_allclose(reloaded, probs, atol=2e-4)
    assert reloaded.argmax(axis=1).max() < train.n_classes


def test_target_modules_per_architecture(tiny_bert_dir, tiny_llama_dir):
    import re

    from transformers import AutoModel

    from calibgate.training.lora import resolve_target_modules

    pattern, leaves = resolve_target_modules(AutoModel.from_pretrained(str(tiny_bert_dir)))
    assert leaves == ["dense", "key", "query", "value"]
    assert re.fullmatch(pattern, "encoder.layer.0.attention.output.dense")
    assert not re.fullmatch(pattern, "pooler.dense")  # outside the served path
    pattern, leaves = resolve_target_modules(AutoModel.from_pretrained(str(tiny_llama_dir)))
    assert leaves == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert re.fullmatch(pattern, "layers.1.self_attn.q_proj")
