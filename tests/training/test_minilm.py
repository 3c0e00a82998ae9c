"""The real MiniLM: a LoRA run on a few hundred demo rows trains, evaluates and beats chance widely."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_minilm_lora_beats_chance_by_a_wide_margin(tmp_path, demo_rows, minilm_dir):
    from calibgate.api import evaluate, train

    labels = sorted({r["label"] for r in demo_rows["train"]})
    per_class = {}
    rows = [r for r in demo_rows["train"] if per_class.setdefault(r["label"], []).append(r) or len(per_class[r["label"]]) <= 10]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in demo_rows["test"][:90]))
    (tmp_path / "calibgate.yaml").write_text(
        "data:\n  train: train.jsonl\n  test: test.jsonl\n  production: null\n  dvc_target: null\n"
    )
    result = train(config=tmp_path / "calibgate.yaml", strategy="lora", lora_rank=8, epochs=1, run_id="minilm")
    assert result.manifest.base_model == "all-MiniLM-L6-v2" and result.manifest.normalize
    assert result.manifest.train_config["target_modules"] == ["dense", "key", "query", "value"]
    ev = evaluate(model=result.run_dir, config=tmp_path / "calibgate.yaml", bootstrap=200)
    chance = 1 / len(labels)
    assert ev.metrics["accuracy"] > 0.7 > 5 * chance
    assert ev.base_model["accuracy"] > 0.7
    assert ev.metrics["accuracy"] >= ev.base_model["accuracy"] - 0.06  # tuning from the probe does not wreck it
    card = (result.run_dir / "README.md").read_text()
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card and "library_name: peft" in card
