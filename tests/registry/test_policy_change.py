"""The gate's policy_change check: a pull request cannot weaken the policy it is gated with and pass.

Unit cases for the directions (calibgate/policy/compare.py), then the check end to end on a real git project
(tests/registry/conftest.py): the base branch's policy, found through the base's own calibgate.yaml.
"""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner
from tests.registry.conftest import POLICY, git

from calibgate.cli import cli
from calibgate.errors import ConfigError
from calibgate.pipeline.gate import gate_run
from calibgate.policy.compare import policy_changes
from calibgate.policy.schema import Policy

BASE = yaml.safe_load(POLICY)


def _policy(edit) -> Policy:
    data = yaml.safe_load(POLICY)
    edit(data)
    return Policy.model_validate(data)


def _directions(edit) -> dict[str, str]:
    return {c.key: c.direction for c in policy_changes(Policy.model_validate(BASE), _policy(edit))}


@pytest.mark.parametrize("edit, key, direction", [
    (lambda p: p["checks"]["accuracy_floor"].update(min=0.4), "checks.accuracy_floor.min", "weaker"),
    (lambda p: p["checks"]["accuracy_floor"].update(min=0.6), "checks.accuracy_floor.min", "stricter"),
    (lambda p: p["checks"]["accuracy_floor"].update(severity="warn"), "checks.accuracy_floor.severity", "weaker"),
    (lambda p: p["checks"].pop("regression"), "checks.regression", "weaker"),
    (lambda p: p["checks"].update(latency_ceiling={"max": 50}), "checks.latency_ceiling", "stricter"),
    (lambda p: p["checks"]["regression"].update(max_drop=0.02), "checks.regression.max_drop", "weaker"),
    (lambda p: p["checks"]["regression"].update(alpha=0.01), "checks.regression.alpha", "weaker"),
    (lambda p: p["checks"]["regression"].update(test="bootstrap"), "checks.regression.test", "changed"),
    (lambda p: p["approvals"]["production"].update(required=1), "approvals.production.required", "weaker"),
    (lambda p: p["approvals"]["production"].update(approvers=["alice", "bob", "carol", "mallory"]),
     "approvals.production.approvers", "weaker"),
    (lambda p: p["approvals"]["production"].update(required=0, approvers=[]), "approvals.production.approvers", "weaker"),
    (lambda p: p["approvals"]["production"].update(approvers=["alice", "bob"]), "approvals.production.approvers", "stricter"),
    (lambda p: p["approvals"]["production"].update(allow_gate_override=True),
     "approvals.production.allow_gate_override", "weaker"),
    (lambda p: p["approvals"].pop("staging"), "approvals.staging", "stricter"),  # no longer declared: nothing may go there
], ids=["floor-lowered", "floor-raised", "fail-to-warn", "check-removed", "check-added", "drop-allowed", "alpha-lowered",
        "test-changed", "fewer-approvals", "approver-added", "anyone-approves", "approver-removed", "override-allowed",
        "stage-undeclared"])
def test_each_difference_has_a_direction(edit, key, direction):
    assert _directions(edit).get(key) == direction


FLOORS = {"checks": {"class_recall_floor": {"classes": {"card_arrival": 0.9, "max_priority": 0.8, "require_gate": 0.7}}},
          "monitor": {"max_error_rate": 0.01, "low_confidence": 0.5}}


def _floor_directions(edit) -> dict[str, str]:
    base = {**BASE, **FLOORS, "checks": {**BASE["checks"], **FLOORS["checks"]}}
    data = yaml.safe_load(yaml.safe_dump(base))
    edit(data)
    return {c.key: c.direction for c in policy_changes(Policy.model_validate(base), Policy.model_validate(data))}


CLASSES = "checks.class_recall_floor.classes"


@pytest.mark.parametrize("edit, key, direction", [
    (lambda p: p["checks"]["class_recall_floor"]["classes"].update(card_arrival=0.1), f"{CLASSES}.card_arrival", "weaker"),
    (lambda p: p["checks"]["class_recall_floor"]["classes"].pop("card_arrival"), f"{CLASSES}.card_arrival", "weaker"),
    (lambda p: p["checks"]["class_recall_floor"]["classes"].update(lost_card=0.5), f"{CLASSES}.lost_card", "stricter"),
    # a class's name is the user's: 'max_...' or a flag's name does not turn a floor into a ceiling or a switch
    (lambda p: p["checks"]["class_recall_floor"]["classes"].update(max_priority=0.2), f"{CLASSES}.max_priority", "weaker"),
    (lambda p: p["checks"]["class_recall_floor"]["classes"].update(require_gate=0.1), f"{CLASSES}.require_gate", "weaker"),
    (lambda p: p["checks"]["class_recall_floor"]["classes"].update(max_priority=0.95), f"{CLASSES}.max_priority", "stricter"),
    (lambda p: p["monitor"].update(max_error_rate=1.0), "monitor.max_error_rate", "weaker"),
    (lambda p: p["monitor"].update(max_error_rate=None), "monitor.max_error_rate", "weaker"),
    (lambda p: p.pop("monitor"), "monitor", "weaker"),
    (lambda p: p["monitor"].update(max_p95_ms=100), "monitor.max_p95_ms", "stricter"),
    (lambda p: p["monitor"].update(low_confidence=0.1), "monitor.low_confidence", "weaker"),
], ids=["class-floor-lowered", "class-floor-removed", "class-floor-added", "class-named-max", "class-named-flag",
        "class-named-max-raised", "monitor-error-rate-raised", "monitor-bound-removed", "monitor-removed", "monitor-bound-added",
        "low-confidence-lowered"])
def test_class_floors_and_monitor_thresholds_have_a_direction(edit, key, direction):
    assert _floor_directions(edit).get(key) == direction


def test_what_serve_logs_is_not_a_policy_change():
    assert _floor_directions(lambda p: p["monitor"].update(log_text=True)) == {}


DIRECTIONLESS = {"checks.regression.resamples", "checks.regression.seed"}  # neither lets more through


def _numeric_leaves(schema, path, defs, seen=()):
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            yield from _numeric_leaves(defs[name], path, defs, seen + (name,))
        return
    for union in ("anyOf", "oneOf"):
        for option in schema.get(union, ()):
            yield from _numeric_leaves(option, path, defs, seen)
    if schema.get("type") == "object":
        for name, child in schema.get("properties", {}).items():
            yield from _numeric_leaves(child, path + (name,), defs, seen)
        if isinstance(schema.get("additionalProperties"), dict):
            yield from _numeric_leaves(schema["additionalProperties"], path + ("x",), defs, seen)
    elif schema.get("type") in ("number", "integer"):
        yield path


def test_every_numeric_threshold_that_decides_a_promotion_has_a_direction():
    """A bound added to the schema without a direction would read as 'changed', a warning: a weakening that passes."""
    from calibgate.policy.compare import _COMPARED, _walk, _node
    from calibgate.policy.schema import policy_json_schema

    schema = policy_json_schema()
    leaves = {path for path in _numeric_leaves(schema, (), schema["$defs"]) if path[0] in _COMPARED and path[0] != "approvals"}
    assert ("checks", "class_recall_floor", "classes", "x") in leaves and ("monitor", "max_error_rate") in leaves
    unknown = []
    for path in sorted(leaves):
        def nest(value):
            for part in reversed(path[1:]):
                value = {part: value}
            return value
        out = []
        _walk(path[0], nest(0.5), nest(0.25), _node(schema["properties"][path[0]]), None, out)
        if [c.direction for c in out] != ["weaker"] and [c.direction for c in out] != ["stricter"]:
            unknown.append(".".join(path))
    assert sorted(unknown) == sorted(DIRECTIONLESS)


def test_an_identical_or_reformatted_policy_has_no_changes():
    assert policy_changes(Policy.model_validate(BASE), Policy.model_validate(yaml.safe_load(POLICY))) == []


# -- end to end --------------------------------------------------------------------------------


def _branch_with(project, files: dict[str, str]) -> None:
    git(project, "branch", "-M", "main")
    git(project, "checkout", "-qb", "change")
    for rel, text in files.items():
        (project / rel).write_text(text)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "change the policy")


def _check(decision):
    return next(c for c in decision.checks if c.id == "policy_change")


def test_lowering_a_floor_in_the_change_blocks_the_gate(project):
    _branch_with(project, {"policies/gate.yaml": POLICY.replace("min: 0.5", "min: 0.1")})
    decision = gate_run("runs/b", baseline="runs/a", policy_base="main")
    check = _check(decision)
    assert check.status == "FAIL" and decision.decision == "block"
    assert "checks.accuracy_floor.min 0.5 -> 0.1" in check.message and check.config == {"base": "main"}
    assert _check(gate_run("runs/b", baseline="runs/a", policy_base="change")).status == "PASS"


def test_pointing_the_config_at_a_new_laxer_file_is_compared_with_the_base_config_s_policy(project):
    lax = "checks:\n  accuracy_floor: {min: 0.1}\napprovals:\n  production: {required: 0}\n"
    _branch_with(project, {"policies/lax.yaml": lax, "calibgate.yaml": "name: router\npolicy: policies/lax.yaml\n"})
    check = _check(gate_run("runs/b", baseline="runs/a", policy_base="main"))
    assert check.status == "FAIL"
    assert "checks.regression" in check.message and "approvals.production.required 2 -> 0" in check.message


def test_a_stricter_policy_passes_and_no_base_means_no_check(project):
    _branch_with(project, {"policies/gate.yaml": POLICY.replace("min: 0.5", "min: 0.55")})
    check = _check(gate_run("runs/b", baseline="runs/a", policy_base="main"))
    assert check.status == "PASS" and "stricter" in check.message
    assert all(c.id != "policy_change" for c in gate_run("runs/b", baseline="runs/a").checks)


def test_in_a_pull_request_the_base_branch_is_the_default(project, monkeypatch):
    _branch_with(project, {"policies/gate.yaml": POLICY.replace("min: 0.5", "min: 0.1")})
    git(project, "push", "-q", "origin", "main")
    git(project, "fetch", "-q", "origin")
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    assert _check(gate_run("runs/b", baseline="runs/a")).status == "FAIL"


def test_a_base_that_does_not_resolve_is_bad_configuration_and_nothing_passes(project):
    with pytest.raises(ConfigError, match="is not a commit"):
        gate_run("runs/b", baseline="runs/a", policy_base="origin/no-such-branch")
    result = CliRunner().invoke(cli, ["gate", "--candidate", "runs/b", "--baseline", "runs/a", "--policy-base", "--help"])
    assert result.exit_code == 2 and "is not a commit" in result.stderr and "Traceback" not in result.output


def test_a_base_policy_this_calibgate_cannot_read_warns_instead_of_comparing(project):
    (project / "policies" / "gate.yaml").write_text("checks: {accuracy_floor: {min: 0.5, typo: 1}}\n")
    git(project, "commit", "-qam", "a broken policy on the base")
    git(project, "branch", "-M", "main")
    git(project, "checkout", "-qb", "fix")
    (project / "policies" / "gate.yaml").write_text(POLICY)
    git(project, "commit", "-qam", "repair it")
    check = _check(gate_run("runs/b", baseline="runs/a", policy_base="main"))
    assert check.status == "WARN" and "typo" in check.message


def test_promote_refuses_a_weaker_policy_named_on_the_command_line_or_left_uncommitted(project, tmp_path):
    from calibgate.errors import RegistryError
    from calibgate.registry import api

    api.register("runs/a")
    weak = tmp_path / "weak.yaml"
    weak.write_text(POLICY.replace("required: 2, approvers: [alice, bob, carol]", "required: 0"))
    with pytest.raises(RegistryError, match="weaker than the policy committed at HEAD: approvals.production"):
        api.promote("router@v1.0.0", policy=weak)
    (project / "policies" / "gate.yaml").write_text(POLICY.replace("min: 0.5", "min: 0.1"))  # edited, not committed
    with pytest.raises(RegistryError, match="checks.accuracy_floor.min 0.5 -> 0.1"):
        api.promote("router@v1.0.0", approved_by=["alice", "bob"])
    assert api.list_versions("router")[0].stages == []
    git(project, "commit", "-qam", "lower the floor, reviewed")  # adopted through git: the promotion goes ahead
    assert api.promote("router@v1.0.0", approved_by=["alice", "bob"]).record.stage == "production"


ROLLOUT = {"order": ["shadow", "canary", "production"], "stages": {"production": {"canary": {"min_requests": 10}}}}


@pytest.mark.parametrize("edit, key, direction", [
    (lambda p: p["rollout"].update(order=["shadow", "production"]), "rollout.order", "weaker"),  # canary skipped
    (lambda p: p["rollout"].update(order=["shadow", "canary", "staging", "production"]), "rollout.order", "stricter"),
    (lambda p: p["rollout"].update(order=["canary", "shadow", "production"]), "rollout.order", "changed"),
    (lambda p: p["checks"]["latency_ceiling"].pop("precision"), "checks.latency_ceiling.precision", "weaker"),
    (lambda p: p["checks"]["latency_ceiling"].update(precision="int8"), "checks.latency_ceiling.precision", "changed"),
], ids=["stage-dropped", "stage-added", "reordered", "precision-to-best", "precision-changed"])
def test_rollout_steps_and_named_artifacts_have_a_direction(edit, key, direction):
    """Dropping canary from the rollout order, or letting a latency ceiling judge 'the best artifact' instead of fp32,
    lets more through; both read as a mere change (a WARN)."""
    base = {**BASE, "rollout": ROLLOUT, "checks": {**BASE["checks"], "latency_ceiling": {"max": 50, "precision": "fp32"}},
            "approvals": {**BASE["approvals"], "shadow": {"required": 0}, "canary": {"required": 0}}}
    data = yaml.safe_load(yaml.safe_dump(base))
    edit(data)
    if "staging" in data["rollout"]["order"]:
        data["approvals"]["staging"] = {"required": 0}
    changes = {c.key: c.direction for c in policy_changes(Policy.model_validate(base), Policy.model_validate(data))}
    assert changes.get(key) == direction, changes
