"""registry promote --approvals-from-run: a real project, the local GitHub REST server, the reviewer recorded."""

from __future__ import annotations

import json

from click.testing import CliRunner
from tests.github.fake_github import REPO, TOKEN, FakeGitHub
from tests.github.test_approvals import review
from tests.registry.conftest import adopt_policy, git

from calibgate.cli import cli
from calibgate.registry import api


def test_the_environment_reviewer_is_the_recorded_approver(project):
    api.register("runs/a")
    policy = project / "policies" / "gate.yaml"
    policy.write_text(policy.read_text().replace("required: 2, approvers: [alice, bob, carol]", "required: 1, approvers: [carol]"))
    adopt_policy(project)
    with FakeGitHub() as gh:
        env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": gh.url, "GITHUB_REPOSITORY": REPO}
        args = ["registry", "promote", "router@v1.0.0", "--approvals-from-run", "31", "--json"]
        missing = CliRunner().invoke(cli, args, env=env)
        assert missing.exit_code == 2 and "no approved review" in missing.stderr, missing.output
        gh.state.approvals[31] = [review("mallory", env="staging")]
        assert CliRunner().invoke(cli, args, env=env).exit_code == 2  # another environment's reviewer does not count
        gh.state.approvals[31] = [review("carol")]
        done = CliRunner().invoke(cli, args, env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["record"]["approved_by"] == ["carol"]
    message = git(project, "tag", "-l", "--format=%(contents)", "router#production#1")
    assert json.loads(message.split("\n\n", 1)[1])["approved_by"] == ["carol"]
