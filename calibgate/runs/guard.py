"""Outputs a user names land outside every sealed run directory.

A file written under a run (``plan -o runs/x/plan.json``, ``drift --out
runs/x``, a run trained into another run's folder) is a file the run's
manifest does not cover: every later load refuses the run as tampered, so one
mistyped path bricked a registered model without a word. Every command that
writes where a user says asks :func:`check_outside_runs` first; ``evaluate``
and ``export``, which add records to a run and seal it again, do not.
"""

from __future__ import annotations

from pathlib import Path

from calibgate.errors import ConfigError
from calibgate.paths import check_file_target
from calibgate.runs.layout import MANIFEST


def sealed_run_holding(path: str | Path) -> Path | None:
    """The innermost directory at or above ``path`` (symlinks resolved) that holds a run manifest, or None."""
    target = Path(path).resolve()
    for folder in (target, *target.parents):
        try:
            if (folder / MANIFEST).is_file():
                return folder
        except OSError:  # an unreadable ancestor cannot be a run this process wrote
            continue
    return None


def check_outside_runs(path: str | Path, *, what: str, file: bool = False) -> None:
    """Refuse ``path`` (``what`` names the option, e.g. ``-o``) when it lies inside a sealed run directory; with
    ``file``, also when it is not a place a file can be written (a link, a device, a FIFO, a directory), so the
    command fails before its work, not after."""
    if file:
        check_file_target(path)
    run = sealed_run_holding(path)
    if run is not None:
        raise ConfigError(
            f"{what} {path} is inside the sealed run {run}: a file there is one its manifest does not cover, "
            "and the run would be refused as tampered from then on",
            fix="write it outside the run directory, e.g. beside it",
        )
