"""``calibgate drift``: has production data moved away from the production model's training data?"""

from __future__ import annotations

from pathlib import Path

import click

from calibgate.cli.options import SEED

from calibgate.cli._common import collect_links, default_repo

EPILOG = """\b
Compares a fresh production sample with the training data of the version in
production (read with DVC at the commit its registry record names), two ways:
a domain classifier on frozen embeddings (AUC) and black-box shift on the
production model's own outputs (predicted-label shares: chi-square; confidence:
KS; Rabanser et al. 2019). Thresholds: the policy's 'drift:' section. On drift
it opens an issue with the evidence and the texts worth labeling (or comments
on the open one); otherwise it prints one line. --out writes drift.json,
drift.md and to-label.jsonl for 'calibgate retrain --drift DIR'.

\b
Examples:
  calibgate drift --dry-run                          # print what the issue would say
  calibgate drift --dry-run --out drift-out          # the scheduled workflow's first step
  calibgate drift --production prod-2026-11.jsonl --repo octo/models   # needs GITHUB_TOKEN, issues: write

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
    "--reference",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Training data JSONL [default: the production version's, from its lineage; data.train before any].",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.5, 1.0),
    help="AUC above which it is drift [default: policy drift.max_domain_auc, else planner.max_shift_auc].",
)
@click.option("--policy", type=click.Path(dir_okay=False, path_type=Path), help="Policy file [default: the config's].")
@click.option(
    "--model",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory whose outputs are compared [default: the production version from the registry].",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Write drift.json, drift.md, to-label.jsonl here.")
@click.option("--repo", help="owner/name for the issue [default: $GITHUB_REPOSITORY].")
@click.option("--dry-run", is_flag=True, help="Print the issue instead of opening it.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the subsample and the domain classifier.")
@click.option("--link", "link_values", multiple=True, metavar="LABEL=URL", help="Link added to the issue (repeatable).")
def drift(config, production, reference, threshold, policy, model, out, repo, dry_run, seed, link_values) -> None:
    """Compare production texts with the production model's training data; on drift, open an issue."""
    from calibgate import api

    result = api.drift(
        config=config,
        production=production,
        reference=reference,
        threshold=threshold,
        policy=policy,
        model=model,
        out=out,
        repo=None if dry_run else default_repo(repo),
        dry_run=dry_run,
        seed=seed,
        links=collect_links(link_values),
    )
    click.echo(f"calibgate: {result.summary}")
    if result.drifted and dry_run:
        click.echo(f"\n# {result.title}\n\n{result.body}", nl=False)
    elif result.issue is not None:
        click.echo(f"calibgate: issue #{result.issue.number} {result.issue.action}: {result.issue.url or ''}".rstrip())
