"""Helpers every command shares: links, the repository and PR from the Actions environment, Actions output, PR comments.

Commands import these from here, never from another command's module.
"""

from __future__ import annotations

import os

import click

from calibgate.records.decision import GateDecision


def parse_links(values: tuple[str, ...]) -> dict[str, str]:
    """``LABEL=URL`` options as a mapping; URLs must be http(s)."""
    links = {}
    for value in values:
        label, sep, url = value.partition("=")
        if not sep or not label.strip() or not url.startswith(("https://", "http://")):
            raise click.BadParameter(f"{value!r} is not LABEL=https://...", param_hint="--link")
        links[label.strip()] = url
    return links


def collect_links(values: tuple[str, ...]) -> dict[str, str]:
    """The workflow run's and commit's links (inside Actions), then the ``--link LABEL=URL`` options."""
    from calibgate.report.actions import run_links

    return {**run_links(), **parse_links(values)}


def check_summary_target(summary: bool) -> None:
    """Refuse a ``$GITHUB_STEP_SUMMARY`` that cannot be written before the command writes anything else."""
    if summary:
        from calibgate.report.actions import step_summary_path

        step_summary_path()


def emit_actions_output(decision: GateDecision, markdown: str, *, summary: bool, annotations: bool | None) -> None:
    """Append to the step summary and print ``::error``/``::warning`` lines (default: inside Actions)."""
    from calibgate.report.actions import annotations as build_annotations
    from calibgate.report.actions import in_actions, write_step_summary

    if summary and write_step_summary(markdown) is None:
        click.echo("calibgate: note: GITHUB_STEP_SUMMARY is not set; no step summary written", err=True)
    if annotations if annotations is not None else in_actions():
        for line in build_annotations(decision):
            click.echo(line)


def default_repo(repo: str | None) -> str | None:
    return repo or os.environ.get("GITHUB_REPOSITORY") or None


def default_pr(pr: int | None) -> int | None:
    from calibgate.report.actions import event_pull_number

    return pr if pr is not None else event_pull_number()


def post_comment(markdown: str, *, repo: str, pr: int, expect_head_sha: str | None = None) -> None:
    """Create or update the report comment on ``repo#pr`` (only while the PR's head is ``expect_head_sha``, if given)."""
    from calibgate.github import GitHubClient, upsert_comment
    from calibgate.github.comments import check_pull_head

    client = GitHubClient.from_env()
    if expect_head_sha:
        check_pull_head(client, repo, pr, expect_head_sha)
    posted = upsert_comment(client, repo, pr, markdown)
    click.echo(f"calibgate: comment {posted.action} on {repo}#{pr}: {posted.url or posted.id}", err=True)
