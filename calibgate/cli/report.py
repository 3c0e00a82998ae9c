"""``calibgate report``: render the PR report, and post it, summarise it and annotate the run."""

from __future__ import annotations

from pathlib import Path

import click

from calibgate.cli._common import (
    check_summary_target,
    collect_links,
    default_pr,
    default_repo,
    emit_actions_output,
    post_comment,
)

EPILOG = """\b
Examples:
  calibgate report --decision decision.json --run runs/20261122-lora8 -o report.md
  calibgate report --decision decision.json --plan runs/latest/plan.json --baseline-eval base.json --summary
  calibgate report --records calibgate-report -o report.md      # what 'calibgate ci' wrote
  calibgate report --decision decision.json --post --repo octo/models --pr 42   # needs GITHUB_TOKEN

Exit codes: 0 rendered (whatever the decision), 2 bad input, 3 GitHub or disk failure.
"""

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("report", epilog=EPILOG)
@click.option("--decision", "decision_path", type=_FILE, help="Gate decision JSON ('calibgate gate --json').")
@click.option(
    "--plan", "plan_path", type=_FILE,
    help="The plan the gate read: the run's plan.json (or ci --out's), as the decision's plan_sha256 names it; a fresh "
         "'calibgate plan --json' is another plan (its time stamps differ) and is refused.",
)
@click.option("--candidate-eval", type=_FILE, help="The candidate's evaluation.json.")
@click.option("--baseline-eval", type=_FILE, help="The production model's evaluation.json, for deltas.")
@click.option("--export", "export_path", type=_FILE, help="The candidate's export/export.json: latency and size.")
@click.option(
    "--run",
    "run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory (runs/<id>): fills --plan, --candidate-eval and --export from its files.",
)
@click.option(
    "--records",
    "records_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory 'calibgate ci --out' wrote (the gate's artifact): fills every record it holds.",
)
@click.option("--name", help="Model name in the comment marker; default: 'name' in calibgate.yaml.")
@click.option("--output", "-o", type=_FILE, help="Write the markdown here instead of standard output.")
@click.option("--link", "link_values", multiple=True, metavar="LABEL=URL", help="Extra link at the end (repeatable).")
@click.option(
    "--max-chars",
    type=click.IntRange(2000, 65536),
    default=65000,
    show_default=True,
    help="Length budget; lowest-priority sections shrink first.",
)
@click.option("--summary", is_flag=True, help="Also append the report to $GITHUB_STEP_SUMMARY.")
@click.option(
    "--annotations/--no-annotations",
    default=None,
    help="Print ::error/::warning lines for FAIL, ERROR and WARN checks [default: on in GitHub Actions].",
)
@click.option("--post", is_flag=True, help="Create or update the PR comment (GITHUB_TOKEN, GITHUB_API_URL).")
@click.option("--repo", help="owner/name to post to [default: $GITHUB_REPOSITORY].")
@click.option("--pr", type=click.IntRange(min=1), help="PR number to post to [default: the pull_request event's].")
@click.option("--expect-head-sha", help="Post only if the PR's head commit is this sha (for untrusted PR numbers).")
def report(
    decision_path,
    plan_path,
    candidate_eval,
    baseline_eval,
    export_path,
    run_dir,
    records_dir,
    name,
    output,
    link_values,
    max_chars,
    summary,
    annotations,
    post,
    repo,
    pr,
    expect_head_sha,
) -> None:
    """Render the gate's PR report in markdown: decision first, then the evidence.

    Signals and plan reasons, metrics against the baseline with deltas and
    intervals, per-class regressions, latency and size, learning curve and
    per-class charts (mermaid), suspect labels (collapsed). It starts with a
    hidden marker, so --post updates the same comment on every re-run.
    """
    from calibgate import api
    from calibgate.report.inputs import load_records
    from calibgate.settings import load_config

    links = collect_links(link_values)
    repo, pr = default_repo(repo), default_pr(pr)
    if post and (repo is None or pr is None):
        raise click.UsageError("--post needs --repo owner/name and --pr N (or a pull_request event)")
    check_summary_target(summary)
    if output is not None:
        from calibgate.runs.guard import check_outside_runs

        check_outside_runs(output, what="-o", file=True)
    records = load_records(
        {
            "decision": decision_path,
            "plan": plan_path,
            "candidate_eval": candidate_eval,
            "baseline_eval": baseline_eval,
            "export": export_path,
        },
        run=run_dir,
        records=records_dir,
    )
    name = name or load_config().name
    markdown = api.render_report(**records, links=links, max_chars=max_chars, name=name)
    if output is not None:
        from calibgate.paths import atomic_write_text

        atomic_write_text(output, markdown)
    else:
        click.echo(markdown, nl=False)
    emit_actions_output(records["decision"], markdown, summary=summary, annotations=annotations)
    if post:
        post_comment(markdown, repo=repo, pr=pr, expect_head_sha=expect_head_sha)
