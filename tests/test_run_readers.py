"""calibgate.runs readers: one typed reader per run record, one error for every way a record file is bad.

Real run directories (files plus a sealed manifest) in tmp dirs; each bad
file is written to disk and read back through the public readers.
"""

from __future__ import annotations

import json

import pytest

from calibgate import runs
from calibgate.errors import EXIT_BAD_INPUT, IntegrityError, ModelError
from calibgate.records.evaluation import EvaluationResult
from calibgate.records.plan import Plan
from calibgate.registry.records import evidence_path
from tests.policy.gate_records import evaluation, export, make_run, plan, truth


@pytest.fixture
def records():
    labels = truth(60)
    return evaluation(labels, labels), export(), plan()


def _reseal(run_dir):
    """Re-hash the run after a test changed a file, as if the bad file had been written by a step."""
    manifest = runs.read_manifest(run_dir)
    runs.write_manifest(run_dir, manifest.model_copy(update={"files": {}, "manifest_sha256": None}))


def test_the_layout_keeps_the_names_runs_were_written_with():
    # changing a name would orphan every run (and registry evidence) already written
    assert (runs.MANIFEST, runs.EVALUATION, runs.METRICS, runs.PLAN, runs.EXPORT_RECORD, runs.BASELINE_HEAD) == (
        "calibgate-run.json", "evaluation.json", "metrics.json", "plan.json", "export/export.json",
        "baseline/probe_head.safetensors")
    assert runs.ONNX_FILES == {"fp32": "export/model.onnx", "int8": "export/model.int8.onnx"}
    assert evidence_path("m", "v1.0.0", runs.EXPORT_RECORD) == ".calibgate-registry/m/v1.0.0/export.json"


@pytest.mark.parametrize("verified", [False, True])
def test_readers_return_the_records_a_run_holds(tmp_path, records, verified):
    ev, ex, pl = records
    run = make_run(tmp_path / "run", ev, export_record=ex, plan_record=pl)
    manifest = runs.load_run(run) if verified else None
    assert runs.read_evaluation(run, manifest=manifest) == ev
    read = runs.read_export(run, manifest=manifest)  # make_run writes the graphs and records their real digests
    assert read.model_copy(update={"artifacts": ex.artifacts}) == ex
    assert [a.sha256 for a in read.artifacts] == [runs.sha256_file(run / a.path) for a in ex.artifacts]
    assert runs.read_plan(run, manifest=manifest) == pl


@pytest.mark.parametrize("verified", [False, True])
def test_optional_records_are_none_when_the_run_has_none(tmp_path, records, verified):
    run = make_run(tmp_path / "run", records[0])
    manifest = runs.load_run(run) if verified else None
    assert runs.read_export(run, manifest=manifest) is None and runs.read_plan(run, manifest=manifest) is None


@pytest.mark.parametrize("verified", [False, True])
def test_a_run_never_evaluated_says_which_file_and_how_to_make_it(tmp_path, records, verified):
    run = make_run(tmp_path / "run", records[0])
    (run / runs.EVALUATION).unlink()
    _reseal(run)
    manifest = runs.load_run(run) if verified else None
    with pytest.raises(ModelError) as info:
        runs.read_evaluation(run, manifest=manifest)
    assert str(run / runs.EVALUATION) in info.value.message and "evaluation record" in info.value.message
    assert info.value.fix == f"run 'calibgate evaluate --run {run}'" and info.value.exit_code == EXIT_BAD_INPUT


BAD_FILES = [
    ("not-json", b'{"run_id": "cand",\n  oops', ":2: not valid JSON"),
    ("not-utf8", b"\xff\xfe{}", "is not UTF-8 text"),
    ("not-an-object", b"[1, 2]", "not a EvaluationResult record"),
    ("wrong-type", None, "not a EvaluationResult record: 'test.n'"),
    ("unknown-key", None, "unknown key"),
]


def _bad_evaluation(kind: str, good: EvaluationResult) -> bytes:
    raw = json.loads(good.model_dump_json())
    if kind == "wrong-type":
        raw["test"]["n"] = "many"
    else:
        raw["surprise"] = 1
    return json.dumps(raw).encode()


@pytest.mark.parametrize("verified", [False, True])
@pytest.mark.parametrize("kind, data, expected", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_malformed_record_is_one_model_error_naming_the_file(tmp_path, records, verified, kind, data, expected):
    run = make_run(tmp_path / "run", records[0])
    (run / runs.EVALUATION).write_bytes(data if data is not None else _bad_evaluation(kind, records[0]))
    _reseal(run)  # the bytes are what the run recorded: only the parse step can refuse them
    manifest = runs.load_run(run) if verified else None
    with pytest.raises(ModelError) as info:
        runs.read_evaluation(run, manifest=manifest)
    assert info.value.message.startswith(str(run / runs.EVALUATION)) and expected in info.value.message
    assert "\n" not in info.value.format() and info.value.exit_code == EXIT_BAD_INPUT


def test_verified_reads_refuse_bytes_the_manifest_does_not_record(tmp_path, records):
    ev, ex, _ = records
    run = make_run(tmp_path / "run", ev, export_record=ex)
    manifest = runs.load_run(run)
    (run / runs.EXPORT_RECORD).write_text(ex.model_copy(update={"opset": 99}).model_dump_json(), encoding="utf-8")
    with pytest.raises(IntegrityError, match="export/export.json has sha256"):
        runs.read_export(run, manifest=manifest)
    assert runs.read_export(run).opset == 99  # unverified reads are for callers that verified the run first


def test_a_record_file_named_by_the_user(tmp_path, records):
    missing = tmp_path / "plan.json"
    with pytest.raises(ModelError, match="plan.json: no such file \\(the plan\\)") as info:
        runs.read_record(missing, Plan, what="plan", fix="pass the file 'calibgate plan --json' wrote")
    assert info.value.fix == "pass the file 'calibgate plan --json' wrote"
    missing.write_text(records[2].model_dump_json(), encoding="utf-8")
    assert runs.read_record(missing, Plan, what="plan", fix="-") == records[2]


def test_bytes_from_elsewhere_parse_with_the_same_errors(records):
    # the registry reads evidence blobs from git: the same parse step, the source named as given
    assert runs.parse_record(records[0].model_dump_json(), EvaluationResult, source="m@v1:evaluation.json",
                             what="recorded evaluation", fix="-") == records[0]
    with pytest.raises(ModelError, match="^m@v1:evaluation.json:1: not valid JSON"):
        runs.parse_record(b"{", EvaluationResult, source="m@v1:evaluation.json", what="recorded evaluation", fix="-")


def test_the_gate_reports_a_malformed_run_record_in_one_line(tmp_path, records, monkeypatch):
    from click.testing import CliRunner

    from calibgate.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text("checks:\n  accuracy_floor: {min: 0.5}\n")
    run = make_run(tmp_path / "runs" / "cand", records[0], export_record=records[1])
    (run / runs.EXPORT_RECORD).write_text('{"run_id": "cand"}', encoding="utf-8")  # sealed, but no opset/artifacts
    _reseal(run)
    args = ["gate", "--candidate", "runs/cand", "--baseline", "none", "--policy", "policy.yaml"]
    result = CliRunner().invoke(cli, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == EXIT_BAD_INPUT and len(lines) == 1, result.output
    assert "runs/cand/export/export.json: not a ExportResult record" in lines[0]
    assert "calibgate export --run" in lines[0]
