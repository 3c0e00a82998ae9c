"""``calibgate drift``: has production data moved away from the training data? Open an issue if so."""

from __future__ import annotations

from pathlib import Path

import click

from calibgate.cli.report import default_repo, parse_links

EPILOG = """\b
Embeds a fresh production sample and the production model's training data with
the frozen encoder and measures the domain-classifier AUC. Above the threshold
it opens a retraining issue with the evidence (or comments on the open one);
otherwise it prints one line.

\b
Examples:
  calibgate drift --dry-run                          # print what the issue would say
  calibgate drift --production prod-2026-11.jsonl --repo octo/models   # needs GITHUB_TOKEN

Exit codes: 0 measured (drift or not), 2 bad input or configuration, 3 GitHub or environment failure.
"""


@click.command("drift", epilog=EPILOG)
@click.option(
    "--config", type=click.Path(dir_okay=False, path_type=Path), help="calibgate.yaml [default: found upwards]."
)
@click.option(
    "--production",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Production sample JSONL [default: data.production].",
)
@click.option(
    "--reference", type=click.Path(dir_okay=False, path_type=Path), help="Training data JSONL [default: data.train]."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.5, 1.0),
    help="AUC above which it is drift [default: the policy's planner.max_shift_auc, 0.75 without a policy].",
)
@click.option("--repo", help="owner/name for the issue [default: $GITHUB_REPOSITORY].")
@click.option("--dry-run", is_flag=True, help="Print the issue instead of opening it.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the subsample and the domain classifier.")
@click.option("--link", "link_values", multiple=True, metavar="LABEL=URL", help="Link added to the issue (repeatable).")
def drift(config, production, reference, threshold, repo, dry_run, seed, link_values) -> None:
    """Compare production texts with the training data; on drift, open a retraining issue."""
    from calibgate import api
    from calibgate.report.actions import run_links

    result = api.drift(
        config=config,
        production=production,
        reference=reference,
        threshold=threshold,
        repo=None if dry_run else default_repo(repo),
        dry_run=dry_run,
        seed=seed,
        links={**run_links(), **parse_links(link_values)},
    )
    click.echo(f"calibgate: {result.summary}")
    if result.drifted and dry_run:
        click.echo(f"\n# {result.title}\n\n{result.body}", nl=False)
    elif result.issue is not None:
        click.echo(f"calibgate: issue #{result.issue.number} {result.issue.action}: {result.issue.url or ''}".rstrip())
