"""Who actually approved a deployment: the environment's reviewers from GitHub's deployment review history.

A promotion job behind a protected environment (``environment: production``)
runs only after a required reviewer approves it; the workflow's triggering
actor is whoever pushed or dispatched, not that reviewer. The stage tag must
name the person who approved, so the promotion asks GitHub for the run's
approvals (GET /repos/{repo}/actions/runs/{run_id}/approvals).
"""

from __future__ import annotations

from typing import Any

from calibgate.errors import RegistryError
from calibgate.github.errors import GitHubUnavailableError


def environment_reviewers(client: Any, repo: str, run_id: int, environment: str) -> list[str]:
    """Logins that approved ``environment`` in workflow run ``run_id``, sorted; :class:`RegistryError` when none did.

    A rejection of the environment in the same run also refuses: the
    deployment was not approved, whatever else was.
    """
    approved: set[str] = set()
    rejected: set[str] = set()
    for review in client.list_run_approvals(repo, run_id):
        if not isinstance(review, dict):
            continue
        environments = review.get("environments")
        if not isinstance(environments, list):  # 5 crashed the loop; a dict or a string read as no environment, so a
            # rejection in that shape was skipped and the approvals beside it promoted
            raise GitHubUnavailableError(
                f"GitHub's answer about the deployment reviews of run {run_id} has a review whose 'environments' is not a "
                "list (not the REST API's shape)", fix="retry; check GITHUB_API_URL points at the GitHub REST API")
        names = {e.get("name") for e in environments if isinstance(e, dict)}
        login = (review.get("user") or {}).get("login") if isinstance(review.get("user"), dict) else None
        if environment not in names or not isinstance(login, str) or not login:
            continue
        if review.get("state") == "approved":
            approved.add(login)
        elif review.get("state") == "rejected":
            rejected.add(login)
    if rejected:
        raise RegistryError(f"run {run_id}: {', '.join(sorted(rejected))} rejected the '{environment}' deployment",
                            fix="nothing is promoted; address the review and re-run")
    if not approved:
        raise RegistryError(
            f"run {run_id} of {repo} has no approved review for environment '{environment}'",
            fix=f"add required reviewers to the '{environment}' environment (Settings > Environments) so the job waits "
                "for an approval, or pass --approved-by",
        )
    return sorted(approved)
