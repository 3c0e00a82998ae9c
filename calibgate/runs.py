"""The run directory: what ``calibgate train`` writes and every later step reads.

A run directory is self-contained (weights in safetensors, tokenizer, label
map, config, plan, lineage) and carries the sha256 of every file in its
manifest ``calibgate-run.json``. :func:`load_run` re-hashes and refuses a
tampered run; the registry records the same hashes.

Layout::

    runs/<run_id>/
      calibgate-run.json      RunManifest (this module)
      encoder/                HF model dir: config, model.safetensors, tokenizer
                              (merged weights for lora / full-finetune, the
                              frozen base for embedding-probe / retrieval)
      head.safetensors        linear head {"weight", "bias"} or kNN index
                              {"keys", "key_labels"}
      adapter/                peft adapter (lora only), for reference
      README.md               model card with Hugging Face metadata
      ...                     curves, metrics, exports (each hashed)
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from calibgate.errors import IntegrityError, ModelError

MANIFEST = "calibgate-run.json"
RUN_SCHEMA_VERSION = 1

Strategy = Literal["embedding-probe", "retrieval", "lora", "full-finetune"]


class HeadSpec(BaseModel):
    """How pooled encoder outputs become logits."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["linear", "knn"]
    k: int | None = Field(default=None, description="neighbours voted, for kind=knn")
    weighting: Literal["uniform", "similarity"] | None = None


class RunManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = RUN_SCHEMA_VERSION
    run_id: str
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    strategy: Strategy
    lora_rank: int | None = None
    label_names: list[str]
    base_model: str = Field(description="name or path of the base encoder")
    model_type: str
    pooling: Literal["mean", "last"]
    normalize: bool
    max_length: int
    head: HeadSpec
    modifiers: list[str] = Field(default_factory=list)
    train_config: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict, description="dvc_md5, sha256 and size of the training data")
    git_commit: str | None = None
    device: str | None = None
    train_seconds: float | None = None
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256")


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` except the manifest, keyed by POSIX relative path."""
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def write_manifest(root: Path, manifest: RunManifest) -> RunManifest:
    """Hash every file under ``root`` into ``manifest.files`` and write it last (atomically)."""
    manifest = manifest.model_copy(update={"files": hash_tree(root)})
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(root / MANIFEST)
    return manifest


def read_manifest(root: str | Path) -> RunManifest:
    root = Path(root)
    path = root / MANIFEST
    if not path.exists():
        raise ModelError(
            f"{root}: not a calibgate run (no {MANIFEST})",
            fix="pass --model a directory written by 'calibgate train' (e.g. runs/<id>)",
        )
    try:
        return RunManifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(f"{path}: malformed run manifest ({first})", fix="retrain, or restore the run from the registry") from None


def verify_run(root: str | Path, manifest: RunManifest | None = None) -> RunManifest:
    """Re-hash the run's files; raise :class:`IntegrityError` on any missing, changed or extra file."""
    root = Path(root)
    manifest = manifest or read_manifest(root)
    actual = hash_tree(root)
    for rel, expected in manifest.files.items():
        got = actual.get(rel)
        if got is None:
            raise IntegrityError(f"{root}: file {rel} is missing", fix="restore the run from the registry or retrain")
        if got != expected:
            raise IntegrityError(
                f"{root}: {rel} has sha256 {got[:12]}..., the manifest records {expected[:12]}... (tampered or corrupted)",
                fix="restore the artifact from the registry's remote or retrain; never edit a run in place",
            )
    extra = sorted(set(actual) - set(manifest.files))
    if extra:
        raise IntegrityError(
            f"{root}: file {extra[0]} is not in the manifest", fix="remove it, or retrain to produce a fresh run"
        )
    return manifest


def load_run(root: str | Path, *, verify: bool = True) -> RunManifest:
    """Read and (by default) verify a run directory."""
    manifest = read_manifest(root)
    if verify:
        verify_run(root, manifest)
    return manifest


def add_files(root: str | Path, manifest: RunManifest) -> RunManifest:
    """Re-hash after a step (evaluate, export) added files to a verified run."""
    return write_manifest(Path(root), manifest)
