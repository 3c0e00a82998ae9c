"""Errors of the GitHub client, placed in calibgate's error tree.

A wrong token, repository or PR number is the user's configuration (exit 2);
a rate limit, an outage or an unreachable host is the environment (exit 3).
"""

from __future__ import annotations

from calibgate.errors import CalibgateError, EnvironmentFailure, InputError


class GitHubError(CalibgateError):
    """Any failed GitHub API call; ``status`` is the HTTP status (None without a response)."""

    status: int | None = None

    def __init__(self, message: str, *, fix: str | None = None, status: int | None = None):
        self.status = status
        super().__init__(message, fix=fix)


class GitHubAccessError(GitHubError, InputError):
    """401, 403 (not a rate limit), 404 or 422: the token, repository or number is wrong."""


class GitHubRateLimitError(GitHubError, EnvironmentFailure):
    """The primary or secondary rate limit is exhausted."""


class GitHubUnavailableError(GitHubError, EnvironmentFailure):
    """The API could not be reached or answered 5xx."""
