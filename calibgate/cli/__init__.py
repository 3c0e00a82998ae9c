"""The ``calibgate`` command line: a thin click layer over :mod:`calibgate.api`.

Command modules load lazily, so ``calibgate --help`` never imports torch.
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import io
import os
import sys

import click

from calibgate import __version__
from calibgate.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, CalibgateError, one_line
from calibgate.paths import MACHINE_ERRNOS

# calibgate never downloads models or metrics, and its own progress bars are enough
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

# command name -> "module:attribute"; each module owns one command or group
COMMANDS = {
    "plan": "calibgate.cli.plan:plan",
    "train": "calibgate.cli.train:train",
    "evaluate": "calibgate.cli.evaluate:evaluate",
    "export": "calibgate.cli.export:export",
    "predict": "calibgate.cli.predict:predict",
    "serve": "calibgate.cli.serve:serve",
    "monitor": "calibgate.cli.monitor:monitor",
    "policy": "calibgate.cli.policy:policy",
    "registry": "calibgate.cli.registry:registry",
    "gate": "calibgate.cli.gate:gate",
    "report": "calibgate.cli.report:report",
    "ci": "calibgate.cli.ci:ci",
    "drift": "calibgate.cli.drift:drift",
    "suggest-labels": "calibgate.cli.suggest_labels:suggest_labels",
    "retrain": "calibgate.cli.retrain:retrain",
    "bench": "calibgate.cli.bench:bench",
}

EPILOG = """\b
Exit codes: 0 success (gate: may promote), 1 gate blocked,
2 bad input or configuration, 3 internal or environment failure,
130 / 143 interrupted (Ctrl-C / SIGTERM).

\b
Examples:
  calibgate plan                                   # the project's datasets, from calibgate.yaml
  calibgate plan --calibration labeled.jsonl --production prod.jsonl --target-size 4000
  calibgate train && calibgate evaluate --run runs/latest
"""


class CalibgateClickError(click.ClickException):
    """A :class:`CalibgateError` rendered as one line on stderr, with its exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(one_line(message))  # an internal error's message may span lines; stderr gets one
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        try:
            click.echo(f"calibgate: error: {self.format_message()}", err=True, file=file)
        except (OSError, ValueError):  # stderr full or gone: the line is lost, the exit code must not be (it became 1)
            pass


# click >= 8.2 signals "no arguments: show the help" with a UsageError subclass; it is not a mistake
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def usage_error(exc: click.exceptions.UsageError) -> CalibgateClickError:
    """click's usage error (bad value, missing option, unknown option or command) as one line, exit code 2."""
    command = exc.ctx.command_path if exc.ctx is not None else "calibgate"
    message = " ".join(line.strip() for line in exc.format_message().splitlines() if line.strip()).rstrip(".")
    return CalibgateClickError(f"{command}: {message}; fix: see '{command} --help'", EXIT_BAD_INPUT)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click docs, 'Lazily Loading Subcommands').

    It also turns every :class:`CalibgateError` into one line and its exit
    code, and any other exception into exit code 3, unless ``--traceback``.
    """

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _NO_ARGS_IS_HELP:
            raise  # a bare group prints its help, as it should
        except click.exceptions.UsageError as exc:
            raise usage_error(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except _NO_ARGS_IS_HELP:
            raise
        except click.exceptions.UsageError as exc:  # a bad option of any subcommand: one line, exit 2
            if _traceback_requested(ctx):
                raise
            raise usage_error(exc) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except CalibgateError as exc:
            if _traceback_requested(ctx):
                raise
            raise CalibgateClickError(exc.format(), exc.exit_code) from None
        except KeyboardInterrupt:  # click's own handling says 'Aborted!' and exits 1, which reads as a blocking gate
            raise CalibgateClickError("interrupted; nothing half-written was kept; fix: run the command again",
                                      EXIT_INTERRUPTED) from None
        except Terminated as exc:
            raise CalibgateClickError(f"stopped by {exc.signal_name}; nothing half-written was kept; fix: run the "
                                      "command again", 128 + exc.signal_number) from None
        except BrokenPipeError as exc:
            if _stdout_closed():
                raise  # '| head' closed our output: click exits 1 quietly (non-zero: a gate piped away never passes)
            raise CalibgateClickError(f"internal error: BrokenPipeError: {exc} (rerun with --traceback and report it)",
                                      EXIT_INTERNAL) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence: exit 3, one line
            if _traceback_requested(ctx):
                raise
            if "surrogates not allowed" in str(exc):  # a path in bytes the locale cannot decode, in a JSON record
                raise CalibgateClickError(
                    "a path or text holds bytes this locale's encoding cannot decode, so it cannot go into a JSON record "
                    f"({sys.getfilesystemencoding()}); fix: run with PYTHONUTF8=1 (or LC_ALL=C.UTF-8), or rename the "
                    "path to ASCII", EXIT_BAD_INPUT) from None
            if isinstance(exc, OSError) and exc.errno in (*MACHINE_ERRNOS, errno.EBADF):  # the machine, not calibgate
                where = f" ({exc.filename})" if exc.filename else ""
                raise CalibgateClickError(f"{exc.strerror}{where}: the output could not be written; fix: free space on the "
                                          "device or redirect the output somewhere writable, then rerun", EXIT_INTERNAL) from None
            raise CalibgateClickError(
                f"internal error: {type(exc).__name__}: {exc} (rerun with --traceback and report it)", EXIT_INTERNAL
            ) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, target in COMMANDS.items() if _available(target)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None or not _available(target):
            return None
        module, attr = target.split(":")
        return refuse_empty_values(getattr(importlib.import_module(module), attr))


class NonEmpty(click.ParamType):
    """A string or path type that refuses ``""``: an empty value fell back to a default or to the current directory
    (``--dvc-remote ""`` pushed to the default remote, ``--out ""`` wrote into the working directory)."""

    def __init__(self, inner: click.ParamType):
        self.inner = inner
        self.name = inner.name

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("is empty: give a value, or leave the option out for its default", param, ctx)
        return self.inner.convert(value, param, ctx)

    def get_metavar(self, *args, **kwargs):
        return self.inner.get_metavar(*args, **kwargs)

    def shell_complete(self, ctx, param, incomplete):
        return self.inner.shell_complete(ctx, param, incomplete)

    def to_info_dict(self):
        return self.inner.to_info_dict()


def refuse_empty_values(command: click.Command) -> click.Command:
    """Every string and path parameter of ``command`` (and its subcommands) refuses ``""``, except where ``""`` is
    the default (``--message``, ``--reason``: empty means none)."""
    if getattr(command, "_calibgate_nonempty", False):
        return command
    for param in command.params:
        if isinstance(param.type, (click.types.StringParamType, click.Path)) and param.default != "":
            param.type = NonEmpty(param.type)
    for sub in getattr(command, "commands", {}).values():
        refuse_empty_values(sub)
    command._calibgate_nonempty = True
    return command


def _stdout_closed() -> bool:
    """Whether the reader of our standard output has gone (a broken pipe there, not on a socket): poll says POLLERR."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no fileno (captured output), or no poll on this platform
        return False


def _traceback_requested(ctx: click.Context) -> bool:
    return bool((ctx.obj or {}).get("traceback")) or os.environ.get("CALIBGATE_TRACEBACK") == "1"


def _available(target: str) -> bool:
    module = target.split(":")[0]
    return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="calibgate")
@click.option("--traceback", is_flag=True, help="Show the full traceback of an error (for bug reports).")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """calibgate: plan the cheapest adaptation that will do, gate every change, register what ships.

    Reads a small labeled calibration set, measures separability, label noise,
    imbalance, data starvation and domain shift on frozen embeddings, and
    recommends an adaptation with reasons; then trains, evaluates, exports,
    gates against production and records versions as git tags.
    """
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = traceback


class Terminated(BaseException):
    """SIGTERM (a CI job cancelled, a container stopped) raised where the process is, so every cleanup runs: the
    temporary run, export and pull directories are removed as on Ctrl-C, instead of being left behind."""

    def __init__(self, signal_number: int):
        import signal

        super().__init__(signal_number)
        self.signal_number = signal_number
        self.signal_name = signal.Signals(signal_number).name


def _terminate(signal_number, frame) -> None:
    raise Terminated(signal_number)


def _default_signals_in_child() -> None:
    """A forked child (cleanlab's multiprocessing pool) gets the default SIGTERM and SIGINT back. It inherited
    _terminate, so Pool.terminate()'s SIGTERM unwound a worker holding the pool's queue lock instead of ending it:
    a traceback on a successful plan, and once a plan that never finished. Ctrl-C is the parent's to report."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def install_signal_handlers() -> None:
    """SIGTERM raises :class:`Terminated` in this process, so its cleanups run; forked children keep the defaults."""
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    os.register_at_fork(after_in_child=_default_signals_in_child)


def main() -> None:
    """Console entry point."""
    _hold_closed_streams()
    install_signal_handlers()
    _check_working_directory()
    _tolerant_output()
    cli.main(prog_name="calibgate")


class _ClosedStdout(io.TextIOWrapper):
    """Standard output when the shell closed it (``>&-``): every write fails, as on a full disk (exit 3, one line)."""

    def write(self, text: str) -> int:
        if text:
            raise OSError(errno.EBADF, "standard output is closed")
        return 0


class _LossyStderr(io.TextIOWrapper):
    """Standard error whose writes cannot fail: a full log disk ('2>/dev/full') turned every exit code into 1 (the
    error line's write raised, and Python's default status won). The line is lost; the exit code is not."""

    def write(self, text: str) -> int:
        try:
            return super().write(text)
        except OSError:
            return len(text)

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:
            pass


def _hold_closed_streams() -> None:
    """With fd 1 or 2 closed, Python sets sys.stdout (sys.stderr) to None: click.echo then printed nothing and the
    command exited 0 (a gate's --json lost, 'never 0 on failure' broken), cleanlab's sys.stdout.flush() crashed plan,
    and the next file opened would have taken fd 1 and received the output; a closed stdin crashed click. /dev/null
    holds each closed descriptor, stdout's writes fail (exit 3), and stderr never fails a write (there is nowhere else
    to report to: the exit code says)."""
    for fd, stream in ((0, sys.stdin), (1, sys.stdout), (2, sys.stderr)):
        if stream is None:
            held = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if held != fd:
                os.dup2(held, fd)
                os.close(held)
    if sys.stdin is None:  # '<&-': read as empty input ('predict' then says it got no texts), not a crash in click
        sys.stdin = io.TextIOWrapper(open(0, "rb", closefd=False), encoding="utf-8")
    if sys.stdout is None:
        sys.stdout = _ClosedStdout(open(1, "wb", buffering=0, closefd=False), encoding="utf-8", write_through=True)
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    sys.stderr = _LossyStderr(open(2, "wb", buffering=0, closefd=False), encoding=encoding, errors="backslashreplace",
                              write_through=True)


def _check_working_directory() -> None:
    """A working directory deleted under the shell made every relative path fail somewhere deep (torch's MKL loader
    aborted with its own 'FATAL ERROR', plan and gate said 'internal error: FileNotFoundError'): say so first."""
    try:
        os.getcwd()
    except OSError as exc:
        click.echo(f"calibgate: error: the current directory no longer exists ({exc.strerror}); "
                   "fix: cd into a directory that exists and rerun", err=True)
        sys.exit(EXIT_INTERNAL)


def _tolerant_output() -> None:
    """Under a locale that cannot encode what calibgate prints (LC_ALL=C without Python's UTF-8 mode), a character
    such as an en dash ended the command half-way with a UnicodeEncodeError (exit 3); it is escaped instead."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if encoding != "utf8" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
