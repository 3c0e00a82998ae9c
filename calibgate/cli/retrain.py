"""``calibgate retrain``: newly labeled data -> new DVC data version -> re-plan -> a pull request the gate judges."""

from __future__ import annotations

import json
from pathlib import Path

import click

from calibgate.cli._common import default_repo

EPILOG = """\b
Merges the labeled rows under data.incoming into data.train (duplicates
skipped, conflicting labels reported, unknown labels refused), runs 'dvc add'
and 'dvc push' for data.dvc_target, re-plans, and opens a pull request on the
branch <drift.retrain_branch>/<name> that changes <dvc_target>.dvc, with the
merge report, the plan and (with --drift) the drift evidence and the texts
worth labeling. A second run while that PR is open updates it. A failure at
any step leaves no branch and no pull request; the workspace is restored
either way. Without new rows it does nothing and says so.

\b
Examples:
  calibgate retrain --dry-run                                  # merge + dvc add + plan, publish nothing
  calibgate retrain --repo octo/models --drift drift-out --json   # needs GITHUB_TOKEN

Exit codes: 0 done (or nothing to do), 2 bad input or configuration, 3 DVC, GitHub or environment failure.
"""


@click.command("retrain", epilog=EPILOG)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="calibgate.yaml [default: found upwards].")
@click.option("--policy", type=click.Path(dir_okay=False, path_type=Path), help="Policy file [default: the config's].")
@click.option("--repo", help="owner/name for the pull request [default: $GITHUB_REPOSITORY].")
@click.option("--base", default="main", show_default=True, help="Branch the pull request targets.")
@click.option(
    "--drift", "drift_dir", type=click.Path(path_type=Path), help="'calibgate drift --out' directory to quote in the PR."
)
@click.option("--dvc-remote", help="DVC remote to push the data to [default: the configured default].")
@click.option("--allow-new-labels", is_flag=True, help="Accept labels the training data does not have yet.")
@click.option("--dry-run", is_flag=True, help="Merge, dvc add and re-plan, but push and open nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line (action, branch, pull, counts).")
def retrain(config, policy, repo, base, drift_dir, dvc_remote, allow_new_labels, dry_run, as_json) -> None:
    """Merge newly labeled data, version it with DVC, re-plan, and open or update the retraining PR."""
    from calibgate import api

    result = api.retrain(
        config=config, policy=policy, repo=None if dry_run else default_repo(repo), base=base, drift=drift_dir,
        dvc_remote=dvc_remote, allow_new_labels=allow_new_labels, dry_run=dry_run,
    )
    if as_json:
        click.echo(json.dumps(result.summary()))
        return
    click.echo(f"calibgate: {result.reason}")
    if result.merge is not None and result.merge.added:
        click.echo(
            f"calibgate: {len(result.merge.added)} rows added, {result.merge.duplicates} duplicates, "
            f"{len(result.merge.conflicts)} conflicts; data md5 {result.data_md5}; plan: {result.plan_strategy}"
        )
    if result.pull_url:
        click.echo(f"calibgate: {result.pull_url}")
    if dry_run and result.body:
        click.echo(f"\n# {result.title}\n\n{result.body}", nl=False)
