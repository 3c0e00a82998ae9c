"""CLI: 'calibgate policy check|schema' and 'calibgate gate' exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from calibgate.cli import cli
from calibgate.policy.schema import policy_json_schema_text
from tests.policy.gate_records import evaluation, export, flip, make_run, plan, truth

ROOT = Path(__file__).resolve().parents[2]
POLICY = "checks:\n  accuracy_floor: {min: 0.8}\n  regression: {test: mcnemar}\n  latency_ceiling: {max: 20}\n"


def run(*args, cwd=None):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_policy_check_ok_and_problems(tmp_path):
    ok = run("policy", "check", str(ROOT / "policies" / "default.yaml"))
    assert ok.exit_code == 0 and "1 policy file(s) valid" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("checks:\n  acuracy_floor: {min: 1}\nplaner: {}\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("checks: [\n")
    result = run("policy", "check", str(bad), str(broken))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{bad}:2: unknown key 'checks.acuracy_floor' (did you mean 'accuracy_floor'?)")
    assert lines[1].startswith(f"{bad}:3: ") and lines[2].startswith(f"{broken}:2: not valid YAML")
    assert len(lines) == 3


def test_policy_schema_prints_committed_schema():
    result = run("policy", "schema")
    assert result.exit_code == 0 and result.output == policy_json_schema_text()


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text(POLICY)
    labels = truth(400)
    base_preds = flip(labels, 0.1, seed=1)
    worse = base_preds.copy()
    right = [i for i in range(len(labels)) if base_preds[i] == labels[i]][:40]
    worse[right] = (labels[right] + 1) % 3
    make_run(tmp_path / "runs" / "prod", evaluation(labels, base_preds, run_id="prod"), export_record=export(10))
    make_run(tmp_path / "runs" / "same", evaluation(labels, base_preds, run_id="same"), export_record=export(12), plan_record=plan())
    make_run(tmp_path / "runs" / "worse", evaluation(labels, worse, run_id="worse"), export_record=export(12))
    make_run(tmp_path / "runs" / "noexport", evaluation(labels, base_preds, run_id="noexport"))
    return tmp_path


def test_gate_exit_codes(runs):
    ok = run("gate", "--candidate", "runs/same", "--baseline", "runs/prod", "--policy", "policy.yaml")
    assert ok.exit_code == 0, ok.output
    assert "gate: PROMOTE" in ok.output and "baseline prod" in ok.output
    blocked = run("gate", "--candidate", "runs/worse", "--baseline", "runs/prod", "--policy", "policy.yaml", "--json")
    assert blocked.exit_code == 1
    decision = json.loads(blocked.stdout)
    assert decision["decision"] == "block" and any(c["id"] == "regression" and c["status"] == "FAIL" for c in decision["checks"])
    cannot = run("gate", "--candidate", "runs/noexport", "--baseline", "none", "--policy", "policy.yaml")
    assert cannot.exit_code == 3 and "latency_ceiling" in cannot.output


def test_without_a_readable_registry_the_first_model_must_be_declared(runs):
    """Before: no git repo here made the gate judge the candidate as the first model, and promote."""
    result = run("gate", "--candidate", "runs/same", "--policy", "policy.yaml")  # baseline production, no git repo
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot read the production baseline" in lines[0] and "--baseline none" in lines[0]
    declared = run("gate", "--candidate", "runs/same", "--policy", "policy.yaml", "--baseline", "none")
    assert declared.exit_code == 0, declared.output
    assert "No baseline: the first model is judged on absolute thresholds only." in declared.output


def test_gate_bad_input_is_one_line_exit_2(runs):
    (runs / "runs" / "same" / "head.safetensors").write_bytes(b"tampered")
    tampered = run("gate", "--candidate", "runs/same", "--baseline", "none", "--policy", "policy.yaml")
    assert tampered.exit_code == 2 and tampered.stderr.count("\n") == 1 and "tampered" in tampered.stderr
    missing = run("gate", "--candidate", "runs/nope", "--baseline", "none", "--policy", "policy.yaml")
    assert missing.exit_code == 2 and "calibgate-run.json" in missing.stderr
    (runs / "bad.yaml").write_text("checks:\n  acuracy_floor: {}\n")
    bad_policy = run("gate", "--candidate", "runs/prod", "--baseline", "none", "--policy", "bad.yaml")
    assert bad_policy.exit_code == 2 and "bad.yaml:2: unknown key" in bad_policy.stderr


def test_gate_reads_plan_for_signal_gates(runs):
    (runs / "sig.yaml").write_text("checks:\n  label_noise_ceiling: {max: 0.01}\n")
    result = run("gate", "--candidate", "runs/same", "--baseline", "none", "--policy", "sig.yaml")
    assert result.exit_code == 1 and "label_noise_ceiling" in result.output


@pytest.mark.parametrize("dataset, needle", [
    ({"dvc_md5": "ffffffffffffffffffffffffffffffff.dir"}, "is a plan of data version ffffffffffffffffffffffffffffffff.dir, the "
     "candidate same was trained on 0fa66f6ecc5059f38edaafb1c423c0d7.dir"),
    ({"label_names": ["billing", "card", "spam"]}, "label(s) the candidate same does not have: spam"),
])
def test_gate_refuses_a_plan_of_other_data(runs, dataset, needle):
    """Before: 'gate --plan' took any plan: one measured on another data version (0.4% label noise there) passed
    label_noise_ceiling for a run trained on data the run's own plan measured at 2%."""
    (runs / "sig.yaml").write_text("checks:\n  label_noise_ceiling: {max: 0.01}\n")
    own = plan(noise=0.004)
    clean = own.model_copy(update={"dataset": own.dataset.model_copy(update=dataset)})
    (runs / "other-plan.json").write_text(clean.model_dump_json())
    result = run("gate", "--candidate", "runs/same", "--baseline", "none", "--policy", "sig.yaml", "--plan", "other-plan.json")
    assert result.exit_code == 2 and needle in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.output
    (runs / "same-data.json").write_text(own.model_copy(
        update={"dataset": own.dataset.model_copy(update={"dvc_md5": "0fa66f6ecc5059f38edaafb1c423c0d7.dir"})}).model_dump_json())
    assert run("gate", "--candidate", "runs/same", "--baseline", "none", "--policy", "sig.yaml", "--plan",
               "same-data.json").exit_code == 0  # a plan of the run's own data version is the caller's to choose
