"""The base of every record: unknown fields are an error, so a typo in a file is caught where it is read."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def content_sha256(self) -> str:
        """sha256 of the record's canonical JSON (keys sorted, dict fields included): the same for the same content,
        however its file was laid out."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
