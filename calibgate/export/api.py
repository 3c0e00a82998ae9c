"""``calibgate export``: one ONNX graph per run, checked against torch, optionally int8, timed.

Writes ``<run>/export/``::

    model.onnx        fp32 graph: (input_ids, attention_mask) -> logits, dynamic batch and sequence
    model.int8.onnx   dynamic int8 version (with quantize="int8")
    tokenizer.json    the tokenizers-library tokenizer serving uses (no transformers)
    export.json       ExportResult: parity, agreement, accuracy, latency, sizes, hashes

and re-hashes the run manifest so ``verify_run`` covers them. Everything is
built in a temporary directory beside the run and moved in at the end: a
failed export leaves the run as it was.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from calibgate._lazy import require
from calibgate.errors import ConfigError, DataError, ModelError
from calibgate.export.errors import ExportError
from calibgate.paths import signals_deferred, staging_dir
from calibgate.records.export import ExportArtifact, ExportResult
from calibgate.export.serving import Predictor, default_threads, make_session, validate_texts
from calibgate.runs import (
    EXPORT_DIR, EXPORT_RECORD, EXPORT_TOKENIZER, ONNX_FILES, RunManifest, add_files, file_name, load_run,
    run_commit_lock, verify_run,
)

FP32_TOLERANCE = 1e-4
MAX_PARITY_TEXTS = 512


def export(
    model: str | Path,
    *,
    quantize: str | None = None,
    test: str | Path | None = None,
    parity_texts: Sequence[str] | None = None,
    exporter: str = "dynamo",
    tolerance: float = FP32_TOLERANCE,
    latency_runs: int = 200,
    compare_torch: bool = False,
    threads: int | None = None,
) -> ExportResult:
    """Export run ``model`` to ONNX, check it against torch, optionally quantise to int8, time it.

    Parity texts are ``parity_texts``, else the test set ``test`` (the CLI
    defaults it to ``data.test`` of the project's calibgate.yaml), at most 512 of them. The
    fp32 export fails with :class:`ExportError` (exit 3) when a logit differs
    from torch by more than ``tolerance`` or serving token ids differ from
    transformers'. ``latency_runs=0`` skips timing.
    """
    run_dir = Path(model)
    if not run_dir.is_dir():
        raise ModelError(
            f"{run_dir}: no such run directory",
            fix="pass --run a directory written by 'calibgate train' (e.g. runs/<id>)",
        )
    manifest = load_run(run_dir)
    if quantize not in (None, "int8"):
        raise ConfigError(f"unknown quantization {quantize!r}", fix="use --quantize int8 or leave it out")
    if exporter not in ("dynamo", "torchscript"):
        raise ConfigError(f"unknown exporter {exporter!r}", fix="use dynamo or torchscript")
    if latency_runs < 0:
        raise ConfigError(f"latency_runs must be >= 0, got {latency_runs}", fix="pass 0 to skip timing")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}", fix="leave it out to use the CPUs available")
    test_set = _load_test(test, manifest)
    texts, source = _parity_texts(parity_texts, test_set)
    threads = threads or default_threads()
    return _export(
        run_dir,
        manifest,
        texts,
        source,
        test_set,
        quantize=quantize,
        exporter=exporter,
        tolerance=tolerance,
        latency_runs=latency_runs,
        compare_torch=compare_torch,
        threads=threads,
    )


def _load_test(test, manifest: RunManifest):
    from calibgate.data.jsonl import load_labeled

    if test is None:
        return None
    return load_labeled(test, label_names=manifest.label_names, min_classes=1)


def _parity_texts(parity_texts, test_set) -> tuple[list[str], str]:
    if parity_texts is not None:
        texts, source = validate_texts(parity_texts), "given texts"
    elif test_set is not None:
        texts, source = list(test_set.texts), test_set.source
    else:
        raise ConfigError(
            "no texts to check the export against torch",
            fix="pass --test datasets/test.jsonl (or --parity-texts FILE), or set data.test in calibgate.yaml",
        )
    if not texts:
        raise DataError("the parity texts are empty", fix="pass at least one text")
    return texts[:MAX_PARITY_TEXTS], source


def _export(
    run_dir: Path,
    manifest: RunManifest,
    texts,
    source,
    test_set,
    *,
    quantize,
    exporter,
    tolerance,
    latency_runs,
    compare_torch,
    threads,
) -> ExportResult:
    torch = require("torch")
    transformers = require("transformers")
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # e.g. 'torchvision is not installed' notices
    require("onnx")
    if exporter == "dynamo":
        require("onnxscript")
    from calibgate.export import onnx_export
    from calibgate.modeling import load_classifier

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    classifier, hf_tokenizer, _ = load_classifier(run_dir, manifest)
    tmp = staging_dir(run_dir, "export")
    try:
        fp32_path, int8_path = (tmp / file_name(ONNX_FILES[p]) for p in ("fp32", "int8"))  # tmp becomes export/
        serving_tokenizer, batches = _serving_tokenizer(hf_tokenizer, texts, manifest.max_length, tmp)
        reference = onnx_export.torch_logits(classifier, batches)
        sample = _sample(hf_tokenizer, texts, manifest.max_length)
        onnx_export.export_onnx(
            classifier, sample, fp32_path, exporter=exporter, max_length=manifest.max_length
        )
        fp32 = Predictor(make_session(fp32_path, threads=threads), serving_tokenizer, manifest.label_names)
        artifacts = {"fp32": _check_fp32(fp32, texts, reference, tolerance, fp32_path)}
        predictors = {"fp32": fp32}
        if quantize == "int8":
            from calibgate.export.quantize import quantize_int8

            quantize_int8(fp32_path, int8_path)
            int8 = Predictor(
                make_session(int8_path, threads=threads),
                serving_tokenizer,
                manifest.label_names,
                precision="int8",
            )
            logits = int8.logits(texts)
            artifacts["int8"] = _artifact(
                int8_path,
                "int8",
                max_abs_logit_diff=float(np.abs(logits - reference).max()),
                argmax_agreement=_agree(logits, reference),
            )
            predictors["int8"] = int8
        if test_set is not None:
            _accuracy(artifacts, predictors, test_set)
        torch_latency = None
        if latency_runs:
            timing_texts = list(test_set.texts) if test_set is not None else texts
            torch_latency = _latency(
                artifacts,
                predictors,
                classifier if compare_torch else None,
                timing_texts,
                runs=latency_runs,
                threads=threads,
            )
        result = ExportResult(
            run_id=manifest.run_id,
            opset=onnx_export.OPSET,
            artifacts=list(artifacts.values()),
            torch_latency=torch_latency,
            exporter=exporter,
            parity_texts=len(texts),
            parity_source=source,
            test_texts=len(test_set) if test_set is not None else None,
            tokenizer=serving_tokenizer.spec,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        (tmp / file_name(EXPORT_RECORD)).write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
        _commit(run_dir, manifest, tmp)
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        torch.set_num_threads(previous_threads)


def _serving_tokenizer(hf_tokenizer, texts, max_length: int, tmp: Path):
    """Write export/tokenizer.json; check it tokenizes like transformers; return it and transformers' batches."""
    from calibgate.export import onnx_export
    from calibgate.export.tokenize import ServingTokenizer

    tokenizer_json, spec = onnx_export.serving_tokenizer_files(
        hf_tokenizer, max_length=max_length, rel_path=EXPORT_TOKENIZER
    )
    (tmp / file_name(EXPORT_TOKENIZER)).write_text(tokenizer_json, encoding="utf-8")
    serving = ServingTokenizer(tokenizer_json, spec)
    batches = list(onnx_export.hf_batches(hf_tokenizer, texts, max_length=max_length))
    _check_tokens(serving, batches, texts)
    # the parity texts may all be short: check truncation on one text longer than max_length too
    words = max(1, sum(len(t.split()) for t in texts))
    long_text = [" ".join(texts * (1 + max_length // words))]
    _check_tokens(serving, list(onnx_export.hf_batches(hf_tokenizer, long_text, max_length=max_length)), long_text)
    return serving, batches


def _check_fp32(fp32: Predictor, texts, reference: np.ndarray, tolerance: float, path: Path) -> ExportArtifact:
    """The fp32 artifact record, or :class:`ExportError` when its logits are not torch's."""
    logits = fp32.logits(texts)
    if logits.shape != reference.shape:
        raise ExportError(
            f"the ONNX graph returns logits of shape {logits.shape}, torch {reference.shape}",
            fix="rerun with --traceback and report it",
        )
    diff = float(np.abs(logits - reference).max())
    if not diff <= tolerance:
        raise ExportError(
            f"ONNX fp32 logits differ from torch by {diff:.3g} on {len(texts)} texts,"
            f" above the tolerance {tolerance:g}",
            fix="retry with --exporter torchscript, or rerun with --traceback and report it",
        )
    return _artifact(path, "fp32", max_abs_logit_diff=diff, argmax_agreement=_agree(logits, reference))


def _accuracy(artifacts: dict[str, ExportArtifact], predictors: dict[str, Predictor], test_set) -> None:
    for precision, artifact in artifacts.items():
        predicted = predictors[precision].logits(test_set.texts).argmax(1)
        artifact.accuracy = round(float((predicted == test_set.labels).mean()), 6)
    for precision, artifact in artifacts.items():
        if precision != "fp32":
            artifact.accuracy_delta = round(artifact.accuracy - artifacts["fp32"].accuracy, 6)


def _latency(artifacts, predictors, classifier, texts, *, runs: int, threads: int):
    """Time each artifact (and torch eager when ``classifier`` is given) on the same pre-tokenized texts."""
    from calibgate.export.latency import measure_onnx, measure_torch

    tokenizer = predictors["fp32"].tokenizer
    for precision, artifact in artifacts.items():
        artifact.latency = measure_onnx(predictors[precision].session, tokenizer, texts, runs=runs, threads=threads)
    if classifier is None:
        return None
    return measure_torch(classifier, tokenizer, texts, runs=runs, threads=threads)


def _check_tokens(serving_tokenizer, batches, texts) -> None:
    for start, ids, mask in batches:
        got_ids, got_mask = serving_tokenizer(texts[start : start + ids.shape[0]])
        if got_ids.shape != ids.shape or not (np.array_equal(got_ids, ids) and np.array_equal(got_mask, mask)):
            row = next(
                (
                    i
                    for i in range(ids.shape[0])
                    if got_ids.shape != ids.shape or not np.array_equal(got_ids[i], ids[i])
                ),
                0,
            )
            raise ExportError(
                f"serving token ids differ from transformers' for text {start + row} ({texts[start + row][:60]!r})",
                fix="re-save the encoder's tokenizer with the current transformers, or rerun with --traceback",
            )


def _sample(hf_tokenizer, texts, max_length):
    """A padded example batch (longest, shortest and a two-word text) so masks are exercised while tracing."""
    by_length = sorted(texts, key=len)
    enc = hf_tokenizer(
        [by_length[-1], by_length[0], "thank you"],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return enc["input_ids"].long(), enc["attention_mask"].long()


def _agree(logits: np.ndarray, reference: np.ndarray) -> float:
    return round(float((logits.argmax(1) == reference.argmax(1)).mean()), 6)


def _artifact(path: Path, precision: str, **fields) -> ExportArtifact:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ExportArtifact(
        path=ONNX_FILES[precision], precision=precision, size_bytes=path.stat().st_size, sha256=digest, **fields
    )


def _commit(run_dir: Path, manifest: RunManifest, tmp: Path) -> None:
    """Swap ``tmp`` in as ``<run>/export`` and re-hash the manifest, after re-verifying the run."""
    with run_commit_lock(run_dir):  # no evaluate re-seals the run between the check and the swap
        _swap_in(run_dir, manifest, tmp)


def _swap_in(run_dir: Path, manifest: RunManifest, tmp: Path) -> None:
    verify_run(run_dir, manifest)
    target = run_dir / EXPORT_DIR
    old = None
    with signals_deferred():  # the export folder and the manifest change together: never one without the other
        if target.exists():
            old = tmp.with_name(tmp.name + ".old")
            target.rename(old)
        tmp.rename(target)
        try:
            add_files(run_dir, manifest)
        except Exception:
            shutil.rmtree(target, ignore_errors=True)
            if old is not None:
                old.rename(target)
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
