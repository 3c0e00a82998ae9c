"""Which model answers a request: the primary, or the canary for a deterministic share of request ids.

The share is decided by the request id alone: the first 8 bytes of
``sha256(request_id)`` as a number in [0, 1). The same id always goes to the
same model (retries do not flip between versions), and over many ids the
canary's share converges to ``share`` (the hash is uniform).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from calibgate.errors import ConfigError


def bucket(request_id: str) -> float:
    """The request id's position in [0, 1): sha256's first 8 bytes / 2**64."""
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Router:
    """Routes request ids to ``primary`` or ``canary``; ``share`` is the canary's share of ids."""

    share: float = 0.0
    has_canary: bool = False

    def __post_init__(self):
        if not 0.0 <= self.share <= 1.0:
            raise ConfigError(f"--share must be in [0, 1], got {self.share}", fix="e.g. --share 0.1 for 10% of requests")
        if self.share > 0 and not self.has_canary:
            raise ConfigError(f"--share {self.share} without a canary model", fix="pass --canary name@vX.Y.Z, or drop --share")

    def route(self, request_id: str) -> str:
        if self.has_canary and bucket(request_id) < self.share:
            return "canary"
        return "primary"
