"""A re-sealed run is not trusted for its digests alone: the bytes must be what a run holds (calibgate.runs.content).

Anyone who can write a run directory can replace a file and re-seal the manifest (its digest has no key). Each case
below did pass ``load_run``, ``registry register`` and ``gate --baseline none`` before; now every reader refuses it
with one IntegrityError / ModelError naming the file (exit 2), before any loader sees the bytes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import save_file

from calibgate import runs
from calibgate.cli import cli
from calibgate.errors import IntegrityError, ModelError
from calibgate.runs.layout import is_run_id
from tests.policy.gate_records import LABELS, evaluation, export, make_run, truth


def _reseal(run_dir, **changes):
    manifest = runs.read_manifest(run_dir)
    runs.write_manifest(run_dir, manifest.model_copy(update={"files": {}, "manifest_sha256": None, **changes}))


def _head(run, tensors, fill=0.0, dtype=np.float32):
    save_file({k: np.full(shape, fill, dtype=dtype) for k, shape in tensors.items()}, str(run / runs.HEAD))


PICKLE = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94."

CASES = {
    "pickle bytes as the head": (lambda run: (run / runs.HEAD).write_bytes(PICKLE), "head.safetensors is not a safetensors file"),
    "pickle bytes as the encoder": (
        lambda run: (run / runs.ENCODER_DIR / "model.safetensors").write_bytes(PICKLE), "encoder/model.safetensors is not a safetensors file"),
    "an empty head": (lambda run: (run / runs.HEAD).write_bytes(b""), "head.safetensors is not a safetensors file"),
    "a truncated head": (
        lambda run: (run / runs.HEAD).write_bytes((run / runs.HEAD).read_bytes()[:-8]), "does not fit the file (truncated or forged)"),
    "no head": (lambda run: (run / runs.HEAD).unlink(), "the run has no head.safetensors"),
    "a head without its weight": (lambda run: _head(run, {"foo": (3, 4)}), "lacks tensor 'weight', which a linear head needs"),
    "a head for other classes": (
        lambda run: _head(run, {"weight": (7, 4), "bias": (7,)}), "not weight [3, d] and bias [3] for the manifest's 3 classes"),
    "a head of NaN weights": (
        lambda run: _head(run, {"weight": (3, 4), "bias": (3,)}, fill=np.nan), "holds NaN or infinite values"),
    "a half-precision head with an infinity": (
        lambda run: _head(run, {"weight": (3, 4), "bias": (3,)}, fill=np.inf, dtype=np.float16), "holds NaN or infinite values"),
    "a garbage encoder tokenizer": (
        lambda run: (run / runs.ENCODER_DIR / "tokenizer.json").write_text("{nope"), "encoder/tokenizer.json is not valid JSON"),
    "a replaced ONNX graph": (
        lambda run: (run / "export" / "model.onnx").write_bytes(b"another graph"), "the graph was replaced after export"),
}


@pytest.fixture
def run(tmp_path):
    labels = truth(60)
    return make_run(tmp_path / "run", evaluation(labels, labels, run_id="run"), export_record=export(run_id="run"))


def test_the_fixture_run_is_accepted(run):
    assert runs.load_run(run).label_names == LABELS


@pytest.mark.parametrize("case", list(CASES))
def test_a_resealed_run_with_the_wrong_bytes_is_refused(run, case):
    break_it, message = CASES[case]
    break_it(run)
    _reseal(run)
    assert runs.read_manifest(run)  # the seal itself is intact: only the content check can catch it
    with pytest.raises(IntegrityError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        runs.load_run(run)


@pytest.mark.parametrize("changes,message", [
    ({"run_id": "../../evil"}, "'run_id': Value error, a run id is letters"),
    ({"run_id": ""}, "'run_id': Value error, a run id is letters"),
    ({"label_names": ["billing", "billing", "card"]}, "label names must be distinct and non-empty"),
    ({"label_names": []}, "'label_names': List should have at least 2 items"),
    ({"max_length": 0}, "'max_length': Input should be greater than or equal to 1"),
    ({"max_length": -5}, "'max_length': Input should be greater than or equal to 1"),
    ({"schema_version": 99}, "'schema_version': Value error, this calibgate reads run manifests of schema_version 1"),
    ({"data": {"dvc_md5": ["x"]}}, "'data': Value error, data.dvc_md5 must be a string, not list"),
    ({"data": {"n": True}}, "data.n must be an integer, not bool"),
])
def test_a_resealed_manifest_with_impossible_fields_is_refused(run, changes, message):
    manifest = runs.read_manifest(run)
    raw = {**manifest.model_dump(mode="json"), **changes, "manifest_sha256": None}
    raw["manifest_sha256"] = runs.manifest_digest(runs.RunManifest.model_construct(**{**manifest.__dict__, **changes}))
    (run / runs.MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ModelError, match=message):
        runs.load_run(run)


def test_the_gate_refuses_a_resealed_pickle_head_in_one_line(run, tmp_path, monkeypatch):
    (run / runs.HEAD).write_bytes(PICKLE)
    _reseal(run)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text("schema_version: 1\nchecks:\n  accuracy_floor: {min: 0.5}\n")
    result = CliRunner().invoke(cli, ["gate", "--candidate", str(run), "--baseline", "none", "--policy", "policy.yaml"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "head.safetensors is not a safetensors file" in lines[0] and "promote" not in result.stdout.lower()


@pytest.mark.parametrize("value,ok", [
    ("20261202-071500-lora-r16-3fa9", True), ("a", True), ("run_1.v2", True),
    ("../x", False), ("a/b", False), ("/abs", False), ("", False), ("-x", False), (".hidden", False), ("x y", False),
    ("a..b", False), ("x" * 129, False), (None, False),
])
def test_run_ids_are_plain_directory_names(value, ok):
    assert is_run_id(value) is ok


@pytest.mark.parametrize("run_id", ["../x", "/tmp/elsewhere", "a/b", ""])
def test_train_refuses_a_run_id_that_leaves_runs_before_reading_anything(run_id, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config, no data: the id is checked first
    result = CliRunner().invoke(cli, ["train", "--strategy", "embedding-probe", "--run-id", run_id])
    lines = result.stderr.strip().splitlines()
    expected = "'--run-id': is empty" if not run_id else f"run id {run_id!r} is not a plain directory name"
    assert result.exit_code == 2 and len(lines) == 1 and expected in lines[0], lines
    assert list(tmp_path.iterdir()) == []
