"""Policies that would silently weaken the gate are refused: ranges per check, duplicate keys, empty policies,
and every command reads the policy through the one loader with the same one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from calibgate.cli import cli
from calibgate.policy.api import check_policy, load_policy
from calibgate.policy.checks import CHECKS
from tests.policy.test_policy_file import assert_one_problem, write

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, line, fragment", [
    ("checks:\n  accuracy_floor:\n    min: -0.5\n", 3, "greater than or equal to 0"),
    ("checks:\n  accuracy_floor:\n    min: 1.5\n", 3, "less than or equal to 1"),
    ("checks:\n  macro_f1_floor:\n    max_drop: 2\n", 3, "less than or equal to 1"),
    ("checks:\n  label_validity_floor: {min: 1.01}\n", 2, "less than or equal to 1"),
    ("checks:\n  latency_ceiling:\n    max: -1\n", 3, "greater than 0"),
    ("checks:\n  size_ceiling:\n    max: 0\n", 3, "greater than 0"),
    ("checks:\n  latency_ceiling:\n    max_ratio: 0\n", 3, "greater than 0"),
    ("checks:\n  label_noise_ceiling:\n    max: 1.5\n", 3, "less than or equal to 1"),
    ("checks:\n  shift_auc_ceiling:\n    max: 0.3\n", 3, "greater than or equal to 0.5"),
    ("checks:\n  class_recall_floor:\n    classes: {billing: 1.5}\n", 3, "less than or equal to 1"),
    ("checks:\n  class_recall_floor:\n    max_drop: -0.1\n", 3, "greater than or equal to 0"),
    ("checks:\n  regression:\n    alpha: 1\n", 3, "less than 1"),
    ("checks:\n  regression:\n    max_drop: -0.01\n", 3, "greater than or equal to 0"),
    # a policy's numbers reach numpy and the planner: bounded when read, not an internal error (or hours) later
    ("checks:\n  regression:\n    seed: -1\n", 3, "greater than or equal to 0"),
    ("checks:\n  regression:\n    test: bootstrap\n    resamples: 1000000000000\n", 4, "less than or equal to 100000"),
    ("checks:\n  accuracy_floor: {min: 0.5}\nplanner:\n  lora_ranks: [-3]\n", 4, "greater than or equal to 1"),
    ("checks:\n  accuracy_floor: {min: 0.5}\nplanner:\n  lora_ranks: [8, 1000000000]\n", 4, "less than or equal to 4096"),
    ("checks:\n  accuracy_floor: {min: 0.5}\nplanner:\n  lora_ranks: [8, 16, 8]\n", 4, "lists a rank twice"),
    ("checks:\n  min_examples_per_class:\n    min: 0\n", 3, "greater than or equal to 1"),
    ("checks:\n  metrics:\n    ece: {max: 1.5}\n", 2, "outside ece's range"),
    ("checks:\n  metrics:\n    accuracy: {min: -1}\n", 2, "outside accuracy's range"),
    # YAML keeps the last of two equal keys: the first block would vanish without a word
    ("checks:\n  accuracy_floor: {min: 0.9}\nchecks:\n  size_ceiling: {max: 10}\n", 3, "key 'checks' appears twice"),
    ("checks:\n  accuracy_floor: {min: 0.9}\n  accuracy_floor: {min: 0.1}\n", 3, "key 'accuracy_floor' appears twice"),
    ("checks:\n  accuracy_floor:\n    min: 0.9\n    min: 0.1\n", 4, "key 'min' appears twice (first on line 3)"),
    ("checks:\n  metrics:\n    ece: {max: 0.1, max: 0.9}\n", 3, "key 'max' appears twice"),
    # a second '<<' replaces the first merge as silently
    ("checks:\n  accuracy_floor:\n    <<: {min: 0.9}\n    <<: {min: 0.1}\n", 4, "'<<' appears twice (first on line 3)"),
    ("checks:\n  accuracy_floor: {min: 0.5}\napprovals:\n  production: {required: 1}\n  production: {required: 0}\n", 5,
     "appears twice"),
    ("checks:\n  accuracy_floor: {min: 0.5}\nunknown_top: 1\n", 3, "unknown key 'unknown_top'"),
    ("checks:\n  metrics:\n    custom_loss: {max: .inf}\n", 3, "finite number"),
    ("checks:\n  accuracy_floor: {min: .nan}\n", 2, "finite number"),
    ("checks: {accuracy_floor: {min: 0.5}}\nplanner:\n  max_imbalance_ratio: .inf\n", 3, "finite number"),
    ("checks: {}\n", 1, "enables no checks"),
    ("checks:\n  accuracy_floor:\n", 1, "enables no checks"),
    ("description: nothing else\n", 1, "enables no checks"),
])
def test_weakening_policies_are_refused(tmp_path, text, line, fragment):
    assert_one_problem(tmp_path, text, line, fragment)


@pytest.mark.parametrize("text", ["", "\n# only a comment\n", "---\n...\n"])
def test_an_empty_policy_is_an_error(tmp_path, text):
    problems = check_policy([write(tmp_path, text)])
    assert len(problems) == 1 and "empty policy" in problems[0].message


def test_yaml_merge_keys_may_still_override(tmp_path):
    policy = load_policy(write(tmp_path, "checks:\n  accuracy_floor: &floor {min: 0.5}\n  macro_f1_floor:\n    <<: *floor\n    min: 0.6\n"))
    assert policy.checks.macro_f1_floor.min == 0.6


def test_an_alias_bomb_is_refused_before_anything_expands_it(tmp_path, monkeypatch):
    """Before: nine lines of anchors over anchors (9**9 nodes) ran a minute and several GB into pydantic's error
    rendering, then MemoryError (exit 3) or an abort: a pull request's own policy or calibgate.yaml took the runner."""
    bomb = "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
    text = "description:\n  a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join("  " + line + "\n" for line in bomb.splitlines())
    problems = check_policy([write(tmp_path, "checks:\n  accuracy_floor: {min: 0.5}\n" + text)])
    assert len(problems) == 1 and "expands to more than 100,000 nodes" in problems[0].message
    (tmp_path / "calibgate.yaml").write_text("name: &n [" + ", ".join(["x"] * 9) + "]\n" + bomb.replace("*a", "*n"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["plan", "--fast"])
    assert result.exit_code == 2 and "expands to more than 100,000 nodes" in result.stderr, result.output


def test_an_alias_bomb_met_first_through_a_short_branch_is_still_counted_whole(tmp_path):
    """Before: nodes were sized in the order first seen, so an alias reached early through a short branch ('z: [*l3]',
    popped first) counted as nothing under the anchors that multiply it, and a billion-node document passed."""
    lines = ["defs:", "  a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"  l{i}: &l{i} [{', '.join(['*' + ('a' if i == 1 else f'l{i - 1}')] * 10)}]" for i in range(1, 9)]
    text = "checks:\n  accuracy_floor: {min: 0.5}\ndescription:\n" + "".join(f"  {line}\n" for line in lines + ["z: [*l3]"])
    problems = check_policy([write(tmp_path, text)])
    assert len(problems) == 1 and "expands to more than 100,000 nodes" in problems[0].message


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    problems = check_policy([write(tmp_path, "checks:\n  accuracy_floor: {min: 0.5}\ndescription: &a [1, *a]\n")])
    assert len(problems) == 1 and "expands without end" in problems[0].message


def test_thresholds_at_the_edges_of_their_range_are_valid(tmp_path):
    path = write(tmp_path, "checks:\n  accuracy_floor: {min: 0, max_drop: 1}\n  macro_f1_floor: {min: 1}\n"
                           "  shift_auc_ceiling: {max: 0.5}\n  latency_ceiling: {max: 0.001}\n  metrics: {ece: {max: 0}, custom: {min: -5}}\n")
    assert check_policy([path]) == []


def test_schema_publishes_each_check_s_range():
    from calibgate.policy.schema import policy_json_schema

    defs = policy_json_schema()["$defs"]
    floor = next(d for d in defs.values() if d.get("title") == "AccuracyFloorConfig")
    assert {"minimum": 0, "maximum": 1} == {k: v for k, v in floor["properties"]["min"]["anyOf"][0].items() if k != "type"}
    latency = next(d for d in defs.values() if d.get("title") == "LatencyCeilingConfig")
    assert latency["properties"]["max"]["anyOf"][0]["exclusiveMinimum"] == 0


def test_shipped_policies_pass_policy_check():
    files = sorted(str(p) for p in (ROOT / "policies").glob("*.yaml"))
    assert any(f.endswith("strict.yaml") for f in files)  # the help examples name it
    result = CliRunner().invoke(cli, ["policy", "check", *files])
    assert result.exit_code == 0, result.output
    strict, default = load_policy(ROOT / "policies" / "strict.yaml"), load_policy(ROOT / "policies" / "default.yaml")
    assert set(strict.enabled_checks()) == set(CHECKS)
    assert strict.checks.accuracy_floor.min > default.checks.accuracy_floor.min
    assert strict.checks.latency_ceiling.max < default.checks.latency_ceiling.max
    assert strict.approval_for("production").required >= 2 and strict.approval_for("production").allow_gate_override is False


def _project(tmp_path, monkeypatch, policy_line="policy: policies/missing.yaml\n"):
    (tmp_path / "calibgate.yaml").write_text("name: router\n" + policy_line)
    monkeypatch.chdir(tmp_path)
    return tmp_path


MISSING = "policies/missing.yaml: no such policy file"


def test_plan_with_a_config_naming_a_missing_policy_fails_like_gate(tmp_path, monkeypatch):
    """Before: plan used the built-in defaults silently while gate refused the same config."""
    from tests.policy.gate_records import evaluation, make_run, truth

    _project(tmp_path, monkeypatch)
    rows = "".join(f'{{"text": "ticket {i}", "label": "{"ab"[i % 2]}"}}\n' for i in range(40))
    (tmp_path / "cal.jsonl").write_text(rows)
    labels = truth(30)
    make_run(tmp_path / "runs" / "a", evaluation(labels, labels, run_id="a"))
    runner = CliRunner()
    outcomes = {
        "plan": runner.invoke(cli, ["plan", "--calibration", "cal.jsonl", "--json"]),
        "gate": runner.invoke(cli, ["gate", "--candidate", "runs/a", "--baseline", "none"]),
        "ci": runner.invoke(cli, ["ci", "--out", "out"]),
        "drift": runner.invoke(cli, ["drift", "--dry-run", "--production", "cal.jsonl", "--reference", "cal.jsonl"]),
    }
    for command, result in outcomes.items():
        assert result.exit_code == 2, (command, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and MISSING in lines[0], (command, result.stderr)
    assert not (tmp_path / "out").exists() and not (tmp_path / ".calibgate").exists()


def test_registry_commands_read_the_policy_through_the_loader(tmp_path, monkeypatch):
    from tests.registry.conftest import init_project
    from tests.policy.gate_records import evaluation, make_run, truth

    root = init_project(tmp_path / "project", dvc=False)
    monkeypatch.chdir(root)
    labels = truth(30)
    make_run(root / "runs" / "a", evaluation(labels, labels, run_id="a"))
    (root / "policies" / "gate.yaml").write_text("checks:\n  accuracy_floor: {min: 0.5}\nchecks:\n  size_ceiling: {max: 1}\n")
    runner = CliRunner()
    reg = runner.invoke(cli, ["registry", "register", "runs/a", "--store", "../artifacts"])
    assert reg.exit_code == 2 and "appears twice" in reg.stderr and len(reg.stderr.strip().splitlines()) == 1, reg.output
    (root / "policies" / "gate.yaml").unlink()
    reg = runner.invoke(cli, ["registry", "register", "runs/a", "--store", "../artifacts"])
    assert reg.exit_code == 2 and "policies/gate.yaml: no such policy file" in reg.stderr, reg.output
    assert not (tmp_path / "artifacts").exists()
