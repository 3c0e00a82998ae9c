"""``calibgate gate``: apply the policy to a candidate run against production."""

from __future__ import annotations

import sys

import click

GATE_EPILOG = """\b
Exit codes: 0 may promote, 1 blocked by the policy, 2 bad input (missing or
tampered run, invalid policy, no readable production version: a first model
is declared with --baseline none), 3 a check could not be evaluated, or the
production baseline failed verification (blocks).

\b
Examples:
  calibgate gate --candidate runs/20260101-abc
  calibgate gate --candidate runs/new --baseline runs/old --policy policies/strict.yaml --json
  calibgate gate --candidate runs/first --baseline none
  calibgate gate --candidate runs/new --policy-base origin/main   # block a policy weaker than main's
"""

_MARK = {"PASS": "ok  ", "WARN": "warn", "FAIL": "FAIL", "ERROR": "ERR ", "SKIPPED": "skip"}


@click.command(epilog=GATE_EPILOG)
@click.option("--candidate", required=True, type=click.Path(file_okay=False), help="Run directory of the candidate (runs/<id>).")
@click.option("--baseline", default="production", show_default=True,
              help="'production' (the registry's production version, verified), a run directory, or 'none' to "
                   "declare the first model (never inferred from a registry that is missing or unreadable).")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False), default=None,
              help="Policy file; default: calibgate.yaml's policy (policies/default.yaml).")
@click.option("--plan", type=click.Path(dir_okay=False), default=None, help="Plan JSON for signal gates; default: <candidate>/plan.json.")
@click.option("--name", default=None, help="Model name in the registry; default: calibgate.yaml's name.")
@click.option("--policy-base", default=None, metavar="REF",
              help="Git revision whose policy this one must not be weaker than (the policy_change check); "
                   "default: origin/$GITHUB_BASE_REF in a pull request's workflow, else no comparison.")
@click.option("--json", "as_json", is_flag=True, help="Print the GateDecision as JSON.")
def gate(candidate: str, baseline: str, policy_path: str | None, plan: str | None, name: str | None,
         policy_base: str | None, as_json: bool) -> None:
    """Decide whether a candidate run may be promoted under the policy (a failed gate is exit 1, not an error)."""
    from calibgate import api

    decision = api.gate_run(candidate, baseline=baseline, policy=policy_path, plan=plan, name=name, policy_base=policy_base)
    if as_json:
        click.echo(decision.model_dump_json(indent=2))
    else:
        click.echo(f"gate: {decision.decision.upper()}  candidate {decision.candidate}  baseline {decision.baseline or 'none'}  policy {decision.policy}")
        for check in decision.checks:
            click.echo(f"  {_MARK[check.status]}  {check.id}: {check.message}")
        click.echo(decision.summary)
    sys.exit(decision.exit_code)
