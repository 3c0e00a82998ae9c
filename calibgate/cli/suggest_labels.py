"""``calibgate suggest-labels``: which production texts to label next."""

from __future__ import annotations

import json
from pathlib import Path

import click

from calibgate.cli.options import SEED

from calibgate.cli._common import default_repo

EPILOG = """\b
Scores every pool text: uncertainty under the production model (1 - margin
between its two best labels), how unlike the production model's training data
it is (a domain classifier's score), then picks --budget texts by weighted
k-center greedy in embedding space, so the picks are diverse. Writes JSONL (one
object per text: text, an empty label to fill in, rank and the reason), ready
for a labeling tool; label them into data.incoming and run 'calibgate retrain'.
Random sampling is the honest baseline: see benchmarks/RESULTS-suggest-labels.md.

\b
Examples:
  calibgate suggest-labels --pool production.jsonl --budget 50 -o to-label.jsonl
  calibgate suggest-labels --pool prod.jsonl --model runs/2026-11-30T10-00-00 --budget 20
  calibgate suggest-labels --pool prod.jsonl --comment --repo octo/models   # on the open retraining PR

Exit codes: 0 written, 2 bad input or configuration, 3 GitHub or environment failure.
"""


@click.command("suggest-labels", epilog=EPILOG)
@click.option(
    "--pool", type=click.Path(dir_okay=False, path_type=Path), help="Unlabeled JSONL texts to choose from [default: data.production]."
)
@click.option("--budget", type=click.IntRange(1, 100_000), default=50, show_default=True, help="How many texts to pick.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="calibgate.yaml [default: found upwards].")
@click.option("--policy", type=click.Path(dir_okay=False, path_type=Path), help="Policy file [default: the config's].")
@click.option(
    "--model",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory that scores uncertainty [default: the production version from the registry].",
)
@click.option(
    "--reference",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Training data JSONL for the shift score [default: the production version's, from its lineage].",
)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSONL here [default: stdout].")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the subsample and tie-breaks.")
@click.option("--comment", is_flag=True, help="Also post the list on the open retraining PR (needs GITHUB_TOKEN).")
@click.option("--repo", help="owner/name for --comment [default: $GITHUB_REPOSITORY].")
def suggest_labels(pool, budget, config, policy, model, reference, out, seed, comment, repo) -> None:
    """Pick the unlabeled texts most worth labeling: uncertain, from shifted regions, diverse."""
    from calibgate import api

    result = api.suggest_labels(
        pool=pool, budget=budget, config=config, policy=policy, model=model, reference=reference, out=out,
        seed=seed, repo=default_repo(repo) if comment else None, comment=comment,
    )
    if out is None:
        for record in result.records():
            click.echo(json.dumps(record, ensure_ascii=False))
    for note in result.notes:
        click.echo(f"calibgate: note: {note}", err=True)
    where = f" to {out}" if out is not None else ""
    click.echo(f"calibgate: {len(result.suggestions)} of {result.n_pool} texts suggested{where}", err=True)
    if result.comment is not None:
        click.echo(f"calibgate: comment {result.comment['action']} on pull request #{result.comment['pull']}", err=True)
