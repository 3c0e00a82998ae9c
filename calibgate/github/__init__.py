"""A small GitHub REST client: PR comments updated in place, issues and pull requests.

Standard library only (urllib), so the report step needs no extra package.
"""

from calibgate.github.client import GitHubClient, Response
from calibgate.github.comments import find_marked_comment, upsert_comment
from calibgate.github.errors import GitHubAccessError, GitHubError, GitHubRateLimitError, GitHubUnavailableError

__all__ = [
    "GitHubAccessError",
    "GitHubClient",
    "GitHubError",
    "GitHubRateLimitError",
    "GitHubUnavailableError",
    "Response",
    "find_marked_comment",
    "upsert_comment",
]
