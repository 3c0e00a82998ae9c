"""ONNX export of every head kind: one graph, parity with torch, int8, latency, the run's manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibgate.errors import IntegrityError
from calibgate.export.errors import ExportError
from calibgate.records.export import ExportResult
from calibgate.runs import load_run, verify_run

from .conftest import LABEL_NAMES, TEXTS, make_run


def _torch_logits(run, texts):
    import torch

    from calibgate.modeling import load_classifier

    model, tokenizer, manifest = load_classifier(run)
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=manifest.max_length, return_tensors="pt")
    with torch.inference_mode():
        return model(enc["input_ids"], enc["attention_mask"]).numpy()


def test_linear_head_exports_with_parity_int8_and_latency(bert_linear_export):
    run, result = bert_linear_export
    fp32, int8 = result.artifact("fp32"), result.artifact("int8")
    assert result.exporter == "dynamo" and result.parity_texts == len(TEXTS)
    assert fp32.max_abs_logit_diff < 1e-4 and fp32.argmax_agreement == 1.0
    assert 0.0 <= int8.argmax_agreement <= 1.0 and int8.max_abs_logit_diff is not None
    assert int8.accuracy is not None and int8.accuracy_delta == pytest.approx(int8.accuracy - fp32.accuracy)
    assert int8.size_bytes < fp32.size_bytes
    for artifact in (fp32, int8):
        lat = artifact.latency
        assert lat.p50_ms <= lat.p95_ms <= lat.p99_ms and lat.threads >= 1 and lat.throughput_batch32 > 0
        assert lat.sequence_length > 3
    # the record on disk is the result, and the manifest now covers every export file
    assert ExportResult.model_validate_json((run / "export" / "export.json").read_text()) == result
    manifest = verify_run(run)
    assert {"export/model.onnx", "export/model.int8.onnx", "export/tokenizer.json", "export/export.json"} <= set(
        manifest.files
    )
    assert manifest.files["export/model.onnx"] == fp32.sha256
    assert not [p for p in run.parent.iterdir() if p.name.startswith(".")], "temporary export dir left behind"


def test_graph_has_dynamic_batch_and_sequence(bert_linear_export):
    import onnx

    model = onnx.load(str(bert_linear_export[0] / "export" / "model.onnx"))
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert set(inputs) == {"input_ids", "attention_mask"}
    assert all(isinstance(d, str) for dims in inputs.values() for d in dims)
    (output,) = model.graph.output
    assert output.name == "logits" and output.type.tensor_type.shape.dim[1].dim_value == len(LABEL_NAMES)


def test_knn_head_exports_with_parity(bert_knn_export):
    run, result = bert_knn_export
    assert result.artifact("fp32").max_abs_logit_diff < 1e-4
    assert result.artifact("int8") is None and result.parity_source == "given texts"
    verify_run(run)


def test_llama_last_token_pooling_exports_and_predicts(llama_export):
    from calibgate.export.serving import predict

    run, result = llama_export
    assert result.artifact("fp32").max_abs_logit_diff < 1e-4
    assert result.tokenizer.padding_side == "right"
    rows = predict(run, TEXTS)
    assert [r["label"] for r in rows] == [LABEL_NAMES[i] for i in _torch_logits(run, TEXTS).argmax(1)]


def test_left_padded_decoder_exports_with_torchscript(tmp_path, tiny_llama_dir):
    """A decoder whose tokenizer pads (and truncates) left: the export records both and still matches torch."""
    from calibgate.export.api import export

    sides = {"padding_side": "left", "truncation_side": "left"}
    run = make_run(tmp_path / "llama-left", tiny_llama_dir, tokenizer_config=sides, strategy="lora")
    result = export(run, parity_texts=TEXTS, exporter="torchscript", latency_runs=0)
    assert result.tokenizer.padding_side == "left" and result.tokenizer.truncation_side == "left"
    assert result.exporter == "torchscript"
    assert result.artifact("fp32").max_abs_logit_diff < 1e-4


def test_serving_tokenizer_matches_transformers(bert_linear_export):
    from transformers import AutoTokenizer

    from calibgate.export.tokenize import ServingTokenizer

    run, result = bert_linear_export
    serving = ServingTokenizer((run / result.tokenizer.path).read_text(), result.tokenizer)
    reference = AutoTokenizer.from_pretrained(str(run / "encoder"))
    texts = TEXTS + [" ".join(TEXTS)]  # the last one is truncated to max_length
    for batch in (texts[:5], texts[5:17], texts[17:], texts[-1:]):
        enc = reference(
            batch, padding=True, truncation=True, max_length=result.tokenizer.max_length, return_tensors="np"
        )
        ids, mask = serving(batch)
        np.testing.assert_array_equal(ids, enc["input_ids"])
        np.testing.assert_array_equal(mask, enc["attention_mask"])
    assert serving(texts[-1:])[0].shape[1] == result.tokenizer.max_length


def test_failed_parity_raises_and_writes_nothing(tmp_path, tiny_bert_dir):
    from calibgate.export.api import export

    run = make_run(tmp_path / "runs" / "strict", tiny_bert_dir)
    before = load_run(run).files
    with pytest.raises(ExportError, match="differ from torch") as info:
        export(run, parity_texts=TEXTS[:4], exporter="torchscript", tolerance=-1.0, latency_runs=0)
    assert info.value.exit_code == 3
    assert not (run / "export").exists() and load_run(run).files == before
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["strict"]


def test_tampered_run_is_not_exported(tmp_path, tiny_bert_dir):
    from calibgate.export.api import export

    run = make_run(tmp_path / "tampered", tiny_bert_dir)
    with (run / "head.safetensors").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError, match="head.safetensors") as info:
        export(run, parity_texts=TEXTS)
    assert info.value.exit_code == 2 and not (run / "export").exists()


def test_reexport_replaces_the_export(tmp_path, tiny_bert_dir):
    from calibgate.export.api import export

    run = make_run(tmp_path / "twice", tiny_bert_dir)
    export(run, parity_texts=TEXTS[:6], exporter="torchscript", quantize="int8", latency_runs=0)
    second = export(run, parity_texts=TEXTS[:6], exporter="torchscript", latency_runs=0)
    assert not (run / "export" / "model.int8.onnx").exists()
    assert (
        json.loads((run / "export" / "export.json").read_text())["artifacts"][0]["sha256"] == second.artifacts[0].sha256
    )
    assert "export/model.int8.onnx" not in verify_run(run).files


def test_version1_export_record_still_validates():
    """Fields added to ExportResult are optional: a record written before them still loads."""
    record = {
        "schema_version": 1,
        "run_id": "old",
        "opset": 17,
        "artifacts": [{"path": "export/model.onnx", "precision": "fp32", "size_bytes": 1, "sha256": "0" * 64}],
    }
    result = ExportResult.model_validate(record)
    assert result.tokenizer is None and result.artifact("fp32").accuracy_delta is None
