"""Every command's bad usage is one line on stderr naming the problem and the fix, exit code 2.

The command tree is walked, so a new command or option is covered without
editing this file: an unknown option, a missing required option, a value
below an IntRange's minimum, a choice that is not one, a directory given
where a file is expected and a file where a directory is expected.
"""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from calibgate.cli import cli


def _leaves(group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _leaves(command, click.Context(command, parent=ctx, info_name=name), path + (name,))
        else:
            yield path + (name,), command


LEAVES = list(_leaves(cli, click.Context(cli, info_name="calibgate")))


def _bad_usages(command: click.Command, tmp_path) -> list[tuple[str, list[str]]]:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x\n")
    cases = [("unknown option", ["--no-such-option-anywhere"])]
    required = [p for p in command.params if isinstance(p, click.Option) and p.required]
    if required:
        cases.append(("missing required option", []))
    for p in command.params:
        if isinstance(p, click.Argument) and isinstance(p.type, click.Path):
            given = str(a_file) if not p.type.file_okay else (str(tmp_path) if not p.type.dir_okay else None)
            if given is not None:
                cases.append((f"argument {p.name} of the wrong kind", [given]))
        if not isinstance(p, click.Option) or p.is_flag or not p.opts[0].startswith("--"):
            continue
        opt = p.opts[0]
        if isinstance(p.type, click.IntRange) and p.type.min is not None:
            cases.append((f"{opt} below its minimum", [opt, str(int(p.type.min) - 1 - int(bool(p.type.min_open)))]))
        elif isinstance(p.type, click.Choice):
            cases.append((f"{opt} not a choice", [opt, "no-such-choice"]))
        elif isinstance(p.type, click.Path) and not p.type.dir_okay:
            cases.append((f"{opt} given a directory", [opt, str(tmp_path)]))
        elif isinstance(p.type, click.Path) and not p.type.file_okay:
            cases.append((f"{opt} given a file", [opt, str(a_file)]))
        elif isinstance(p.type, click.types.IntParamType):
            cases.append((f"{opt} not a number", [opt, "many"]))
    return cases


def test_the_tree_is_walked():
    names = {" ".join(path) for path, _ in LEAVES}
    assert {"plan", "train", "evaluate", "export", "predict", "gate", "registry pull", "policy check"} <= names


@pytest.mark.parametrize("path,command", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_bad_usage_is_one_line_and_exit_2(path, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    cases = _bad_usages(command, tmp_path)
    assert cases
    for what, args in cases:
        result = runner.invoke(cli, [*path, *args])
        err = result.stderr.strip().splitlines()
        assert result.exit_code == 2, (what, args, result.exit_code, result.output)
        assert len(err) == 1, (what, args, result.stderr)
        assert err[0].startswith("calibgate: error: ") and "; fix: " in err[0] and "--help" in err[0], err[0]
        assert "Traceback" not in result.output and result.stdout == ""


def test_a_bare_group_still_shows_its_help():
    for args in ([], ["registry"], ["policy"]):
        result = CliRunner().invoke(cli, args)
        assert "Usage:" in result.output and "Commands:" in result.output and "calibgate: error" not in result.output, args


def test_group_level_mistakes_are_one_line():
    runner = CliRunner()
    for args in (["no-such-command"], ["--no-such-option"], ["registry", "no-such-command"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)


@pytest.mark.parametrize("command", ["evaluate", "export", "predict"])
def test_run_directory_is_named_run_and_model_is_a_deprecated_alias(command, tmp_path, monkeypatch):
    """``--run`` names a run directory; ``--model`` still works there but says it is deprecated."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not-a-run").mkdir()
    runner = CliRunner()
    help_text = runner.invoke(cli, [command, "--help"]).output
    assert "--run" in help_text and "--model" not in help_text
    stdin = '{"text": "hi"}\n'
    new = runner.invoke(cli, [command, "--run", "not-a-run"], input=stdin)
    old = runner.invoke(cli, [command, "--model", "not-a-run"], input=stdin)
    assert new.exit_code == old.exit_code == 2
    assert "not a calibgate run" in new.stderr and "deprecated" not in new.stderr
    assert "--model for a run directory is deprecated; use --run" in old.stderr and "not a calibgate run" in old.stderr
    missing = runner.invoke(cli, [command])
    assert missing.exit_code == 2 and "Missing option '--run'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_every_seed_option_is_bounded_to_what_numpy_and_torch_accept():
    """A negative seed crashed the planner inside numpy (exit 3); every --seed is the shared SEED range, and the API and
    calibgate.yaml refuse the same values."""
    from calibgate.cli.options import SEED
    from calibgate.errors import ConfigError
    from calibgate.settings import MAX_SEED, ProjectConfig, check_seed

    seeds = [(path, p) for path, command in LEAVES for p in command.params if isinstance(p, click.Option) and "--seed" in p.opts]
    assert {" ".join(path) for path, _ in seeds} >= {"plan", "train", "evaluate", "drift", "suggest-labels"}
    for path, p in seeds:
        assert p.type is SEED, path
        too_big = CliRunner().invoke(cli, [*path, "--seed", str(MAX_SEED + 1)])
        assert too_big.exit_code == 2 and "is not in the range 0<=x<=4294967295" in too_big.stderr, path
    assert check_seed(0) == 0 and check_seed(MAX_SEED) == MAX_SEED
    for bad in (-1, MAX_SEED + 1, 1.5, True, "3"):
        with pytest.raises(ConfigError, match="is not an integer from 0"):
            check_seed(bad)
    with pytest.raises(ValueError):
        ProjectConfig(seed=-1)
