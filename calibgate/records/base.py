"""The base of every record: unknown fields are an error, so a typo in a file is caught where it is read."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
