"""Issues for scheduled jobs: open one, or comment on the one still open.

A weekly drift job must not open a new issue every week while the first is
unanswered: the issue body starts with a marker, and a later run adds its
evidence as a comment on the open issue that carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from calibgate.github.client import GitHubClient, answer_number, answer_url, validate_repo
from calibgate.github.comments import find_own_marked


@dataclass(frozen=True)
class PostedIssue:
    action: Literal["opened", "commented"]
    number: int
    url: str | None


def open_or_comment_issue(
    client: GitHubClient, repo: str, *, title: str, body: str, mark: str, labels: tuple[str, ...] = ()
) -> PostedIssue:
    """Open an issue whose body starts with ``mark``, or comment on the open issue that already has it."""
    repo = validate_repo(repo)
    if not body.startswith(mark):
        body = f"{mark}\n{body}"
    # not filtered by label: GitHub silently drops labels a token may not set, and the marker is what counts
    # and only an issue this token could have opened: anyone can open one that starts with the marker
    issues = [issue for issue in client.list_issues(repo, state="open") if "pull_request" not in issue]
    if (issue := find_own_marked(client, issues, mark)) is not None:
        number = answer_number(issue, "number", what=f"an issue of {repo}")
        comment = client.create_issue_comment(repo, number, body)
        return PostedIssue("commented", number, answer_url(comment))
    made = client.create_issue(repo, title=title, body=body, labels=labels)
    return PostedIssue("opened", answer_number(made, "number", what="the new issue"), answer_url(made))
