"""The policy's drift: section: optional, defaults, validated ranges reported as file:line."""

from __future__ import annotations

import pytest

from calibgate.errors import PolicyError
from calibgate.policy.loader import load_policy


def test_absent_section_means_defaults(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("schema_version: 1\nchecks:\n  accuracy_floor:\n    min: 0.5\n")
    drift = load_policy(path).drift
    assert drift.max_domain_auc is None and drift.alpha == 0.05 and drift.retrain_branch == "calibgate/retrain"


@pytest.mark.parametrize(
    "body, message",
    [
        ("  alpha: 0.9\n", "'drift.alpha'"),
        ("  max_domain_auc: 0.3\n", "'drift.max_domain_auc'"),
        ("  min_production: 3\n", "'drift.min_production'"),
        ("  suggest: -1\n", "'drift.suggest'"),
        ("  retrain_branch: '../main'\n", "'drift.retrain_branch'"),
        ("  alpah: 0.01\n", "did you mean 'alpha'"),
    ],
)
def test_out_of_range_values_are_refused_with_the_line(tmp_path, body, message):
    path = tmp_path / "p.yaml"
    path.write_text("schema_version: 1\nchecks:\n  accuracy_floor:\n    min: 0.5\ndrift:\n" + body)
    with pytest.raises(PolicyError, match=message) as info:
        load_policy(path)
    assert f"{path}:6:" in str(info.value)  # the value's own line, after the checks block


@pytest.mark.parametrize("branch", ["calibgate/", "a..b", "x.lock/y", "a/.hidden", "a//b", "bot."])
def test_a_retrain_branch_git_would_refuse_is_refused_when_the_policy_is_read(tmp_path, branch):
    """retrain appends '/<model name>' and pushed the merged data before the branch name was ever checked."""
    path = tmp_path / "p.yaml"
    path.write_text(f"schema_version: 1\nchecks:\n  accuracy_floor:\n    min: 0.5\ndrift:\n  retrain_branch: '{branch}'\n")
    with pytest.raises(PolicyError, match=r":5: 'drift': retrain_branch .* does not make a valid git branch name") as info:
        load_policy(path)
    assert "got {" not in str(info.value)
