"""Property-based fuzz of the policy loader: any bytes give a Policy or a PolicyError, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibgate.errors import PolicyError
from calibgate.policy.api import check_policy, load_policy
from calibgate.policy.checks import CHECKS
from calibgate.policy.schema import Policy

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = ["schema_version", "description", "checks", "planner", "approvals", "production", "min", "max", "max_drop",
        "max_ratio", "alpha", "test", "metric", "severity", "on_missing", "required", "approvers", "require_gate",
        "allow_gate_override", "ece", "classes", "<<", *CHECKS]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["mcnemar", "bootstrap", "fail", "warn", "skip", "accuracy"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5)),
    max_leaves=25)


def _load(data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yaml"
        path.write_bytes(data)
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            assert exc.exit_code == 2 and "\n" not in str(exc), str(exc)
            assert check_policy(path), "load_policy refused what check_policy accepts"
            return None
        assert isinstance(policy, Policy) and policy.enabled_checks(), "a loaded policy always runs a check"
        assert check_policy(path) == []
        return policy


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data):
    _load(data)


@SETTINGS
@given(st.text(max_size=400))
def test_arbitrary_text(text):
    _load(text.encode("utf-8"))


@SETTINGS
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_policy_shaped_yaml(doc):
    _load(yaml.safe_dump(doc, allow_unicode=True).encode("utf-8"))


@SETTINGS
@given(st.lists(st.sampled_from(["checks:", "  accuracy_floor:", "    min: 0.5", "    min: 2", "  regression: {}",
                                 "  <<: *a", "a: &a {x: 1}", "planner:", "  tolerance: 1", "approvals:", "  production:",
                                 "    required: 1", "- x", "{", "]", "!!python/object:os.system x", "\t", "? [a]", ": b",
                                 "checks: &c {accuracy_floor: {min: 0.6}}", "other: *c", "&x [*x]"]), max_size=12))
def test_yaml_fragments(lines):
    _load("\n".join(lines).encode("utf-8"))


def test_a_loaded_policy_is_the_one_written():
    policy = _load(b"checks:\n  accuracy_floor: {min: 0.7}\n")
    assert policy is not None and policy.checks.accuracy_floor.min == 0.7
