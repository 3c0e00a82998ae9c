"""``calibgate evaluate``: score a run on the test set (and slices) beside the base model."""

from __future__ import annotations

import click

from calibgate.cli.options import RESAMPLES, SEED, run_option


@click.command(epilog="""\b
Examples:
  calibgate evaluate --run runs/latest
  calibgate evaluate --run runs/<id> --test datasets/test.jsonl --slice hard=hard_cases.jsonl
  calibgate evaluate --run runs/<id> --metric metrics/my_metric.py --json
""")
@run_option("Run directory written by 'calibgate train' (required).")
@click.option("--test", "test", type=click.Path(dir_okay=False), help="Labeled JSONL test set (default: data.test).")
@click.option("--slice", "slices", multiple=True, help="Extra labeled JSONL reported separately: PATH or NAME=PATH (repeatable).")
@click.option("--metric", "metrics", multiple=True, type=click.Path(), help="Local Hugging Face evaluate module (script or directory; repeatable).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="calibgate.yaml (default: found upwards from here).")
@click.option("--bootstrap", default=1000, show_default=True, type=RESAMPLES, help="Bootstrap resamples for the 95% intervals (0: none).")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Bootstrap seed.")
@click.option("--no-base", is_flag=True, help="Skip the frozen-embedding base model.")
@click.option("--unseen-labels-as-errors", "unseen_labels", is_flag=True,
              help="Score test labels the model lacks as errors instead of refusing the test set (a production model "
                   "against a candidate that adds a class).")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation record as JSON.")
def evaluate(run_dir, test, slices, metrics, config_path, bootstrap, seed, no_base, unseen_labels, as_json):
    """Evaluate a run: accuracy, macro-F1, calibration, per class, with bootstrap intervals.

    Writes <run>/evaluation.json and <run>/metrics.json and re-hashes the run.
    """
    from calibgate.api import evaluate as run_evaluate

    result = run_evaluate(
        model=run_dir, test=test, slices=slices, metrics=metrics, config=config_path, bootstrap=bootstrap, seed=seed, base=not no_base,
        unseen_labels=unseen_labels,
    )
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    m = result.metrics
    ci = result.intervals.get("accuracy")
    rank = f" r{result.lora_rank}" if result.lora_rank else ""
    click.echo(f"{result.run_id} ({result.strategy}{rank}) on {result.test.n} rows of {result.test.source}")
    click.echo(
        f"  accuracy {m['accuracy']:.4f}" + (f" [{ci.low:.4f}, {ci.high:.4f}]" if ci else "")
        + f"  macro-F1 {m['macro_f1']:.4f}  ECE {m['ece']:.4f}  label validity {m['label_validity_rate']:.3f}"
    )
    if result.base_model:
        b = result.base_model
        click.echo(f"  base model (frozen probe): accuracy {b['accuracy']:.4f}  macro-F1 {b['macro_f1']:.4f}")
    for s in result.slices:
        click.echo(f"  slice {s.name}: n {s.n}  accuracy {s.accuracy:.4f}  macro-F1 {s.macro_f1:.4f}")
    extra = {k: v for k, v in m.items() if k not in ("accuracy", "macro_f1", "ece", "label_validity_rate")}
    for k, v in extra.items():
        click.echo(f"  {k} {v:.4f}")
    for w in result.warnings:
        click.echo(f"  warning: {w}", err=True)
