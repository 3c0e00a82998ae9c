"""``calibgate bench``: benchmarks that print measured figures."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click


@click.group("bench")
def bench():
    """Benchmarks that back calibgate's claims with measured figures.

    \b
    Example:
      calibgate bench regret ../shared/datasets/sst2 --quick
    """


@bench.command("regret")
@click.argument("datasets", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--quick", is_flag=True, help="Smoke-test sizes (120 train, 1 seed, 1 epoch): minutes, for CI.")
@click.option("--full-size", type=click.IntRange(10, 10_000_000), default=2000, show_default=True, help="Labeled examples every candidate trains on.")
@click.option("--test-size", type=click.IntRange(10, 10_000_000), default=2000, show_default=True, help="Test examples every candidate is scored on.")
@click.option("--sizes", default="100,300,500", show_default=True, help="Comma-separated calibration sizes.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds for the calibration samples.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("benchmarks/regret-cache"), show_default=True, help="Where trained-candidate results and plans are cached (small JSON, committed).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the markdown table here and the raw JSON beside it.")
@click.option("--model", help="Base encoder directory (default: the bundled all-MiniLM-L6-v2).")
@click.option("--write-priors", type=click.Path(dir_okay=False, path_type=Path), help="Write the planner's fine-tuning priors fitted on all the data sets here (the shipped file is calibgate/planner/priors.json).")
def regret(datasets, quick, full_size, test_size, sizes, seeds, cache_dir, output, model, write_priors):
    """Regret of the plan against training every candidate, and compute saved.

    Each DATASET is a directory with train.jsonl and test.jsonl. Every candidate
    is trained first; each data set is then planned with fine-tuning priors
    fitted on the other data sets only (leave one data set out).

    \b
    Example:
      calibgate bench regret ../shared/datasets/{banking77,sst2,sms_spam} -o benchmarks/RESULTS-regret.md
    """
    from calibgate import api
    from calibgate.bench.regret import BenchConfig
    from calibgate.errors import ConfigError
    from calibgate.settings import MAX_SEED

    def ints(text: str, what: str, low: int, high: int) -> tuple[int, ...]:
        example = "100,300" if what == "sizes" else "0,1,2"
        try:
            values = tuple(int(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"--{what} {text!r} is not a comma-separated list of integers", fix=f"e.g. --{what} {example}") from None
        if not values:
            raise ConfigError(f"--{what} is empty", fix=f"e.g. --{what} {example}")
        if bad := [v for v in values if not low <= v <= high]:
            raise ConfigError(f"--{what} {bad[0]} is outside {low}..{high}", fix=f"e.g. --{what} {example}")
        if len(set(values)) < len(values):
            raise ConfigError(f"--{what} {text!r} names a value twice: it would be counted twice in every mean", fix="give each value once")
        return values

    ctx = click.get_current_context()
    if quick and (given := [f"--{n.replace('_', '-')}" for n in ("full_size", "test_size", "sizes", "seeds")
                            if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT]):
        raise ConfigError(f"--quick fixes the sizes and seeds, so {', '.join(given)} would be ignored", fix="drop --quick, or drop " + ", ".join(given))
    if len({d.resolve() for d in datasets}) < len(datasets):
        raise ConfigError("a data set is named twice: it would be counted twice in every mean", fix="name each data set once")
    from calibgate.paths import check_writable_dir
    from calibgate.runs.guard import check_outside_runs

    check_outside_runs(cache_dir, what="--cache-dir")  # before the probe below writes anything into a sealed run
    check_writable_dir(cache_dir)  # before hours of training: a cache that cannot be written would lose them all
    from calibgate.paths import check_file_target

    targets = []  # every file the benchmark writes at its end, checked now: hours of training must not end in a refusal
    if output is not None:
        if output.suffix == ".json":
            raise ConfigError(f"-o {output}: the raw JSON goes beside the markdown as {output.with_suffix('.json').name}, "
                              "which would overwrite it", fix="name the markdown file, e.g. -o RESULTS-regret.md")
        targets += [("-o", output), ("-o", output.with_suffix(".json"))]
    if write_priors is not None:
        targets.append(("--write-priors", Path(write_priors)))
    for what, target in targets:
        check_outside_runs(target, what=what, file=True)
        check_file_target(target)
        check_writable_dir(target.parent)

    for d in datasets:
        for split in ("train.jsonl", "test.jsonl"):
            if not (d / split).exists():
                raise ConfigError(f"{d}: no {split}", fix="each data set directory needs train.jsonl and test.jsonl")
    if quick:
        config = BenchConfig.quick(cache_dir=cache_dir)
    else:
        config = BenchConfig(full_size=full_size, test_size=test_size, calibration_sizes=ints(sizes, "sizes", 10, full_size), seeds=ints(seeds, "seeds", 0, MAX_SEED), cache_dir=cache_dir, model=model)
    if model:
        config = BenchConfig(**{**config.__dict__, "model": model})
    command = "calibgate " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv and sys.argv[0].endswith("calibgate") else "calibgate bench regret"
    raw = api.bench_regret(list(datasets), config=config, output=output, command=command, write_priors=write_priors, log=lambda m: click.echo(m, err=True))
    for size, s in raw["summary"]["by_calibration_size"].items():
        tau = "n/a" if s["kendall_tau"] is None else f"{s['kendall_tau']:.2f}"
        gap = "n/a" if s["gap_mae_points"] is None else f"{s['gap_mae_points']:.2f}"
        click.echo(
            f"calibration {size}: mean regret {s['mean_regret']:.2f} pts, worst {s['worst_regret']:.2f}, "
            f"compute {s['compute_share']:.0%} of training every candidate, tau {tau}, gap MAE {gap} pts"
        )
