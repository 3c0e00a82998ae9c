"""``calibgate monitor``: latency, errors, label shares, confidence and shadow agreement from a prediction log."""

from __future__ import annotations

import click

EPILOG = """\b
Reads the JSONL log 'calibgate serve --log' writes. Per served model:
requests, server-error rate, p50/p95/p99 latency, predicted-label shares and
mean confidence vs the version's evaluation (from the registry, or
--evaluation), low-confidence rate; with a shadow model: agreement, the
disagreeing examples and the p95 latency ratio. Thresholds come from the
policy's monitor: section. The JSON (schema calibgate/schemas/monitor.schema.json)
is the evidence 'registry promote --evidence' reads.

\b
Exit codes: 0 every threshold met; 1 a threshold failed (or a figure could
not be computed); 2 bad input (no log, malformed line, bad policy).

\b
Examples:
  calibgate monitor --log predictions.jsonl
  calibgate monitor --log shadow.jsonl --policy policies/default.yaml --json > shadow.json
  calibgate monitor --log canary.jsonl --markdown
"""


@click.command(epilog=EPILOG)
@click.option("--log", "log_path", required=True, type=click.Path(dir_okay=False), help="Prediction log (calibgate serve --log).")
@click.option("--policy", default=None, help="Policy with the monitor: thresholds (default: calibgate.yaml's, when present).")
@click.option("--evaluation", type=click.Path(dir_okay=False), default=None,
              help="evaluation.json of the primary model (default: its evaluation in the registry).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print the report as markdown.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write the output to a file instead of stdout (the table is written as markdown).")
def monitor(log_path, policy, evaluation, as_json, as_markdown, output) -> None:
    """Summarise a prediction log and check the policy's monitor thresholds."""
    from calibgate import api
    from calibgate.errors import ConfigError
    from calibgate.report.monitor_view import markdown, terminal

    if as_json and as_markdown:
        raise ConfigError("--json and --markdown are exclusive", fix="pick one")
    if output:
        from calibgate.runs.guard import check_outside_runs

        check_outside_runs(output, what="-o", file=True)
    report = api.monitor(log_path, policy=policy or _config_policy(), evaluation=evaluation)
    if as_json:
        text = report.model_dump_json(indent=2) + "\n"
    elif as_markdown:
        text = markdown(report)
    else:
        text = None
    if output:
        from calibgate.paths import atomic_write_text

        atomic_write_text(output, text if text is not None else markdown(report))
    elif text is not None:
        click.echo(text, nl=False)
    else:
        terminal(report)
    if report.status != "pass":
        raise SystemExit(1)


def _config_policy():
    from calibgate.settings import find_config, load_config

    found = find_config()
    if not found:
        return None
    config = load_config(found)
    path = config.path(config.policy)
    return path if path is not None and path.exists() else None
