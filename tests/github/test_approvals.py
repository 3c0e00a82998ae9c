"""The deployment review API on the local REST server: the environment's reviewers, not the triggering actor."""

from __future__ import annotations

import pytest
from tests.github.fake_github import REPO

from calibgate.errors import ConfigError, RegistryError
from calibgate.github.approvals import environment_reviewers


def review(login, state="approved", env="production"):
    return {"state": state, "comment": "ok", "environments": [{"id": 1, "name": env}], "user": {"login": login, "type": "User"}}


def test_run_approvals_endpoint(gh, client):
    gh.state.approvals[42] = [review("carol")]
    assert client.list_run_approvals(REPO, 42)[0]["user"]["login"] == "carol"
    assert gh.state.requests[-1]["path"] == f"/repos/{REPO}/actions/runs/42/approvals"
    assert gh.state.requests[-1]["method"] == "GET"
    with pytest.raises(ConfigError):
        client.list_run_approvals(REPO, 0)


def test_reviewers_of_the_environment_only(gh, client):
    gh.state.approvals[7] = [review("carol"), review("dave", env="staging"), review("erin"), review("carol")]
    assert environment_reviewers(client, REPO, 7, "production") == ["carol", "erin"]
    assert environment_reviewers(client, REPO, 7, "staging") == ["dave"]


def test_no_approval_or_a_rejection_refuses(gh, client):
    with pytest.raises(RegistryError, match="no approved review for environment 'production'") as info:
        environment_reviewers(client, REPO, 8, "production")
    assert info.value.exit_code == 2 and "Settings > Environments" in info.value.fix
    gh.state.approvals[9] = [review("carol"), review("mallory", state="rejected")]
    with pytest.raises(RegistryError, match="mallory rejected"):
        environment_reviewers(client, REPO, 9, "production")


def test_a_rejection_on_a_later_page_still_refuses(gh, client):
    """The fake serves two reviews a page: the rejection is on page 2, after two approvals."""
    gh.state.approvals[10] = [review("bob"), review("carol"), review("mallory", state="rejected")]
    with pytest.raises(RegistryError, match="mallory rejected"):
        environment_reviewers(client, REPO, 10, "production")


def test_an_answer_of_another_shape_is_github_unavailable(gh, client):
    from calibgate.github.client import _dig
    from calibgate.github.errors import GitHubUnavailableError

    with pytest.raises(GitHubUnavailableError, match="has no 'object.sha'"):
        _dig("<html>", "object", "sha", what="the branch main")


@pytest.mark.parametrize("environments", [5, {"name": "production"}, "production", None])
def test_a_review_whose_environments_are_not_a_list_refuses(gh, client, environments):
    """Before: 5 was an internal error (TypeError), and a dict, a string or null read as 'no environment', so a rejection
    in that shape was skipped and the approval beside it promoted."""
    from calibgate.github.errors import GitHubUnavailableError

    gh.state.approvals[11] = [review("carol"), {**review("mallory", state="rejected"), "environments": environments}]
    with pytest.raises(GitHubUnavailableError, match="'environments' is not a list") as info:
        environment_reviewers(client, REPO, 11, "production")
    assert info.value.exit_code == 3
