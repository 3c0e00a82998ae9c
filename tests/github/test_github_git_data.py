"""Branches, commits via the git data API, and pull requests found by head branch, against the local server."""

from __future__ import annotations

import pytest

from calibgate.errors import ConfigError
from calibgate.github.errors import GitHubAccessError
from tests.github.fake_github import REPO

BASE = "a" * 40


def test_commit_branch_and_pull_round_trip(gh, client):
    gh.state.seed_branch("main", BASE, {"datasets.dvc": "md5: old\n", "README.md": "hi\n"})
    assert client.get_branch_sha(REPO, "main") == BASE
    assert client.get_branch_sha(REPO, "calibgate/retrain/router") is None
    commit = client.create_commit(REPO, parent=BASE, files={"datasets.dvc": "md5: new\n"}, message="retrain")
    assert client.get_commit(REPO, commit)["parents"] == [{"sha": BASE}]
    client.create_branch(REPO, "calibgate/retrain/router", commit)
    assert gh.state.files_at("calibgate/retrain/router") == {"datasets.dvc": "md5: new\n", "README.md": "hi\n"}
    pull = client.create_pull(REPO, title="Retrain", head="calibgate/retrain/router", base="main", body="v1")
    found = client.list_pulls(REPO, head="octo:calibgate/retrain/router")
    assert [p["number"] for p in found] == [pull["number"]] and found[0]["head"]["sha"] == commit
    assert client.list_pulls(REPO, head="octo:other") == []
    client.update_pull(REPO, pull["number"], body="v2")
    assert gh.state.pulls[pull["number"]]["body"] == "v2"


def test_moving_a_branch_needs_force_unless_fast_forward_and_delete(gh, client):
    gh.state.seed_branch("main", BASE, {"a": "1"})
    first = client.create_commit(REPO, parent=BASE, files={"a": "2"}, message="one")
    second = client.create_commit(REPO, parent=BASE, files={"a": "3"}, message="two")
    client.create_branch(REPO, "bot", first)
    with pytest.raises(GitHubAccessError, match="422"):
        client.update_branch(REPO, "bot", second)
    client.update_branch(REPO, "bot", second, force=True)
    assert gh.state.files_at("bot") == {"a": "3"}
    client.delete_branch(REPO, "bot")
    assert client.get_branch_sha(REPO, "bot") is None


def test_refused_push_is_one_line_with_the_status(gh, client):
    gh.state.seed_branch("main", BASE, {})
    gh.state.refuse_push = 403
    commit = client.create_commit(REPO, parent=BASE, files={"x": "y"}, message="m")
    with pytest.raises(GitHubAccessError, match="403.*not accessible") as info:
        client.create_branch(REPO, "bot", commit)
    assert info.value.status == 403 and "heads/bot" not in gh.state.refs


@pytest.mark.parametrize("branch", ["", "-x", "a..b", "a b", "x.lock", "a//b", "a/", "@{u}", 7])
def test_bad_branch_names_are_refused_before_any_request(gh, client, branch):
    with pytest.raises(ConfigError, match="branch name"):
        client.get_branch_sha(REPO, branch)
    assert gh.state.requests == []


def test_bad_sha_is_refused(client):
    with pytest.raises(ConfigError, match="40-character"):
        client.create_branch(REPO, "bot", "abc")
