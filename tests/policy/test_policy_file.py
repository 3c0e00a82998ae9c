"""Policy files: schema published and in sync, every problem as file:line, unknown keys with a suggestion."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from calibgate.errors import PolicyError
from calibgate.policy.api import check_policy, load_policy
from calibgate.policy.checks import CHECKS
from calibgate.policy.schema import policy_json_schema, policy_json_schema_text

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_equals_generated():
    committed = (ROOT / "calibgate" / "schemas" / "policy.schema.json").read_text(encoding="utf-8")
    assert committed == policy_json_schema_text(), "regenerate: calibgate policy schema > calibgate/schemas/policy.schema.json"


def test_default_policy_is_valid_and_matches_schema():
    policy = load_policy(ROOT / "policies" / "default.yaml")
    assert set(policy.enabled_checks()) == set(CHECKS)  # the default shows every check
    assert policy.approval_for("production").required == 1 and policy.approval_for("dev").required == 0
    jsonschema.validate(yaml.safe_load((ROOT / "policies" / "default.yaml").read_text()), policy_json_schema())
    assert len(policy.sha256) == 64 and policy.source.endswith("default.yaml")


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, line, fragment", [
    ("checks:\n  acuracy_floor:\n    min: 0.5\n", 2, "did you mean 'accuracy_floor'"),
    ("checks:\n  metrics:\n    ece:\n      mx: 0.1\n", 4, "did you mean 'max'"),
    ("planer:\n  tolerance: 1\n", 1, "did you mean 'planner'"),
    ("planner:\n  max_label_nois: 0.1\n", 2, "did you mean 'max_label_noise'"),
    ("approvals:\n  production:\n    requird: 1\n", 3, "did you mean 'required'"),
    ("checks:\n  accuracy_floor: {}\n", 2, "set 'min'"),
    ("checks:\n  regression:\n    metric: macro_f1\n", 2, "McNemar"),
    ("checks:\n  accuracy_floor:\n    min: high\n", 3, "expected a number, got the string 'high'"),
    ("approvals:\n  production:\n    required: 2\n    approvers: [alice]\n", 2, "only 1 distinct approvers"),
    ("approvals:\n  'prod#1':\n    required: 0\n", 1, "not a valid gto stage name"),
    ("schema_version: 9\n", 1, "schema_version 1"),
    ("- a\n- b\n", 1, "mapping at the top level"),
    ("checks:\n  accuracy_floor: [\n", 3, "not valid YAML"),
])
def test_problems_name_file_and_line(tmp_path, text, line, fragment):
    assert_one_problem(tmp_path, text, line, fragment)


def assert_one_problem(tmp_path, text: str, line: int, fragment: str) -> None:
    """``text`` as a policy file has exactly one problem, at ``line``, and loading it is one line, exit 2."""
    path = write(tmp_path, text)
    problems = check_policy([path])
    assert len(problems) == 1, problems
    assert problems[0].line == line and fragment in problems[0].message, problems
    assert str(problems[0]).startswith(f"{path}:{line}: ")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_every_problem_reported_in_line_order(tmp_path):
    path = write(tmp_path, "checks:\n  acuracy_floor: {min: 1}\n  regression: {alpha: 2}\nplaner: {}\n")
    assert [p.line for p in check_policy(path)] == [2, 3, 4]


def test_empty_file_is_an_error_not_a_policy_that_promotes_anything(tmp_path):
    with pytest.raises(PolicyError, match="empty policy"):
        load_policy(write(tmp_path, ""))


def test_missing_file(tmp_path):
    assert "no such policy file" in str(check_policy([tmp_path / "nope.yaml"])[0])


def test_schema_is_valid_json_schema():
    schema = policy_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert json.loads(policy_json_schema_text()) == schema
    assert set(schema["$defs"]["Checks"]["properties"]) == set(CHECKS)
