"""``calibgate ci``: the whole gate chain locally, exactly as the GitHub Action runs it."""

from __future__ import annotations

from pathlib import Path

import click

from calibgate.cli._common import check_summary_target, collect_links, default_pr, default_repo, emit_actions_output

EPILOG = """\b
Runs: plan -> train (the plan's choice) -> evaluate -> export -> gate -> report.
Every record and report.md are written to --out (the Action uploads it).

\b
Examples:
  calibgate ci                                  # the project in the current directory
  calibgate ci --baseline none                  # the first model: nothing in production yet
  calibgate ci --policy policies/strict.yaml --out build/report
  calibgate ci --post --repo octo/models --pr 42   # also comment on the PR (GITHUB_TOKEN)

Exit codes (the gate's): 0 may promote, 1 blocked, 2 bad input or configuration, 3 internal failure.
"""


@click.command("ci", epilog=EPILOG)
@click.option(
    "--config", type=click.Path(dir_okay=False, path_type=Path), help="calibgate.yaml [default: found upwards]."
)
@click.option(
    "--policy",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Policy file [default: 'policy' in calibgate.yaml].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("calibgate-report"),
    show_default=True,
    help="Directory for the records and report.md.",
)
@click.option(
    "--baseline",
    type=click.Choice(["production", "none"]),
    default="production",
    show_default=True,
    help="Compare with the registry's production version (verified), or 'none' to declare the first model.",
)
@click.option("--name", help="Model name in the comment marker [default: 'name' in calibgate.yaml].")
@click.option(
    "--link", "link_values", multiple=True, metavar="LABEL=URL", help="Extra link in the report (repeatable)."
)
@click.option(
    "--summary/--no-summary",
    default=True,
    show_default=True,
    help="Append the report to $GITHUB_STEP_SUMMARY when set.",
)
@click.option(
    "--annotations/--no-annotations", default=None, help="::error/::warning lines [default: on in GitHub Actions]."
)
@click.option("--post", is_flag=True, help="Create or update the PR comment (needs GITHUB_TOKEN).")
@click.option("--repo", help="owner/name [default: $GITHUB_REPOSITORY].")
@click.option("--pr", type=click.IntRange(min=1), help="PR number [default: the pull_request event's].")
@click.option("--policy-base", default=None, metavar="REF",
              help="Git revision whose policy this one must not be weaker than [default: origin/$GITHUB_BASE_REF in a pull request].")
@click.option("--json", "as_json", is_flag=True, help="Print a one-line JSON summary instead of the decision line.")
@click.option("-q", "--quiet", is_flag=True, help="No per-stage and progress lines on stderr.")
@click.pass_context
def ci(ctx, config, policy, out, baseline, name, link_values, summary, annotations, post, repo, pr, policy_base, as_json,
       quiet) -> None:
    """Run the whole gate locally, as the GitHub Action does, and exit with the gate's code."""
    from calibgate import api
    from calibgate.pipeline.ci import records_json

    check_summary_target(summary)
    result = api.run_ci(
        config=config,
        policy=policy,
        out=out,
        baseline=baseline,
        name=name,
        links=collect_links(link_values),
        post=post,
        repo=default_repo(repo),
        pr=default_pr(pr),
        progress=not quiet,
        policy_base=policy_base,
    )
    emit_actions_output(result.decision, result.report, summary=summary, annotations=annotations)
    if as_json:
        click.echo(records_json(result))
    else:
        click.echo(
            f"calibgate: {result.decision.decision}: {result.decision.summary} (report: {result.out_dir / 'report.md'})"
        )
    ctx.exit(result.exit_code)
