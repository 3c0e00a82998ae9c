"""Torch-free serving from the ONNX export, integrity checks, and the predict / export commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from calibgate.cli import cli
from calibgate.errors import DataError, IntegrityError, ModelError
from calibgate.export.serving import predict
from calibgate.runs import verify_run

from .conftest import LABEL_NAMES, TEXTS, make_run

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_predict_records_follow_the_onnx_logits(bert_linear_export):
    from calibgate.export.serving import Predictor

    run, _ = bert_linear_export
    rows = predict(run, TEXTS, batch_size=5)
    assert len(rows) == len(TEXTS)
    for row in rows:
        assert row["label"] in LABEL_NAMES and set(row["probs"]) == set(LABEL_NAMES)
        assert sum(row["probs"].values()) == pytest.approx(1.0, abs=1e-4)
        assert row["score"] == max(row["probs"].values())
    # batching and length-sorting do not change the result
    logits = Predictor.from_run(run).logits(TEXTS, batch_size=1)
    assert [r["label"] for r in rows] == [LABEL_NAMES[i] for i in logits.argmax(1)]
    top = predict(run, TEXTS[:3], precision="int8", top_k=2)
    assert all(len(r["top_k"]) == 2 and r["top_k"][0]["label"] == r["label"] for r in top)
    assert predict(run, []) == []


def test_predict_rejects_bad_arguments(bert_linear_export, bert_knn_export):
    run, _ = bert_linear_export
    with pytest.raises(DataError):
        predict(run, "one string")
    with pytest.raises(DataError, match="empty"):
        predict(run, ["fine", "  "])
    with pytest.raises(ModelError, match="no int8 model"):
        predict(bert_knn_export[0], TEXTS[:1], precision="int8")


def test_predict_imports_neither_torch_nor_transformers(bert_linear_export):
    """Serving in a fresh interpreter where importing torch or transformers would fail."""
    run, _ = bert_linear_export
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from calibgate import api
rows = api.predict({str(run)!r}, {TEXTS[:4]!r}, precision='int8')
assert len(rows) == 4 and all(r['label'] in {LABEL_NAMES!r} for r in rows)
assert 'torch' not in sys.modules and 'transformers' not in sys.modules, sorted(sys.modules)
from calibgate.cli import main
sys.argv = ['calibgate', 'predict', '--run', {str(run)!r}]
try:
    main()
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
assert 'torch' not in sys.modules and 'transformers' not in sys.modules
print('ok')
"""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    stdin = "".join(json.dumps({"text": t}) + "\n" for t in TEXTS[:3])
    proc = subprocess.run(
        [sys.executable, "-c", code], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "ok" and [json.loads(line)["label"] in LABEL_NAMES for line in lines[:-1]] == [True] * 3


@pytest.fixture()
def exported_copy(bert_linear_export, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(bert_linear_export[0], run)
    return run


@pytest.mark.parametrize("rel", ["export/model.onnx", "export/tokenizer.json", "export/export.json",
                                 # not loaded by predict, but part of the run: the gate and the registry refuse it, and so does serving now
                                 "head.safetensors", "encoder/config.json"])
def test_tampered_artifact_is_refused(exported_copy, rel):
    path = exported_copy / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="tampered") as info:
        predict(exported_copy, TEXTS[:2])
    assert info.value.exit_code == 2
    result = CliRunner().invoke(cli, ["predict", "--run", str(exported_copy)], input='{"text": "hi"}\n')
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "tampered" in result.stderr


def test_a_run_with_a_file_its_manifest_does_not_list_is_not_served(exported_copy):
    (exported_copy / "extra.txt").write_text("x")
    with pytest.raises(IntegrityError, match="extra.txt") as info:
        predict(exported_copy, TEXTS[:2])
    assert info.value.exit_code == 2


def test_a_symlinked_artifact_is_never_followed(exported_copy, tmp_path):
    """Same bytes, same sha256, but outside the run: serving refuses to follow the link."""
    outside = tmp_path / "outside.onnx"
    shutil.copy(exported_copy / "export" / "model.onnx", outside)
    (exported_copy / "export" / "model.onnx").unlink()
    (exported_copy / "export" / "model.onnx").symlink_to(outside)
    with pytest.raises(IntegrityError, match="symlink") as info:
        predict(exported_copy, TEXTS[:2])
    assert info.value.exit_code == 2


def test_cli_predict_writes_jsonl(bert_linear_export, tmp_path):
    run, _ = bert_linear_export
    lines = "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(TEXTS[:6]))
    result = CliRunner().invoke(cli, ["predict", "--run", str(run)], input=lines)
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] for r in rows] == [r["label"] for r in predict(run, TEXTS[:6])]
    (tmp_path / "in.jsonl").write_text(lines)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "predict",
            "--run",
            str(run),
            "--input",
            str(tmp_path / "in.jsonl"),
            "-o",
            str(out),
            "--precision",
            "int8",
            "--top-k",
            "1",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert all(len(json.loads(line)["top_k"]) == 1 for line in out.read_text().splitlines())


@pytest.mark.parametrize(
    "stdin, message",
    [
        ('{"text": "fine"}\nnot json\n', "<stdin>:2: not valid JSON"),
        ('{"txt": "typo"}\n', "missing key 'text'"),
        ('{"text": ""}\n', "non-empty string"),
        ('{"text": "\\u200b\\u200b"}\n', "<stdin>:1: 'text' has no visible character"),  # serve refuses it too
        ("", "no texts to predict"),
        ("\n\n", "no texts to predict"),
        ('["a list"]\n', "a JSON list, not an object"),
    ],
)
def test_cli_predict_bad_input_exits_2(bert_linear_export, stdin, message):
    result = CliRunner().invoke(cli, ["predict", "--run", str(bert_linear_export[0])], input=stdin)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and result.stdout == ""


def test_cli_predict_without_export_exits_2(tmp_path, tiny_bert_dir):
    run = make_run(tmp_path / "plain", tiny_bert_dir)
    result = CliRunner().invoke(cli, ["predict", "--run", str(run)], input='{"text": "hi"}\n')
    assert result.exit_code == 2 and "calibgate export" in result.stderr


def test_cli_export_refuses_what_is_not_a_run(tmp_path):
    result = CliRunner().invoke(cli, ["export", "--run", str(tmp_path)])
    assert result.exit_code == 2 and "not a calibgate run" in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_export_json(tmp_path, tiny_bert_dir):
    run = make_run(tmp_path / "runs" / "cli", tiny_bert_dir)
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    args = [
        "export",
        "--run",
        str(run),
        "--parity-texts",
        str(texts),
        "--exporter",
        "torchscript",
        "--latency-runs",
        "5",
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["artifacts"][0]["max_abs_logit_diff"] < 1e-4 and record["artifacts"][0]["latency"]["batch1_runs"] == 5
    result = CliRunner().invoke(
        cli, ["export", "--run", str(run), "--parity-texts", str(texts), "--quantize", "int4"]
    )
    assert result.exit_code == 2


def test_cli_export_reads_the_test_set_from_calibgate_yaml(tmp_path, tiny_bert_dir, test_jsonl, monkeypatch):
    run = make_run(tmp_path / "runs" / "cfg", tiny_bert_dir)
    (tmp_path / "calibgate.yaml").write_text(f"data:\n  test: {test_jsonl}\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, ["export", "--run", "runs/cfg", "--exporter", "torchscript", "--latency-runs", "0"]
    )
    assert result.exit_code == 0, result.stderr
    assert f"from {test_jsonl}" in result.stdout and "accuracy" in result.stdout
    assert verify_run(run).files["export/export.json"]


def test_commands_have_help_with_examples():
    for name in ("export", "predict"):
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and "Examples:" in result.output
