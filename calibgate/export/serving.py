"""Torch-free serving from a run's ONNX export: texts -> one prediction record per text.

Only ``onnxruntime``, ``tokenizers``, numpy and pydantic are imported (no
torch, no transformers), so a serving image needs neither. Every artifact
loaded (graph, tokenizer, export record) is hashed and checked against the
run manifest's sha256 first; a changed file raises
:class:`~calibgate.errors.IntegrityError` (exit code 2). The bytes hashed are
the bytes loaded, so a file swapped after the check is never served.

    >>> from calibgate.export.serving import predict
    >>> predict("runs/demo", ["my card has not arrived"])   # doctest: +SKIP
    [{'label': 'card_arrival', 'score': 0.93, 'probs': {...}}]
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np

from calibgate._lazy import require
from calibgate.data.jsonl import has_visible
from calibgate.errors import DataError, IntegrityError, ModelError
from calibgate.export.tokenize import ServingTokenizer
from calibgate.runs import EXPORT_RECORD, ONNX_FILES, load_run, read_export, verified_bytes

Precision = Literal["fp32", "int8"]


def default_threads() -> int:
    """Intra-op threads for onnxruntime (and torch, when compared): the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def make_session(model: bytes | str | Path, *, threads: int | None = None):
    """An onnxruntime CPU session with all graph optimisations and ``threads`` intra-op threads."""
    from calibgate.settings import check_threads

    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = check_threads(threads) or default_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


class Predictor:
    """An ONNX session, its serving tokenizer and the label names: texts -> logits / prediction records."""

    def __init__(self, session, tokenizer: ServingTokenizer, label_names: Sequence[str], *, precision: str = "fp32"):
        self.session = session
        self.tokenizer = tokenizer
        self.label_names = list(label_names)
        self.precision = precision
        self.threads = session.get_session_options().intra_op_num_threads

    @classmethod
    def from_run(cls, run_dir: str | Path, *, precision: Precision = "fp32", threads: int | None = None) -> "Predictor":
        """Load a run's exported artifact from a verified run: every file re-hashed against the manifest (as the gate
        and the registry do: a run with an edited record, an extra file or a changed head is refused here too, though
        only the export is loaded), then the bytes loaded checked once more as they are read."""
        run_dir = Path(run_dir)
        if precision not in ONNX_FILES:
            raise ModelError(f"unknown precision {precision!r}", fix="use fp32 or int8")
        manifest = load_run(run_dir)
        record = read_export(run_dir, manifest=manifest)  # bytes checked against the manifest's sha256
        if record is None:
            raise ModelError(
                f"{run_dir}: the run has no ONNX export", fix=f"run 'calibgate export --run {run_dir}' first"
            )
        artifact = record.artifact(precision)
        if artifact is None:
            fix = f"calibgate export --run {run_dir} --quantize int8" if precision == "int8" else "re-export the run"
            raise ModelError(f"{run_dir}: the export has no {precision} model", fix=fix)
        reexport = f"restore the run from the registry, or re-export with 'calibgate export --run {run_dir}'"
        if record.tokenizer is None:
            raise ModelError(
                f"{run_dir}: the export record names no serving tokenizer",
                fix=f"re-run 'calibgate export --run {run_dir}'",
            )
        model_bytes = verified_bytes(run_dir, artifact.path, manifest, fix=reexport)
        if hashlib.sha256(model_bytes).hexdigest() != artifact.sha256:
            raise IntegrityError(
                f"{run_dir}: {artifact.path} does not match the sha256 in {EXPORT_RECORD}",
                fix=f"re-run 'calibgate export --run {run_dir}'",
            )
        tokenizer_json = verified_bytes(run_dir, record.tokenizer.path, manifest, fix=reexport).decode("utf-8")
        tokenizer = ServingTokenizer(tokenizer_json, record.tokenizer)
        session = make_session(model_bytes, threads=threads)
        _check_signature(session, run_dir, artifact.path)
        width = session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != len(manifest.label_names):
            raise ModelError(
                f"{run_dir}: {artifact.path} returns {width} logits but the run has {len(manifest.label_names)} labels",
                fix=f"re-run 'calibgate export --run {run_dir}'",
            )
        return cls(session, tokenizer, manifest.label_names, precision=precision)

    def logits(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """(n, n_labels) float32 logits; texts are batched by token length so padding stays short."""
        rows = self.tokenizer.encode(texts)
        order = np.argsort([-len(r) for r in rows], kind="stable")
        out = np.zeros((len(rows), len(self.label_names)), dtype=np.float32)
        for start in range(0, len(rows), batch_size):
            index = order[start : start + batch_size]
            ids, mask = self.tokenizer.pad([rows[i] for i in index])
            out[index] = self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
        if not np.isfinite(out).all():  # NaN/inf scores: softmax of them is no answer, and not JSON either
            bad = int((~np.isfinite(out)).any(axis=1).sum())
            raise ModelError(f"the model's scores for {bad} of {len(out)} text(s) are not finite numbers (NaN or infinity)",
                             fix="the exported graph is broken: re-export the run (calibgate export), or restore it from the registry")
        return out

    def predict(self, texts: Sequence[str], *, batch_size: int = 32, top_k: int | None = None) -> list[dict]:
        return records(self.logits(texts, batch_size=batch_size), self.label_names, top_k=top_k)


SIGNATURE_INPUTS = {"input_ids": "tensor(int64)", "attention_mask": "tensor(int64)"}


def _check_signature(session, run_dir: Path, path: str) -> None:
    """The graph takes what :meth:`Predictor.logits` feeds it and gives 2-D ``logits``: a valid ONNX model of another
    shape (swapped in and re-sealed, or from another exporter) is a bad run, not an internal error at the first text."""
    inputs = {i.name: i.type for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    logits = outputs.get("logits")
    if inputs != SIGNATURE_INPUTS or logits is None or len(logits.shape) != 2:
        got = ", ".join(f"{name} {kind}" for name, kind in sorted(inputs.items()))
        raise ModelError(
            f"{run_dir}: {path} is not a calibgate classifier graph (inputs {got or 'none'}; outputs "
            f"{', '.join(sorted(outputs)) or 'none'}): it must take int64 input_ids and attention_mask and return 2-D logits",
            fix=f"re-run 'calibgate export --run {run_dir}', or restore the run from the registry",
        )


def predict(
    model: str | Path,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    precision: Precision = "fp32",
    top_k: int | None = None,
    threads: int | None = None,
) -> list[dict]:
    """Predict labels for ``texts`` from the ONNX export of run ``model`` (no torch, no transformers).

    Each record is ``{"label", "score", "probs": {label: p}}``; with ``top_k``
    it is ``{"label", "score", "top_k": [{"label", "score"}, ...]}``. Labels
    are always the run's training labels; ``score`` is the softmax probability
    of the predicted label.
    """
    texts = validate_texts(texts)
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}", fix="pass a positive batch size")
    if top_k is not None and top_k < 1:
        raise DataError(f"top_k must be >= 1, got {top_k}", fix="pass a positive top-k or leave it out")
    predictor = Predictor.from_run(model, precision=precision, threads=threads)
    if not texts:
        return []
    return predictor.predict(texts, batch_size=batch_size, top_k=top_k)


def records(logits: np.ndarray, label_names: Sequence[str], *, top_k: int | None = None) -> list[dict]:
    """Softmax ``logits`` into prediction records (see :func:`predict`)."""
    probs = softmax(logits)
    out = []
    for row in probs:
        best = int(row.argmax())
        record: dict = {"label": label_names[best], "score": round(float(row[best]), 6)}
        if top_k is None:
            record["probs"] = {name: round(float(p), 6) for name, p in zip(label_names, row, strict=True)}
        else:
            top = np.argsort(-row, kind="stable")[:top_k]
            record["top_k"] = [{"label": label_names[i], "score": round(float(row[i]), 6)} for i in top]
        out.append(record)
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def validate_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise DataError("texts is a single string, not a list of texts", fix="pass [text] for one text")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"text {i} is {type(text).__name__}, not a string", fix="pass strings")
        if not text.strip():
            raise DataError(f"text {i} is empty", fix="drop empty texts before predicting")
        if not has_visible(text):  # as serve refuses it: only zero-width or control characters
            raise DataError(f"text {i} has no visible character (only control, format, space, mark or blank characters)",
                            fix="drop texts with nothing to read before predicting")
    return texts


def read_texts(lines: Iterable[str], *, source: str = "<stdin>") -> list[str]:
    """Texts from JSONL lines ``{"text": ...}``; raises :class:`DataError` at the first bad line."""
    from calibgate.data.jsonl import iter_objects

    texts: list[str] = []
    for number, obj in iter_objects(lines, source=source):
        if "text" not in obj:
            raise DataError(f"{source}:{number}: missing key 'text' (keys are {sorted(obj)[:6]})", fix='write each line as {"text": "..."}')
        text = obj["text"]
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{source}:{number}: 'text' must be a non-empty string", fix="fix or drop the line")
        if not has_visible(text):
            raise DataError(f"{source}:{number}: 'text' has no visible character (only control, format, space, mark or "
                            "blank characters)", fix="fix or drop the line")
        texts.append(text)
    if not texts:
        raise DataError(f"{source}: no texts to predict", fix='pass JSONL lines such as {"text": "my card is lost"}')
    return texts
