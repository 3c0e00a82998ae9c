"""``calibgate policy``: validate policy files and print their JSON Schema."""

from __future__ import annotations

import sys

import click

from calibgate.errors import EXIT_BAD_INPUT


@click.group(epilog="Example: calibgate policy check policies/*.yaml")
def policy() -> None:
    """Policy files (policies/*.yaml): thresholds, approvals and planner settings in git."""


@policy.command(epilog="\b\nExamples:\n  calibgate policy check policies/default.yaml\n  pre-commit: entry: calibgate policy check, files: ^policies/.*\\.ya?ml$")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def check(files: tuple[str, ...]) -> None:
    """Validate policy FILES: exit 0 when all are valid, 2 with one 'file:line: problem' line each."""
    from calibgate import api

    problems = api.check_policy(list(files), warnings=True)
    for problem in problems:
        click.echo(str(problem), err=True)
    if any(p.severity == "error" for p in problems):
        sys.exit(EXIT_BAD_INPUT)
    warned = sum(p.severity == "warning" for p in problems)
    click.echo(f"{len(files)} policy file(s) valid" + (f" ({warned} warning(s))" if warned else ""))


@policy.command(epilog="Example: calibgate policy schema > policy.schema.json")
def schema() -> None:
    """Print the JSON Schema of policy files (for editors: yaml-language-server $schema)."""
    from calibgate.policy.schema import policy_json_schema_text

    click.echo(policy_json_schema_text(), nl=False)
