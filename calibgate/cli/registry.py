"""``calibgate registry``: versions and stages as git tags (gto-compatible), artifacts in the DVC remote."""

from __future__ import annotations

import click

GROUP_EPILOG = """\b
Tags: name@v1.2.0 (version), name#production#7 (stage), name@v1.2.0! (deprecated);
'gto show' reads the same registry. Exit codes: 0 ok, 2 refused (unknown
version, missing approvals, tampered artifact), 3 git/DVC failure.

\b
Examples:
  calibgate registry register runs/20260101-abc
  calibgate registry promote ticket-router@v1.2.0 --stage production --approved-by alice --approved-by bob
  calibgate registry rollback ticket-router --stage production --reason "latency regression"
  calibgate registry verify ticket-router@v1.2.0
  calibgate registry pull ticket-router@v1.2.0 --to runs/ticket-router-v1.2.0
"""

_remote = click.option("--remote", default=None, help="Git remote to fetch tags from and push to (default: origin, if any).")
_no_push = click.option("--no-push", is_flag=True, help="Tag locally only; do not fetch or push.")
_json = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
_name = click.option("--name", default=None, help="Model name, when REF is a bare version; default: calibgate.yaml's name.")


def _echo_json(obj) -> None:
    if isinstance(obj, list):
        click.echo("[" + ",\n".join(o.model_dump_json(indent=2) for o in obj) + "]")
    else:
        click.echo(obj.model_dump_json(indent=2))


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(*columns, title=escape(title), box=box.SIMPLE_HEAD, title_justify="left")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))  # approvers and messages come from tags anyone can push
    Console(width=160, highlight=False, soft_wrap=True).print(table)


def _metrics(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {metrics[k]:.3f}" for k in ("accuracy", "macro_f1") if k in metrics)


@click.group(epilog=GROUP_EPILOG)
def registry() -> None:
    """Model registry in git tags: register, list, show, promote, rollback, deprecate, verify."""


@registry.command(epilog="Example: calibgate registry register runs/20260101-abc --version v1.2.0")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--name", default=None, help="Model name (default: calibgate.yaml's name).")
@click.option("--version", default=None, help="Version vX.Y.Z (default: latest bumped by --bump; v1.0.0 first).")
@click.option("--bump", "bump_part", type=click.Choice(["major", "minor", "patch"]), default="minor", show_default=True,
              help="Part to bump when --version is not given.")
@click.option("--dvc-remote", default=None, help="DVC remote to store the run in (default: the project's default remote).")
@click.option("--store", default=None, help="Content-addressed directory store, for projects without a DVC remote.")
@click.option("--policy", default=None, help="Policy file whose sha256 is recorded (default: calibgate.yaml's).")
@click.option("--message", "-m", default="", help="Note recorded with the version.")
@_remote
@_no_push
@_json
def register(run_dir, name, version, bump_part, dvc_remote, store, policy, message, remote, no_push, as_json) -> None:
    """Register RUN_DIR as a new version: verify it, store it, tag name@vX.Y.Z with its lineage."""
    from calibgate import api

    info = api.register(
        run_dir, name=name, version=version, bump_part=bump_part, dvc_remote=dvc_remote, store=store, policy=policy,
        message=message, remote=remote, push=False if no_push else None, fetch=not no_push,
    )
    if as_json:
        _echo_json(info)
        return
    a = info.record.artifacts if info.record else None
    click.echo(f"registered {info.tag} (run {info.run_id}, commit {info.commit[:10]})")
    if a:
        click.echo(f"  artifacts: {len(a.files)} files, {a.size_bytes} bytes in {a.backend} {a.remote or ''} {a.url}".rstrip())


@registry.command(name="list", epilog="Example: calibgate registry list --json")
@click.option("--name", default=None, help="Only this model.")
@_json
def list_(name, as_json) -> None:
    """List registered versions with their stages and metrics."""
    from calibgate import api

    versions = api.list_versions(name)
    if as_json:
        _echo_json(versions)
        return
    if not versions:
        click.echo("no versions registered (calibgate registry register runs/<id>)")
        return
    _table("registry", ["version", "stages", "run", "metrics", "created", "status"], [
        [v.tag, ", ".join(v.stages) or "-", v.run_id or "-", _metrics(v.metrics) or "-", v.created_at[:19],
         "deprecated" if v.deprecated else "active"]
        for v in versions
    ])


@registry.command(epilog="Example: calibgate registry show ticket-router@v1.2.0")
@click.argument("ref")
@_name
@_json
def show(ref, name, as_json) -> None:
    """Show one version (REF = name@vX.Y.Z): lineage, metrics, artifacts and stage history."""
    from calibgate import api

    d = api.show_version(ref, name=name)
    if as_json:
        _echo_json(d)
        return
    rows = [["tag", d.tag], ["commit", d.commit], ["stages", ", ".join(d.stages) or "-"],
            ["status", "deprecated" if d.deprecated else "active"]]
    if d.record:
        r, lin = d.record, d.record.lineage
        rows += [["run", r.run_id], ["registered", f"{r.created_at} by {r.registered_by or '?'}"],
                 ["strategy", lin.strategy + (f" r={lin.lora_rank}" if lin.lora_rank else "")], ["base model", lin.base_model],
                 ["source commit", lin.git_commit], ["data (dvc md5)", lin.data_dvc_md5 or "-"],
                 ["policy", f"{lin.policy or '-'} {lin.policy_sha256[:12] + '...' if lin.policy_sha256 else ''}"],
                 ["test set", f"{r.test.get('source')} n={r.test.get('n')} sha256 {str(r.test.get('sha256'))[:12]}..."],
                 ["artifacts", f"{len(r.artifacts.files)} files, {r.artifacts.size_bytes} bytes, {r.artifacts.backend} {r.artifacts.url}"]]
        rows += [[f"metric {k}", f"{v:.4f}"] for k, v in sorted(r.metrics.items())]
    _table(f"{d.name} {d.version}", ["field", "value"], rows)
    if d.history:
        _table("stage history", ["#", "stage", "version", "action", "approved by", "reason"], [
            [str(e.counter), e.stage, e.version or "?", e.action, ", ".join(e.approved_by) or "-", e.reason or "-"] for e in d.history
        ])
        _rollout_evidence(d.history)


def _rollout_evidence(history) -> None:
    from calibgate.registry.rollout import describe

    rows = [[str(e.counter), e.stage, line] for e in history for line in describe(e.rollout)]
    if rows:
        _table("rollout evidence", ["#", "stage", "evidence"], rows)


@registry.command(epilog="Example: calibgate registry promote ticket-router@v1.2.0 --stage production --approved-by alice")
@click.argument("ref")
@click.option("--stage", default="production", show_default=True, help="Stage to assign; one the policy declares (approvals: or rollout.order).")
@click.option("--approved-by", "approved_by", multiple=True, help="An approver (repeat per approver); checked against the policy.")
@click.option("--policy", default=None, help="Policy with the approvals section (default: calibgate.yaml's).")
@click.option("--reason", default="", help="Why, recorded in the tag.")
@click.option("--gate", "gate_file", type=click.Path(dir_okay=False), default=None,
              help="Gate decision JSON ('calibgate gate --json') for the version's run; required where the policy says "
                   "require_gate. Without it the registry gates the version's recorded evidence against the stage's holder.")
@click.option("--evidence", "evidence", multiple=True, type=click.Path(dir_okay=False),
              help="Monitor report ('calibgate monitor --json') the policy's rollout: section asks for; repeat per report.")
@click.option("--override-gate", is_flag=True,
              help="Promote without a passing gate; only where the policy sets allow_gate_override, with --reason; recorded.")
@click.option("--approvals-from-run", "approval_run", type=click.IntRange(min=1), default=None, metavar="RUN_ID",
              help="Add the reviewers who approved this GitHub Actions run's environment (deployment review API; GITHUB_TOKEN).")
@click.option("--environment", default=None, help="Environment whose reviewers --approvals-from-run reads [default: the stage].")
@click.option("--github-repo", default=None, help="owner/name for --approvals-from-run [default: $GITHUB_REPOSITORY].")
@_name
@_remote
@_no_push
@_json
def promote(ref, stage, approved_by, policy, reason, gate_file, evidence, override_gate, approval_run, environment, github_repo,
            name, remote, no_push, as_json) -> None:
    """Assign version REF to a stage (a new name#stage#N tag), with the approvals and the passing gate the policy requires.

    In a workflow behind a protected environment, --approvals-from-run "$GITHUB_RUN_ID" records the environment's
    actual reviewers (not the actor who triggered the run).
    """
    from calibgate import api

    approved_by = list(approved_by)
    if approval_run is not None:
        from calibgate.cli._common import default_repo
        from calibgate.errors import ConfigError
        from calibgate.github import GitHubClient
        from calibgate.github.approvals import environment_reviewers

        repo = default_repo(github_repo)
        if not repo:
            raise ConfigError("--approvals-from-run needs the repository", fix="pass --github-repo owner/name or set GITHUB_REPOSITORY")
        approved_by += environment_reviewers(GitHubClient.from_env(), repo, approval_run, environment or stage)
    result = api.promote(ref, stage=stage, approved_by=approved_by, policy=policy, reason=reason, gate=gate_file,
                         evidence=list(evidence), override_gate=override_gate, name=name, remote=remote,
                         push=False if no_push else None, fetch=not no_push)
    _assignment(result, as_json)


@registry.command(epilog="Example: calibgate registry rollback ticket-router --reason 'p95 latency doubled'")
@click.argument("name", required=False)
@click.option("--stage", default="production", show_default=True, help="Stage to roll back.")
@click.option("--reason", default="", help="Why, recorded in the tag.")
@click.option("--approved-by", "approved_by", multiple=True, help="Approvers to record (not required for a rollback).")
@_remote
@_no_push
@_json
def rollback(name, stage, reason, approved_by, remote, no_push, as_json) -> None:
    """Re-assign the stage to its previous version (history is kept: a new tag, nothing deleted)."""
    from calibgate import api

    result = api.rollback(name, stage=stage, reason=reason, approved_by=list(approved_by), remote=remote,
                          push=False if no_push else None, fetch=not no_push)
    _assignment(result, as_json)


def _assignment(result, as_json: bool) -> None:
    if as_json:
        _echo_json(result)
        return
    r = result.record
    verb = "promoted" if r.action == "promote" else "rolled back"
    click.echo(f"{verb} {r.name}@{r.version} to {r.stage} ({result.tag}; previously {r.previous or 'none'})"
               + (f", pushed to {result.pushed_to}" if result.pushed_to else ""))


@registry.command(epilog="Example: calibgate registry deprecate ticket-router@v1.0.0 --reason 'trained on leaked data'")
@click.argument("ref")
@click.option("--reason", default="", help="Why, recorded in the tag.")
@_name
@_remote
@_no_push
@_json
def deprecate(ref, reason, name, remote, no_push, as_json) -> None:
    """Deprecate version REF (gto deregistration tag name@vX.Y.Z!); it can no longer be promoted."""
    from calibgate import api

    record = api.deprecate(ref, reason=reason, name=name, remote=remote, push=False if no_push else None, fetch=not no_push)
    if as_json:
        _echo_json(record)
    else:
        click.echo(f"deprecated {record.name}@{record.version}")


@registry.command(epilog="Example: calibgate registry verify ticket-router@v1.2.0")
@click.argument("ref")
@_name
@_json
def verify(ref, name, as_json) -> None:
    """Re-hash version REF's stored artifacts; exit 2 if any file differs from its record."""
    from calibgate import api

    result = api.verify_version(ref, name=name)
    if as_json:
        _echo_json(result)
    else:
        click.echo(f"ok: {result.name}@{result.version}: {result.files} files match their sha256 in {result.backend} {result.url}")


@registry.command(epilog="Example: calibgate registry pull ticket-router@v1.2.0 --to runs/ticket-router-v1.2.0")
@click.argument("ref")
@click.option("--to", "dest", required=True, type=click.Path(file_okay=False), help="Directory to restore the run into (must not exist).")
@_name
def pull(ref, dest, name) -> None:
    """Restore version REF's run directory from the artifact store (verified), e.g. to re-evaluate production."""
    from pathlib import Path

    from calibgate import api
    from calibgate.errors import RegistryError

    if Path(dest).exists():
        raise RegistryError(f"{dest} already exists", fix="pass a new directory to --to")
    out = api.fetch_version(ref, dest, name=name)
    click.echo(f"restored {ref} into {out}")
