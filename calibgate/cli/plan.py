"""``calibgate plan``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from calibgate.cli.options import COUNT, SEED


@click.command("plan")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path), help="Labeled JSONL ({\"text\", \"label\"}); default: data.calibration in calibgate.yaml.")
@click.option("--production", type=click.Path(dir_okay=False, path_type=Path), help="Unlabeled production sample (JSONL with \"text\") for the domain-shift signal; default: data.production.")
@click.option("--target-size", type=COUNT, help="Labeled examples training will use; default: size of data.train.")
@click.option("--model", help="Base encoder: a local Hugging Face model directory (default: the bundled all-MiniLM-L6-v2).")
@click.option("--policy", type=click.Path(dir_okay=False, path_type=Path), help="Policy file whose 'planner' section sets thresholds and tolerance.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Project config (default: calibgate.yaml found upwards from here).")
@click.option("--folds", type=click.IntRange(2, 50), default=5, show_default=True, help="Cross-validation folds for the probes.")
@click.option("--seed", type=SEED, help="Random seed (default: the config's seed, 0).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON object (schema: calibgate/schemas/plan.schema.json).")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print the plan as markdown for a PR comment.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Also write the plan JSON to this file.")
@click.option("--no-cache", is_flag=True, help="Recompute embeddings instead of reading the on-disk cache.")
@click.option("--fast", is_flag=True, help="Frozen-embedding signals only: skip measuring fine-tuning (its predictions are then priors).")
def plan(calibration, production, target_size, model, policy, config, folds, seed, as_json, as_markdown, output, no_cache, fast):
    """Measure a labeled calibration set and recommend the cheapest adaptation that will do.

    Signals on frozen embeddings: separability, label noise, class imbalance,
    data starvation, domain shift against production, duplicates; and a
    measured fine-tuning signal (a probe on the encoder's per-layer hidden
    states, cross-fitted, which label noise then reads too; skipped with
    --fast). Each candidate (embedding-probe, retrieval, lora at ranks, full-finetune) gets
    a predicted accuracy and training cost; the plan picks the cheapest within
    the policy's tolerance of the best, or says to fix / collect labels first.

    \b
    Examples:
      calibgate plan                                  # the project's data (calibgate.yaml)
      calibgate plan --calibration labeled.jsonl --production prod.jsonl --target-size 4000
      calibgate plan --json > plan.json
      calibgate plan --fast                           # frozen-only: seconds, fine-tuning gains are priors
      calibgate plan --markdown > plan.md
    """
    if as_json and as_markdown:
        raise click.UsageError("choose one of --json and --markdown")
    if output is not None:
        from calibgate.runs.guard import check_outside_runs

        check_outside_runs(output, what="-o", file=True)
    from calibgate import api

    result = api.plan(
        config=config,
        calibration=calibration,
        production=production,
        target_size=target_size,
        model=model,
        policy=policy,
        folds=folds,
        seed=seed,
        cache=not no_cache,
        progress=sys.stderr.isatty(),
        fast=fast,
    )
    # rendered before -o is written: a view that fails must not leave the plan file behind it
    if as_json:
        shown = result.model_dump_json(indent=2) + "\n"
    elif as_markdown:
        from calibgate.report.plan_view import render_markdown

        shown = render_markdown(result)
    else:
        shown = _terminal_view(result)
    if output is not None:
        from calibgate.data.jsonl import write_text_atomic

        write_text_atomic(output, result.model_dump_json(indent=2) + "\n")
    click.echo(shown, nl=False)


def _terminal_view(result) -> str:
    """The rich tables as text: ANSI styles when stdout is a terminal (and colour is allowed), plain otherwise."""
    import io

    from rich.console import Console

    from calibgate.report.plan_view import render_terminal

    tty = sys.stdout.isatty()
    buffer = io.StringIO()
    console = Console(file=buffer, width=Console().width if tty else 120, force_terminal=tty, no_color=None if tty else True)
    render_terminal(result, console)
    return buffer.getvalue()
