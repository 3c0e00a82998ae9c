"""The export's own error: the artifact it produced does not serve what torch serves.

:class:`ExportError` is an :class:`~calibgate.errors.EnvironmentFailure`
(exit code 3): the user's run and data were valid, but the exporter, the
quantizer or the serving tokenizer did not reproduce the torch model (logits
differ above tolerance, token ids differ, the graph has the wrong shape).
Nothing is written to the run when it is raised. Bad input (not a run, a
tampered run, an unknown option value) stays an :class:`~calibgate.errors.InputError`
(exit code 2).
"""

from __future__ import annotations

from calibgate.errors import EnvironmentFailure


class ExportError(EnvironmentFailure):
    """The exported artifact does not match the torch model (exit code 3)."""
