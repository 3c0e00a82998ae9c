"""One PR comment per report, updated in place on re-runs.

The comment starts with a hidden marker (``<!-- calibgate-report:<name> -->``);
a re-run lists the PR's comments, finds the marker and edits that comment
instead of adding another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from calibgate.errors import ConfigError
from calibgate.github.client import GitHubClient, answer_number, answer_url, validate_number, validate_repo

MARKER_PREFIX = "calibgate-report"
_NAME = re.compile(r"^[A-Za-z0-9_.@#/-]{1,100}$")


def marker(name: str, *, kind: str = MARKER_PREFIX) -> str:
    """The hidden HTML comment that identifies calibgate's comment for ``name``."""
    if not _NAME.match(name or ""):
        raise ConfigError(f"report name {name!r} is not usable in a marker", fix="use letters, digits and . _ - @ # /")
    return f"<!-- {kind}:{name} -->"


@dataclass(frozen=True)
class PostedComment:
    action: Literal["created", "updated", "unchanged"]
    id: int
    url: str | None


def find_marked_comment(comments: list[dict], mark: str, *, login: str | None = None) -> dict | None:
    """The first comment whose body starts with ``mark`` written by a bot, or by ``login`` when given (the token's
    user: a personal token posts as a person)."""
    marked = [c for c in comments if str(c.get("body") or "").lstrip().startswith(mark)]
    if login is not None:
        return next((c for c in marked if _user(c).get("login") == login), None)
    return next((c for c in marked if _user(c).get("type") == "Bot"), None)


def find_own_marked(client: GitHubClient, items: list[dict], mark: str) -> dict | None:
    """The comment or issue among ``items`` that starts with ``mark`` and that this token could have written.

    Anyone can start a comment or an issue with the marker: a pull request's author who did so before the first
    report had calibgate edit their comment (the report then stood under their name, theirs to rewrite, or the
    edit failed on every run), and anyone's issue carrying the drift marker took the drift evidence. A bot's item
    is ours (an Actions or app token posts as a bot); a person's only when the token is that person's, which is
    asked of GitHub (GET /user) only when such an item is there.
    """
    found = find_marked_comment(items, mark)
    if found is None and any(str(c.get("body") or "").lstrip().startswith(mark) for c in items):
        login = client.authenticated_login()
        found = None if login is None else find_marked_comment(items, mark, login=login)
    return found


def _user(comment: dict) -> dict:
    user = comment.get("user")
    return user if isinstance(user, dict) else {}


def upsert_comment(client: GitHubClient, repo: str, pr: int, body: str, *, mark: str | None = None) -> PostedComment:
    """Create the report comment on ``repo#pr`` or update the one carrying its marker.

    ``mark`` defaults to the body's first line, which must be a calibgate marker.
    """
    repo, pr = validate_repo(repo), validate_number(pr)
    mark = mark or body.lstrip().split("\n", 1)[0].strip()
    if not (mark.startswith("<!-- ") and mark.endswith(" -->") and ":" in mark):
        raise ConfigError(
            f"comment body does not start with a calibgate marker (got {mark[:60]!r})",
            fix="render it with calibgate report, which writes the marker first",
        )
    if not body.lstrip().startswith(mark):
        body = f"{mark}\n{body}"
    existing = find_own_marked(client, client.list_issue_comments(repo, pr), mark)
    if existing is None:
        made = client.create_issue_comment(repo, pr, body)
        return PostedComment("created", answer_number(made, "id", what="the new comment"), answer_url(made))
    existing_id = answer_number(existing, "id", what=f"a comment on {repo}#{pr}")
    if existing.get("body") == body:
        return PostedComment("unchanged", existing_id, answer_url(existing))
    updated = client.update_issue_comment(repo, existing_id, body)
    return PostedComment("updated", answer_number(updated, "id", what=f"comment {existing_id}"), answer_url(updated))


def check_pull_head(client: GitHubClient, repo: str, pr: int, head_sha: str) -> None:
    """Refuse to post when PR ``pr``'s head is not ``head_sha``.

    The PR number may come from an untrusted artifact (a fork's workflow run);
    tying it to the run's head commit stops it steering the comment elsewhere.
    """
    pull = client.get_pull(repo, pr)
    head = pull.get("head")
    actual = head.get("sha") if isinstance(head, dict) and isinstance(head.get("sha"), str) else ""
    if actual != head_sha:
        raise ConfigError(
            f"PR #{pr}'s head is {actual[:12] or 'unknown'}, not the gated commit {head_sha[:12]}",
            fix="the artifact names another PR, or the PR moved on; a newer gate run will post",
        )
