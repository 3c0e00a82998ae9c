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
        names = {e.get("name") for e in review.get("environments") or [] if isinstance(e, dict)}
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
