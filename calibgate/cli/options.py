"""Options several commands share.

``--run`` names a run directory (evaluate, export, predict); ``--model``
names a base encoder (plan, train). ``--model`` used to mean a run directory
in evaluate / export / predict too: it still works there, hidden, and says on
stderr that it is deprecated.
"""

from __future__ import annotations

import functools

import click

from calibgate.settings import MAX_BATCH, MAX_BOOTSTRAP, MAX_SEED, MAX_TARGET_SIZE, MAX_THREADS

# Every numeric option has both bounds: a value past them is a usage error (exit 2) here, not a crash, a hang or an
# allocation of terabytes somewhere below.
SEED = click.IntRange(0, MAX_SEED)  # numpy's and torch's seeds are unsigned 32-bit
THREADS = click.IntRange(1, MAX_THREADS)
BATCH = click.IntRange(1, MAX_BATCH)
RESAMPLES = click.IntRange(0, MAX_BOOTSTRAP)
COUNT = click.IntRange(1, MAX_TARGET_SIZE)  # example counts and request limits


def run_option(help_text: str):
    """``--run DIR`` plus the hidden, deprecated ``--model DIR`` alias; the command receives ``run_dir``."""

    def decorator(command):
        @functools.wraps(command)
        def wrapper(*args, run_dir=None, deprecated_model=None, **kwargs):
            if run_dir is not None and deprecated_model is not None:
                raise click.UsageError("give the run directory once, with --run (--model is its deprecated alias)")
            if deprecated_model is not None:
                click.echo("calibgate: warning: --model for a run directory is deprecated; use --run", err=True)
                run_dir = deprecated_model
            if run_dir is None:
                raise click.UsageError("Missing option '--run' (the run directory written by 'calibgate train')")
            return command(*args, run_dir=run_dir, **kwargs)

        wrapper = click.option("--model", "deprecated_model", hidden=True, type=click.Path(file_okay=False),
                               help="Deprecated alias of --run.")(wrapper)
        return click.option("--run", "run_dir", metavar="DIR", type=click.Path(file_okay=False), help=help_text)(wrapper)

    return decorator
