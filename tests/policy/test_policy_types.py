"""Fuzz findings: policy thresholds are never coerced from booleans or strings, and metric names are checked.

Before: ``min: true`` was read as 1.0 (``min: false`` as 0.0, a floor silently off) and ``min: "0.7"`` as 0.7;
``calibgate policy check`` exited 0 for both. A ``checks.metrics`` key no evaluation writes passed ``policy check``
without a word and only surfaced at gate time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from calibgate.cli import cli
from calibgate.policy.api import check_policy, load_policy
from calibgate.policy.checks import BUILTIN_METRICS
from tests.policy.gate_records import evaluation, make_run, truth
from tests.policy.test_policy_file import assert_one_problem, write

ROOT = Path(__file__).resolve().parents[2]
OK = "checks:\n  accuracy_floor: {min: 0.5}\n"


@pytest.mark.parametrize("text, line, key", [
    # every check's numeric thresholds, floats and ints
    ("checks:\n  accuracy_floor:\n    min: true\n", 3, "checks.accuracy_floor.min"),
    ("checks:\n  accuracy_floor:\n    min: false\n", 3, "checks.accuracy_floor.min"),
    ("checks:\n  accuracy_floor:\n    min: '0.7'\n", 3, "checks.accuracy_floor.min"),
    ("checks:\n  macro_f1_floor:\n    max_drop: yes\n", 3, "checks.macro_f1_floor.max_drop"),
    ("checks:\n  label_validity_floor:\n    min: \"0.99\"\n", 3, "checks.label_validity_floor.min"),
    ("checks:\n  class_recall_floor:\n    min: on\n", 3, "checks.class_recall_floor.min"),
    ("checks:\n  class_recall_floor:\n    classes: {billing: '0.5'}\n", 3, "checks.class_recall_floor.classes.billing"),
    ("checks:\n  regression:\n    alpha: '0.05'\n", 3, "checks.regression.alpha"),
    ("checks:\n  regression:\n    test: bootstrap\n    resamples: '500'\n", 4, "checks.regression.resamples"),
    ("checks:\n  regression:\n    seed: true\n", 3, "checks.regression.seed"),
    ("checks:\n  latency_ceiling:\n    max: '50'\n", 3, "checks.latency_ceiling.max"),
    ("checks:\n  size_ceiling:\n    max_ratio: true\n", 3, "checks.size_ceiling.max_ratio"),
    ("checks:\n  label_noise_ceiling:\n    max: '0.1'\n", 3, "checks.label_noise_ceiling.max"),
    ("checks:\n  shift_auc_ceiling:\n    max: true\n", 3, "checks.shift_auc_ceiling.max"),
    ("checks:\n  min_examples_per_class:\n    min: '5'\n", 3, "checks.min_examples_per_class.min"),
    ("checks:\n  min_examples_per_class:\n    min: true\n", 3, "checks.min_examples_per_class.min"),
    ("checks:\n  metrics:\n    ece:\n      max: false\n", 4, "checks.metrics.ece.max"),
    ("checks:\n  metrics:\n    ece:\n      max: '0.1'\n", 4, "checks.metrics.ece.max"),
    # the planner section, and the other sections with numbers
    (OK + "planner:\n  tolerance: true\n", 4, "planner.tolerance"),
    (OK + "planner:\n  max_label_noise: '0.08'\n", 4, "planner.max_label_noise"),
    (OK + "planner:\n  min_examples_per_class: '5'\n", 4, "planner.min_examples_per_class"),
    (OK + "planner:\n  lora_ranks: [8, true]\n", 4, "planner.lora_ranks.1"),
    (OK + "planner:\n  max_train_seconds: '60'\n", 4, "planner.max_train_seconds"),
    (OK + "approvals:\n  production:\n    required: '1'\n", 5, "approvals.production.required"),
    (OK + "drift:\n  alpha: '0.05'\n", 4, "drift.alpha"),
    (OK + "monitor:\n  max_p95_ms: true\n", 4, "monitor.max_p95_ms"),
    (OK + "rollout:\n  order: [canary, production]\n  stages:\n    production:\n      canary: {min_requests: '500'}\n",
     7, "rollout.stages.production.canary.min_requests"),
])
def test_booleans_and_strings_are_not_numbers(tmp_path, text, line, key):
    assert_one_problem(tmp_path, text, line, f"'{key}': expected a ")
    problem = check_policy([write(tmp_path, text)])[0]
    assert ("got the boolean" in problem.message or "got the string" in problem.message) and "; write " in problem.message


def test_an_integer_is_still_a_valid_float(tmp_path):
    policy = load_policy(write(tmp_path, "checks:\n  accuracy_floor: {min: 1}\n  latency_ceiling: {max: 50}\n"
                                         "  metrics: {ece: {max: 0}}\nplanner: {tolerance: 2, max_shift_auc: 1}\n"))
    assert policy.checks.accuracy_floor.min == 1.0 and isinstance(policy.checks.accuracy_floor.min, float)
    assert policy.checks.metrics["ece"].max == 0.0 and policy.planner.tolerance == 2.0


@pytest.mark.parametrize("value, fix", [
    ("true", "write a number such as 0.5"), ("'0.7'", "write 0.7 (a number, unquoted)"),
    # YAML 1.1 reads an exponent without a dot as text: the fix said to write the same text, unquoted, again
    ("7e-1", "YAML reads 7e-1 unquoted as text, not a number: write 7.0e-1"),
    ("1e308", "write 1.0e+308"),
    ("1e999", "1e999 is past the largest number (about 1.8e+308): write a finite number"),
])
def test_policy_check_refuses_a_coerced_floor_in_one_line(tmp_path, value, fix):
    text = (ROOT / "policies" / "default.yaml").read_text().replace("min: 0.70 ", f"min: {value} ")
    path = write(tmp_path, text)
    result = CliRunner().invoke(cli, ["policy", "check", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}:11: 'checks.accuracy_floor.min': expected a number") and fix in lines[0]
    gate = CliRunner().invoke(cli, ["gate", "--candidate", str(tmp_path), "--baseline", "none", "--policy", str(path)])
    assert gate.exit_code == 2 and len(gate.stderr.strip().splitlines()) == 1
    assert gate.stderr.startswith(f"calibgate: error: {path}:11: ") and "; fix: " in gate.stderr, gate.stderr


def test_builtin_metrics_are_the_keys_evaluate_writes():
    import numpy as np

    from calibgate.data.jsonl import LabeledSet
    from calibgate.evaluation.api import _score

    data = LabeledSet(texts=["a", "b"], labels=np.array([0, 1]), label_names=["x", "y"], source="t", sha256="0" * 64)
    assert set(_score(data, np.array([[0.9, 0.1], [0.2, 0.8]]), 2, bootstrap=0, seed=0)["metrics"]) == set(BUILTIN_METRICS)


def test_an_unknown_metric_name_is_a_warning_with_a_suggestion(tmp_path):
    """A --metric module may add any name, so policy check cannot refuse one; it names it and its closest built-in."""
    path = write(tmp_path, "checks:\n  metrics:\n    ecee: {max: 0.1}\n    bogus: {max: 0.1}\n    ece: {max: 0.2}\n")
    assert check_policy([path]) == []  # valid: a policy check without warnings is unchanged
    warnings = check_policy([path], warnings=True)
    assert [(w.severity, w.line) for w in warnings] == [("warning", 3), ("warning", 4)]
    assert str(warnings[0]).startswith(f"{path}:3: warning: 'checks.metrics.ecee' is not a built-in metric (did you mean 'ece'?)")
    assert "built-in: accuracy, macro_f1, ece, label_validity_rate" in warnings[1].message
    assert "calibgate evaluate --metric" in warnings[1].message and "\n" not in str(warnings[1])
    assert check_policy([write(tmp_path, "checks:\n  metrics: {ece: {max: 0.1}}\n", "ok.yaml")], warnings=True) == []


def test_policy_check_prints_the_warning_and_still_passes(tmp_path):
    path = write(tmp_path, "checks:\n  metrics:\n    ecee: {max: 0.1}\n")
    result = CliRunner().invoke(cli, ["policy", "check", str(path)])
    assert result.exit_code == 0 and result.stdout.strip() == "1 policy file(s) valid (1 warning(s))"
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{path}:3: warning: 'checks.metrics.ecee' is not a built-in metric (did you mean 'ece'?)")


def test_the_gate_never_passes_on_a_metric_the_evaluation_lacks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    labels = truth(60)
    make_run(tmp_path / "runs" / "a", evaluation(labels, labels, run_id="a"))
    (tmp_path / "p.yaml").write_text("checks:\n  accuracy_floor: {min: 0.5}\n  metrics:\n    bogus: {max: 0.1}\n")
    result = CliRunner().invoke(cli, ["gate", "--candidate", "runs/a", "--baseline", "none", "--policy", "p.yaml", "--json"])
    assert result.exit_code == 3, result.output  # ERROR: never a pass
    decision = json.loads(result.stdout)
    assert decision["decision"] != "promote"
    bogus = next(c for c in decision["checks"] if c["id"] == "metric:bogus")
    assert bogus["status"] == "ERROR" and "no metric 'bogus'" in bogus["message"]
