"""The REST client against a real HTTP server on 127.0.0.1 that answers GitHub's endpoints."""

from __future__ import annotations

import pytest
from tests.github.fake_github import REPO, TOKEN

from calibgate.errors import ConfigError, EnvironmentFailure, InputError
from calibgate.github import (
    GitHubAccessError,
    GitHubClient,
    GitHubRateLimitError,
    GitHubUnavailableError,
    upsert_comment,
)
from calibgate.github.comments import check_pull_head, marker
from calibgate.github.issues import open_or_comment_issue

MARK = marker("intent-model")


def test_headers_follow_github_conventions(gh, client):
    client.list_issue_comments(REPO, 1)
    headers = gh.state.requests[0]["headers"]
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"].startswith("calibgate/")
    assert headers["authorization"] == f"Bearer {TOKEN}"


def test_comment_created_then_updated_in_place_on_rerun(gh, client):
    first = upsert_comment(client, REPO, 7, f"{MARK}\nfirst run")
    assert first.action == "created"
    second = upsert_comment(client, REPO, 7, f"{MARK}\nsecond run")
    assert (second.action, second.id) == ("updated", first.id)
    assert [c["body"] for c in gh.state.comments[7]] == [f"{MARK}\nsecond run"]
    assert upsert_comment(client, REPO, 7, f"{MARK}\nsecond run").action == "unchanged"
    methods = [r["method"] for r in gh.state.requests]
    assert methods.count("POST") == 1 and methods.count("PATCH") == 1


def test_marker_found_past_the_first_page(gh, client):
    gh.state.comments[3] = [
        {"id": i, "body": f"human comment {i}", "user": {"login": "dev", "type": "User"}} for i in range(1, 6)
    ] + [{"id": 99, "body": f"{MARK}\nold", "user": {"login": "github-actions[bot]", "type": "Bot"}}]
    assert len(client.list_issue_comments(REPO, 3)) == 6  # 3 pages of 2
    posted = upsert_comment(client, REPO, 3, f"{MARK}\nnew")
    assert (posted.action, posted.id) == ("updated", 99)
    pages = [r["query"].get("page", "1") for r in gh.state.requests if r["method"] == "GET"]
    assert pages[-3:] == ["1", "2", "3"]


def test_a_persons_comment_that_starts_with_the_marker_is_never_edited(gh, client):
    """A PR's author who posts the marker before the first report does not get the report put in their comment,
    theirs to rewrite later (nor a failed edit every run): the Actions token's report is a new bot comment."""
    decoy = {"id": 50, "body": f"{MARK}\n## ✅ calibgate: PASS", "user": {"login": "mallory", "type": "User"}}
    gh.state.comments[4] = [dict(decoy)]
    first = upsert_comment(client, REPO, 4, f"{MARK}\nthe real report")
    assert first.action == "created" and first.id != 50
    assert gh.state.comments[4][0] == decoy
    again = upsert_comment(client, REPO, 4, f"{MARK}\nsecond run")
    assert (again.action, again.id) == ("updated", first.id) and gh.state.comments[4][0] == decoy
    assert not any(r["method"] == "PATCH" and r["path"].endswith("/50") for r in gh.state.requests)


def test_a_personal_token_updates_its_own_marked_comment_only(gh, client):
    gh.state.user = {"login": "alice", "type": "User"}
    mine = upsert_comment(client, REPO, 6, f"{MARK}\nfirst")
    gh.state.comments[6].insert(0, {"id": 40, "body": f"{MARK}\nfake", "user": {"login": "mallory", "type": "User"}})
    posted = upsert_comment(client, REPO, 6, f"{MARK}\nsecond")
    assert (posted.action, posted.id) == ("updated", mine.id)
    assert gh.state.comments[6][0]["body"] == f"{MARK}\nfake"


def test_other_reports_markers_are_left_alone(gh, client):
    other = marker("other-model")
    upsert_comment(client, REPO, 5, f"{other}\nother")
    upsert_comment(client, REPO, 5, f"{MARK}\nmine")
    assert len(gh.state.comments[5]) == 2


def test_bad_token_is_one_line_exit_2(gh):
    bad = GitHubClient("wrong", api_url=gh.url, timeout=5)
    with pytest.raises(GitHubAccessError) as info:
        bad.create_issue_comment(REPO, 7, f"{MARK}\nx")
    text = str(info.value)
    assert "401" in text and "Bad credentials" in text and "GITHUB_TOKEN" in text and "\n" not in text
    assert info.value.exit_code == 2 and isinstance(info.value, InputError)
    assert "wrong" not in text  # the token never appears in messages


def test_unknown_repo_is_404_with_fix(client):
    with pytest.raises(GitHubAccessError, match=r"404.*check the repository"):
        client.list_issue_comments("someone/else", 1)


def test_rate_limit_says_so(gh, client):
    gh.state.rate_limited = True
    with pytest.raises(GitHubRateLimitError, match="rate limit exhausted, it resets at") as info:
        client.list_issue_comments(REPO, 1)
    assert info.value.exit_code == 3 and isinstance(info.value, EnvironmentFailure)


def test_5xx_retried_for_reads_then_succeeds(gh, client):
    gh.state.fail_5xx = 2
    assert client.list_issue_comments(REPO, 1) == []
    gh.state.fail_5xx = 1
    with pytest.raises(GitHubUnavailableError, match="502"):  # POST is not retried: it could duplicate
        client.create_issue_comment(REPO, 1, "x")


def test_unreachable_host_is_environment_failure():
    dead = GitHubClient(TOKEN, api_url="http://127.0.0.1:9", timeout=2, retries=0)
    with pytest.raises(GitHubUnavailableError, match="cannot reach the GitHub API"):
        dead.list_issue_comments(REPO, 1)


def test_token_not_sent_to_other_hosts(client):
    with pytest.raises(GitHubUnavailableError, match="not http"):
        client.request("GET", "https://evil.example/repos/x")


def test_redirects_followed_only_on_the_api_host(gh, client):
    gh.state.redirect_to = "http://other.invalid"
    with pytest.raises(
        GitHubUnavailableError, match="redirected GET /repos/octo/models/issues/1/comments to another host"
    ):
        client.list_issue_comments(REPO, 1)
    assert len(gh.state.requests) == 1


def test_from_env(gh, monkeypatch):
    with pytest.raises(ConfigError, match="GITHUB_TOKEN is not set"):
        GitHubClient.from_env({})
    client = GitHubClient.from_env({"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": gh.url})
    assert client.api_url == gh.url
    assert GitHubClient.from_env({"GITHUB_TOKEN": TOKEN}).api_url == "https://api.github.com"


@pytest.mark.parametrize("repo", ["noslash", "a/b/c", "a b/c", "", "../x"])
def test_bad_repo_rejected_before_any_request(gh, client, repo):
    with pytest.raises(ConfigError):
        client.list_issue_comments(repo, 1)
    assert gh.state.requests == []


@pytest.mark.parametrize("number", [0, -1, "7", True, 1.5])
def test_bad_numbers_rejected(client, number):
    with pytest.raises(ConfigError):
        client.create_issue_comment(REPO, number, "x")


def test_oversized_body_refused_locally(gh, client):
    with pytest.raises(ConfigError, match="65,536"):
        client.create_issue_comment(REPO, 1, "x" * 70_000)
    assert gh.state.requests == []


def test_body_without_marker_refused(client):
    with pytest.raises(ConfigError, match="marker"):
        upsert_comment(client, REPO, 1, "no marker here")


def test_pull_head_check(gh, client):
    gh.state.pulls[7] = {"number": 7, "head": {"sha": "a" * 40}}
    check_pull_head(client, REPO, 7, "a" * 40)
    with pytest.raises(ConfigError, match="not the gated commit"):
        check_pull_head(client, REPO, 7, "b" * 40)


def test_drift_issue_opened_once_then_commented(gh, client):
    mark = marker("intent-model", kind="calibgate-drift")
    first = open_or_comment_issue(
        client, REPO, title="Drift", body="evidence 1", mark=mark, labels=("calibgate-drift",)
    )
    second = open_or_comment_issue(
        client, REPO, title="Drift", body="evidence 2", mark=mark, labels=("calibgate-drift",)
    )
    assert (first.action, second.action) == ("opened", "commented")
    assert first.number == second.number and len(gh.state.issues) == 1
    assert gh.state.comments[first.number][0]["body"].endswith("evidence 2")


def test_drift_evidence_never_goes_to_an_issue_someone_else_opened_with_the_marker(gh, client):
    mark = marker("intent-model", kind="calibgate-drift")
    gh.state.issues.append({"number": 1, "title": "Drift (not really)", "body": f"{mark}\nclosed as noise", "state": "open",
                            "labels": [], "user": {"login": "mallory", "type": "User"}})
    posted = open_or_comment_issue(client, REPO, title="Drift", body="evidence", mark=mark)
    assert (posted.action, posted.number) == ("opened", 2) and 1 not in gh.state.comments
    assert open_or_comment_issue(client, REPO, title="Drift", body="evidence 2", mark=mark).number == 2


def test_create_pull(gh, client):
    pull = client.create_pull(REPO, title="Retrain", head="retrain/x", base="main", body="why")
    assert pull["number"] == 100
