"""A run whose ONNX graph was swapped for another valid graph, and the run re-sealed (the manifest alone cannot stop
that): a graph of another signature is a bad run (exit 2), and a graph whose scores are NaN is a model error: a 500
that /metrics counts as an error and the log records, never a 200 nobody logged."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calibgate.runs import read_manifest, write_manifest
from tests.conftest import REPO_ROOT

from .conftest import LABEL_NAMES, Server


def _graph(kind: str, n_labels: int) -> bytes:
    """An int64 (batch, seq) -> float (batch, n_labels) graph: NaN scores ('nan'), or the same under other input names."""
    import onnx
    from onnx import TensorProto, helper

    names = ("x", "m") if kind == "names" else ("input_ids", "attention_mask")
    nan = helper.make_tensor("nan", TensorProto.FLOAT, [1, n_labels], [float("nan")] * n_labels)
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Cast", [names[0]], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["f", "axes"], ["s"], keepdims=1),  # (batch, 1)
        helper.make_node("Mul", ["s", "nan"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "swapped",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in names],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_labels])],
        initializer=[nan, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _swapped(run: Path, dst: Path, kind: str) -> Path:
    """A copy of ``run`` with its fp32 graph replaced and every record re-hashed, as an attacker would."""
    shutil.copytree(run, dst)
    record_path = dst / "export" / "export.json"
    record = json.loads(record_path.read_text())
    data = _graph(kind, len(LABEL_NAMES))
    for artifact in record["artifacts"]:
        if artifact["precision"] == "fp32":
            (dst / artifact["path"]).write_bytes(data)
            artifact.update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    record_path.write_text(json.dumps(record, indent=2))
    write_manifest(dst, read_manifest(dst))
    return dst


def _predict(run: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "calibgate", "predict", "--run", str(run)], input='{"text": "my card"}\n',
                          capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})


@pytest.fixture
def run_a(served_project) -> Path:
    return served_project.parent / "runs" / "a"


def test_a_graph_of_another_signature_is_a_bad_run(run_a, tmp_path):
    out = _predict(_swapped(run_a, tmp_path / "names", "names"))
    assert out.returncode == 2, out.stderr
    assert "is not a calibgate classifier graph" in out.stderr and "internal error" not in out.stderr


def test_nan_scores_are_a_model_error_in_predict(run_a, tmp_path):
    out = _predict(_swapped(run_a, tmp_path / "nan", "nan"))
    assert out.returncode == 2 and "not finite numbers" in out.stderr, out.stderr
    assert "NaN" not in out.stdout  # 'score': NaN is not JSON


def test_nan_scores_are_a_logged_counted_500_in_serve(run_a, tmp_path):
    run = _swapped(run_a, tmp_path / "nan", "nan")
    log = tmp_path / "p.jsonl"
    server = Server(tmp_path, str(run), "--log", str(log))
    try:
        status, body, _ = server.predict({"text": "my card"})
        _, metrics, _ = server.get("/metrics")
    finally:
        server.stop()
    assert status == 500 and "the model failed" in body["error"]
    assert 'calibgate_errors_total{kind="model_error"} 1.0' in metrics
    assert 'status="200"' not in metrics
    (line,) = [json.loads(x) for x in log.read_text().splitlines()]
    assert line["status"] == 500 and "not finite" in line["error"]


def test_the_nan_graph_really_answers_nan():
    import onnxruntime as ort

    session = ort.InferenceSession(_graph("nan", 3), providers=["CPUExecutionProvider"])
    ids = np.ones((2, 4), dtype=np.int64)
    (logits,) = session.run(["logits"], {"input_ids": ids, "attention_mask": ids})
    assert logits.shape == (2, 3) and np.isnan(logits).all()
