"""One error tree for calibgate; each class carries the exit code the CLI uses.

Exit codes are a contract (documented in ``calibgate --help``):

* 0: success, or a gate that may promote
* 1: the gate blocked the change (a result, not an exception)
* 2: bad input or configuration (:class:`InputError` and subclasses)
* 3: an internal or environment failure (:class:`EnvironmentFailure`)
* 130 / 143: interrupted by SIGINT / SIGTERM (temporary files removed)

Messages name the problem, the bad value and the fix, on one line.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BLOCKED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it; SIGTERM is 128 + 15

# what ends a line on a terminal or for str.splitlines, and the other control characters a terminal acts on (ESC
# sequences): a path, label or library message holding one split the one-line error or rewrote the screen
_CONTROLS = str.maketrans({chr(c): ascii(chr(c))[1:-1] for c in (*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029)
                           if chr(c) != "\t"})


def one_line(text: str) -> str:
    """``text`` with every line break and control character (a tab aside) written as its escape, ``\\n`` for a
    newline: what an error prints is one line whatever a path, a label or a library's message holds."""
    return text.translate(_CONTROLS)


class CalibgateError(Exception):
    """Base class of every error calibgate raises on purpose."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, fix: str | None = None):
        self.message = message
        self.fix = fix
        super().__init__(self.format())

    def format(self) -> str:
        return one_line(f"{self.message}; fix: {self.fix}" if self.fix else self.message)


class InputError(CalibgateError, ValueError):
    """Bad input or configuration: exit code 2, nothing written."""

    exit_code = EXIT_BAD_INPUT


class DataError(InputError):
    """A data file is missing, malformed or unusable for the task."""


class ConfigError(InputError):
    """The project config (``calibgate.yaml``) or an option is invalid."""


class PolicyError(InputError):
    """A policy file is missing, malformed or names unknown keys."""


class ModelError(InputError):
    """A model directory or run directory is missing or unusable."""


class IntegrityError(InputError):
    """An artifact's content does not match its recorded sha256."""


class RegistryError(InputError):
    """A registry operation is not allowed (unknown version, missing approval...)."""


class StoreUnreadable(RegistryError):
    """A registered artifact's store cannot be read (its remote gone or not a directory): a configuration to fix for
    ``registry verify`` and ``pull``, and for the gate a baseline it cannot verify, so cannot trust (an ERROR check)."""


class TagError(RegistryError):
    """A string is not a registry tag, or a tag's parts are invalid (a ValueError too, for callers that catch that)."""


class EnvironmentFailure(CalibgateError, RuntimeError):
    """Something outside the user's input failed (a tool, the disk): exit code 3."""

    exit_code = EXIT_INTERNAL


class MissingDependencyError(EnvironmentFailure, ImportError):
    """An optional dependency is not installed; the message says what to install."""
