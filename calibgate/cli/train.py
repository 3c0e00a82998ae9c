"""``calibgate train``: train the planned (or named) strategy into a run directory."""

from __future__ import annotations


import click

from calibgate.cli.options import BATCH, SEED
from calibgate.records.thresholds import MAX_LORA_RANK


@click.command(epilog="""\b
Examples:
  calibgate train                                   # follow the plan (runs the planner)
  calibgate train --plan plan.json                  # follow a saved plan
  calibgate train --strategy lora --lora-rank 16 --epochs 5
  calibgate train --strategy embedding-probe --train datasets/train.jsonl
""")
@click.option("--strategy", metavar="NAME", help="embedding-probe, retrieval, lora or full-finetune (default: the plan's).")
@click.option("--lora-rank", type=click.IntRange(1, MAX_LORA_RANK), metavar="R", help="LoRA rank (default: the plan's, else 8).")
@click.option("--epochs", type=click.IntRange(1, 10_000), metavar="N", help="Most epochs for lora / full-finetune (default 5; early stopping restores the best).")
@click.option("--plan", "plan_path", type=click.Path(dir_okay=False), help="A plan JSON from 'calibgate plan --json' to follow.")
@click.option("--train", "train_path", type=click.Path(dir_okay=False), help="Labeled JSONL to train on (default: data.train).")
@click.option("--model", help="Base encoder: a local model directory (default: the config's model).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="calibgate.yaml (default: found upwards from here).")
@click.option("--runs-dir", type=click.Path(file_okay=False), help="Where runs go (default: the config's runs_dir).")
@click.option("--run-id", help="Name of the run directory (default: time, strategy and a random suffix).")
@click.option("--seed", type=SEED, help="Random seed (default: the config's seed).")
@click.option("--batch-size", type=BATCH, help="Training batch size (default: 16 on CPU, memory-aware on GPU).")
@click.option("--modifier", "modifiers", multiple=True, help="class-weighted-loss, resample or early-stopping (repeatable; default: the plan's).")
@click.option("--reason", default=None, help="Why --strategy overrides the plan (recorded in the run with the plan).")
@click.option("--json", "as_json", is_flag=True, help="Print the run manifest as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train(strategy, lora_rank, epochs, plan_path, train_path, model, config_path, runs_dir, run_id, seed, batch_size, modifiers,
          reason, as_json, quiet):
    """Train a model and write a self-contained, hashed run directory (runs/<id>)."""
    from calibgate.api import train as run_train

    result = run_train(
        config=config_path, strategy=strategy, lora_rank=lora_rank, epochs=epochs, plan=plan_path,
        train_path=train_path, model=model, runs_dir=runs_dir, seed=seed, batch_size=batch_size,
        modifiers=list(modifiers) if modifiers else None, run_id=run_id, progress=not quiet, reason=reason,
    )
    m = result.manifest
    if as_json:
        click.echo(m.model_dump_json(indent=2))
        return
    rank = f" r{m.lora_rank}" if m.lora_rank else ""
    val = result.best_validation_accuracy
    click.echo(
        f"trained {m.strategy}{rank} on {m.data.get('n')} rows in {m.train_seconds:.1f}s"
        + (f", validation accuracy {val:.3f}" if val is not None else "")
    )
    for note in (result.override_note, result.tuning_note):
        if note:
            click.echo(f"  note: {note}")
    click.echo(f"run: {result.run_dir}")
