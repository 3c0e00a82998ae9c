"""The real all-MiniLM-L6-v2 with a fitted probe: export, int8 and serving agree with torch."""

from __future__ import annotations

import pytest

from .conftest import LABEL_NAMES, LABELED, TEXTS, make_run


@pytest.mark.slow
def test_minilm_probe_exports_quantizes_and_serves(tmp_path, minilm_dir, test_jsonl):
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from calibgate.embeddings.encoder import embed_texts
    from calibgate.export.api import export
    from calibgate.export.serving import predict

    vectors = embed_texts(TEXTS, model=minilm_dir, cache=False).vectors
    labels = np.array([LABEL_NAMES.index(label) for _, label in LABELED])
    probe = LogisticRegression(C=10.0, max_iter=500).fit(vectors, labels)
    tensors = {
        "weight": torch.tensor(probe.coef_, dtype=torch.float32),
        "bias": torch.tensor(probe.intercept_, dtype=torch.float32),
    }
    run = make_run(tmp_path / "minilm-probe", minilm_dir, tensors=tensors)

    result = export(
        run, quantize="int8", test=test_jsonl, latency_runs=0
    )  # timing: tests with tiny models, the benchmark
    fp32, int8 = result.artifact("fp32"), result.artifact("int8")
    assert fp32.max_abs_logit_diff < 1e-4 and fp32.accuracy == 1.0  # the probe fits its own texts
    assert int8.argmax_agreement >= 0.9 and int8.accuracy_delta >= -0.1
    assert int8.size_bytes < fp32.size_bytes / 2
    rows = predict(
        run, ["I have been waiting ages for my card to arrive", "how can I change my pin?"], precision="int8"
    )
    assert [r["label"] for r in rows] == ["card_arrival", "change_pin"]
