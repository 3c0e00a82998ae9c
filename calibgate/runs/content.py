"""What a sealed run must contain, checked from its bytes before anything loads it.

The manifest's digests prove the files are the ones it lists, not that they
are what calibgate wrote: anyone who can write the run directory can replace
a weight file and re-seal the manifest (the digest has no key). So every
reader also checks, without deserialising any tensor:

* every ``*.safetensors`` file has a well-formed safetensors header (an
  8-byte length, then that much JSON naming tensors whose byte ranges fit
  the file): pickle bytes renamed to ``.safetensors`` are refused, not
  handed to a loader;
* the head exists and holds the tensors its kind needs, shaped for the
  manifest's classes (linear: ``weight`` [classes, d] and ``bias``
  [classes]; kNN: ``keys`` [m, d] and ``key_labels`` [m]);
* every JSON file of the encoder and the exported tokenizer is UTF-8 JSON (a
  garbage tokenizer fails here with its path, not inside the tokenizers or
  transformers library; calibgate's own records are checked by their
  readers, with their own fixes);
* an export record's artifacts are files of the run with the sha256 the
  manifest records for them (a malformed record is left to its reader).

Each failure is an :class:`~calibgate.errors.IntegrityError` naming the
file: a bad run directory is bad input (exit 2), never an internal error.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from calibgate.errors import IntegrityError
from calibgate.runs.layout import ENCODER_DIR, EXPORT_RECORD, EXPORT_TOKENIZER, HEAD

MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit on the JSON header
_FIX = "restore the run from the registry (calibgate registry pull) or retrain; never edit a run in place"
_FLOAT_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "BF16": "<u2"}
_HEAD_TENSORS = {"linear": ("weight", "bias"), "knn": ("keys", "key_labels")}


def check_run_content(root: Path, manifest) -> None:
    """Raise :class:`IntegrityError` for the first file that is not what a calibgate run holds (see the module)."""
    if HEAD not in manifest.files:
        raise IntegrityError(f"{root}: the run has no {HEAD} (the classifier head)", fix=_FIX)
    headers = {rel: safetensors_header(root / rel, rel=rel) for rel in manifest.files if rel.endswith(".safetensors")}
    _check_head(headers[HEAD], manifest)
    _check_finite(root / HEAD, headers[HEAD])
    for rel in manifest.files:
        if rel.endswith(".json") and (rel.startswith(ENCODER_DIR + "/") or rel == EXPORT_TOKENIZER):
            _check_json(root / rel, rel)
    if EXPORT_RECORD in manifest.files:
        _check_export(root / EXPORT_RECORD, manifest)


def safetensors_header(path: Path, *, rel: str) -> dict:
    """The JSON header of a safetensors file, checked against the file's size; IntegrityError if it is not one."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            prefix = fh.read(8)
            length = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else -1
            if not 2 <= length <= min(MAX_HEADER_BYTES, size - 8):
                raise ValueError("no safetensors header (pickle or other bytes under a .safetensors name?)")
            header = json.loads(fh.read(length).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise IntegrityError(f"{path.parent}: {rel} is not a safetensors file ({_reason(exc)})", fix=_FIX) from None
    if not isinstance(header, dict):
        raise IntegrityError(f"{path.parent}: {rel} is not a safetensors file (its header is not a JSON object)", fix=_FIX)
    body = size - 8 - length
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        offsets = spec.get("data_offsets") if isinstance(spec, dict) else None
        shape = spec.get("shape") if isinstance(spec, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= body or not isinstance(shape, list)):
            raise IntegrityError(f"{path.parent}: {rel}: tensor {name!r} does not fit the file (truncated or forged)", fix=_FIX)
    return header


def _check_head(header: dict, manifest) -> None:
    kind = manifest.head.kind
    names = _HEAD_TENSORS[kind]
    missing = [n for n in names if n not in header]
    if missing:
        raise IntegrityError(
            f"{HEAD} lacks tensor {missing[0]!r}, which a {kind} head needs (it holds {sorted(k for k in header if k != '__metadata__')})",
            fix=_FIX,
        )
    classes = len(manifest.label_names)
    first, second = (header[n]["shape"] for n in names)
    if kind == "linear":
        ok = len(first) == 2 and first[0] == classes and second == [classes]
        want = f"weight [{classes}, d] and bias [{classes}] for the manifest's {classes} classes"
    else:
        ok = len(first) == 2 and len(second) == 1 and second[0] == first[0] and first[0] >= 1
        want = "keys [m, d] and key_labels [m]"
    if not ok:
        raise IntegrityError(f"{HEAD}: tensors shaped {first} and {second}, not {want}", fix=_FIX)


def _check_finite(path: Path, header: dict) -> None:
    """A head with NaN or infinite weights predicts garbage (argmax of NaN is class 0) while every check passes."""
    import numpy as np

    data = path.read_bytes()
    raw = memoryview(data)[8 + struct.unpack("<Q", data[:8])[0]:]
    for name, spec in header.items():
        if name == "__metadata__" or spec.get("dtype") not in _FLOAT_DTYPES:
            continue
        start, end = spec["data_offsets"]
        try:
            values = np.frombuffer(raw[start:end], dtype=_FLOAT_DTYPES[spec["dtype"]])
        except ValueError:
            raise IntegrityError(f"{path.parent}: {HEAD}: tensor {name!r} is not a whole number of {spec['dtype']} values", fix=_FIX) from None
        if spec["dtype"] == "BF16":  # bfloat16 is the top half of a float32
            values = (values.astype(np.uint32) << 16).view(np.float32)
        if not np.isfinite(values).all():
            raise IntegrityError(f"{path.parent}: {HEAD}: tensor {name!r} holds NaN or infinite values", fix=_FIX)


def _check_json(path: Path, rel: str) -> None:
    try:
        json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise IntegrityError(f"{path.parent}: {rel} is not valid JSON ({_reason(exc)})", fix=_FIX) from None


def _check_export(path: Path, manifest) -> None:
    from pydantic import ValidationError

    from calibgate.records.export import ExportResult

    try:
        record = ExportResult.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return  # malformed: its reader (calibgate.runs.readers) says so, with the fix for that record
    for artifact in record.artifacts:
        recorded = manifest.files.get(artifact.path)
        if recorded is None:
            raise IntegrityError(f"{path}: artifact {artifact.path} is not a file of the run", fix=_FIX)
        if recorded != artifact.sha256:
            raise IntegrityError(
                f"{path}: {artifact.path} has sha256 {recorded[:12]}..., the export record says {artifact.sha256[:12]}... "
                "(the graph was replaced after export)", fix=_FIX,
            )


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."
