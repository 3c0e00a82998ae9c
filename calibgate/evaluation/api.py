"""``evaluate``: score a run on a labeled test set, beside the frozen-embedding base model.

Writes ``<run>/evaluation.json`` (:class:`EvaluationResult`) and
``<run>/metrics.json`` (flat numbers for ``dvc metrics diff``), then
re-hashes the run manifest. A run that fails verification is refused before
anything is read or written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from calibgate.data.jsonl import LabeledSet, load_labeled
from calibgate.errors import ConfigError, DataError
from calibgate.evaluation.metrics import bootstrap_intervals, score
from calibgate.records.evaluation import ClassMetrics, EvaluationResult, MetricInterval, SliceResult, TestSetInfo
from calibgate.records.strategies import tunes_encoder
from calibgate.runs.layout import BASELINE_HEAD, ENCODER_DIR, EVALUATION, METRICS
from calibgate.settings import MAX_BOOTSTRAP


def evaluate(
    *,
    model: str | Path,
    test: str | Path | None = None,
    slices: Sequence[str | Path | tuple[str, str | Path]] = (),
    metrics: Sequence[str | Path] = (),
    config=None,
    batch_size: int = 64,
    bootstrap: int = 1000,
    seed: int = 0,
    base: bool = True,
    write: bool = True,
    unseen_labels: bool = False,
) -> EvaluationResult:
    """Evaluate the run directory ``model`` on ``test`` (default: the config's ``data.test``).

    ``slices`` are extra labeled JSONL files reported separately, each a path
    (named by its stem), ``"name=path"`` or ``(name, path)``. ``metrics`` are
    local Hugging Face ``evaluate`` modules whose numbers join ``metrics``.
    ``unseen_labels``: a test label the model lacks counts as an error on its
    rows (the evaluation's label_names gain it; the model never predicts it)
    instead of refusing the test set: how production is scored against a
    candidate that adds a class.
    """
    from calibgate.evaluation.hf_metrics import check_metric_paths
    from calibgate.runs import load_run
    from calibgate.settings import load_config

    started = time.perf_counter()
    run_dir = Path(model)
    manifest = load_run(run_dir)  # ModelError: not a run; IntegrityError: tampered
    if config is None or isinstance(config, (str, Path)):
        config = load_config(config)
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise ConfigError(f"bootstrap resamples must be an integer from 0 to {MAX_BOOTSTRAP}, got {bootstrap!r}", fix="use 1000")
    test_path = Path(test) if test is not None else config.path(config.data.test)
    labels = manifest.label_names
    warnings: list[str] = []
    if unseen_labels:
        seen = set(labels)
        unseen = sorted(set(load_labeled(test_path, min_classes=1).label_names) - seen)
        _check_unseen_spellings(test_path, unseen, labels)
        if unseen:
            labels = [*labels, *unseen]  # the model's own classes keep their indices
            warnings.append(f"the test set has {len(unseen)} label(s) the model lacks ({', '.join(unseen[:5])}): their "
                            "rows count as errors")
            base = False  # the frozen probe stored with the run knows the model's classes only
    test_set = load_labeled(test_path, label_names=labels, min_classes=1)
    named_slices = [(name, load_labeled(path, label_names=labels, min_classes=1)) for name, path in _parse_slices(slices)]
    metric_paths = check_metric_paths(metrics)

    from calibgate.training.predict import predict_proba
    from calibgate.modeling import load_classifier

    classifier, tokenizer, manifest = load_classifier(run_dir, manifest)
    device = _device()
    classifier.to(device)
    probs = _widen(predict_proba(classifier, tokenizer, test_set.texts, max_length=manifest.max_length,
                                 batch_size=batch_size, device=device), len(labels))
    result = _score(test_set, probs, len(labels), bootstrap=bootstrap, seed=seed)
    if named_slices:
        result["slices"] = []
        for name, data in named_slices:
            slice_probs = _widen(predict_proba(classifier, tokenizer, data.texts, max_length=manifest.max_length,
                                               batch_size=batch_size, device=device), len(labels))
            s = _score(data, slice_probs, len(labels), bootstrap=bootstrap, seed=seed)
            result["slices"].append(SliceResult(
                name=name, source=data.source, n=len(data), accuracy=s["metrics"]["accuracy"],
                macro_f1=s["metrics"]["macro_f1"], accuracy_ci=s["intervals"].get("accuracy"),
            ))
    if metric_paths:
        from calibgate.evaluation.hf_metrics import compute_metrics

        result["metrics"].update(compute_metrics(
            metric_paths, predictions=result["predictions"], references=result["labels"], taken=set(result["metrics"]),
        ))
    base_model = base_predictions = None
    if base:
        base_model, base_predictions, note = _base_model(run_dir, manifest, test_set, len(labels))
        if note:
            warnings.append(note)
    evaluation = EvaluationResult(
        run_id=manifest.run_id,
        strategy=manifest.strategy,
        lora_rank=manifest.lora_rank,
        label_names=labels,
        test=TestSetInfo(source=str(test_path), sha256=test_set.sha256, n=len(test_set), dvc_md5=_dvc_md5(config, test_path)),
        base_model=base_model,
        base_predictions=base_predictions,
        warnings=warnings,
        seconds=round(time.perf_counter() - started, 3),
        **result,
    )
    if write:
        _write(run_dir, manifest, evaluation)
    return evaluation


def _widen(probs: np.ndarray, n_classes: int) -> np.ndarray:
    """The model's probabilities with a zero column for each test label it lacks (``unseen_labels``)."""
    if probs.shape[1] >= n_classes:
        return probs
    return np.hstack([probs, np.zeros((probs.shape[0], n_classes - probs.shape[1]), dtype=probs.dtype)])


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _parse_slices(slices) -> list[tuple[str, Path]]:
    out = []
    for item in slices:
        if isinstance(item, tuple):
            name, path = item
        elif "=" in str(item) and not Path(str(item)).exists():
            name, path = str(item).split("=", 1)
        else:
            name, path = Path(item).stem, item
        name = str(name)
        if not name.strip() or not name.isprintable():  # '--slice =hard.jsonl' reported a slice with no name
            raise ConfigError(f"slice {str(item)!r}: its name is empty or holds a control character",
                              fix="name slices NAME=PATH with a printable NAME, e.g. --slice hard=hard_cases.jsonl")
        if not str(path).strip():
            raise ConfigError(f"slice {str(item)!r} names no file", fix="give NAME=PATH, e.g. --slice hard=hard_cases.jsonl")
        out.append((name, Path(path)))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"slice names repeat: {names}", fix="name slices NAME=PATH with distinct names")
    return out


def _score(data: LabeledSet, probs: np.ndarray, n_classes: int, *, bootstrap: int, seed: int) -> dict:
    s = score(data.labels, probs)
    predictions = probs.argmax(axis=1)
    intervals = {}
    if bootstrap:
        for name, (low, high) in bootstrap_intervals(data.labels, predictions, n_classes, resamples=bootstrap, seed=seed).items():
            intervals[name] = MetricInterval(low=low, high=high, method=f"percentile bootstrap, {bootstrap} resamples, seed {seed}")
    return {
        "metrics": {"accuracy": s.accuracy, "macro_f1": s.macro_f1, "ece": s.ece, "label_validity_rate": s.label_validity_rate},
        "intervals": intervals,
        "per_class": {
            name: ClassMetrics(precision=float(s.precision[i]), recall=float(s.recall[i]), f1=float(s.f1[i]), support=int(s.support[i]))
            for i, name in enumerate(data.label_names)
        },
        "confusion_matrix": s.confusion.tolist(),
        "labels": data.labels.tolist(),
        "predictions": predictions.tolist(),
        "confidences": [round(float(c), 6) for c in probs.max(axis=1)],
    }


def _base_model(run_dir: Path, manifest, test_set: LabeledSet, n_classes: int):
    """The frozen-embedding probe stored at train time, on the base encoder's embeddings of the test set."""
    from safetensors.numpy import load_file

    from calibgate.embeddings.encoder import embed_texts, resolve_model_dir
    from calibgate.errors import ModelError
    from calibgate.training.frozen import normalize_rows

    head_file = run_dir / BASELINE_HEAD
    if not head_file.exists():
        return None, None, f"no {BASELINE_HEAD} in the run: base model not evaluated"
    try:
        info = resolve_model_dir(manifest.base_model if tunes_encoder(manifest.strategy) else run_dir / ENCODER_DIR)
    except ModelError as exc:
        return None, None, f"base model {manifest.base_model} not available ({exc.message}): base model not evaluated"
    head = load_file(str(head_file))
    x = normalize_rows(embed_texts(test_set.texts, model=info).vectors)
    logits = x @ head["weight"].T + head["bias"]
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    s = score(test_set.labels, probs)
    return {"accuracy": s.accuracy, "macro_f1": s.macro_f1, "ece": s.ece}, probs.argmax(axis=1).tolist(), None


def _dvc_md5(config, test_path: Path) -> str | None:
    target = config.path(config.data.dvc_target) if config.data.dvc_target else None
    if target is None:
        return None
    try:
        test_path.resolve().relative_to(target.resolve())
    except ValueError:
        return None
    from calibgate.data.versions import data_version

    return data_version(config.root, config.data.dvc_target).dvc_md5


def flat_metrics(evaluation: EvaluationResult) -> dict:
    """The numbers ``dvc metrics diff`` reads: metrics, interval bounds, base model, slices."""
    flat: dict = {k: round(v, 6) for k, v in evaluation.metrics.items()}
    for name, ci in evaluation.intervals.items():
        flat[f"{name}_ci_low"], flat[f"{name}_ci_high"] = round(ci.low, 6), round(ci.high, 6)
    if evaluation.base_model:
        flat["base"] = {k: round(v, 6) for k, v in evaluation.base_model.items()}
    if evaluation.slices:
        flat["slices"] = {s.name: {"accuracy": round(s.accuracy, 6), "macro_f1": round(s.macro_f1, 6), "n": s.n} for s in evaluation.slices}
    flat["n_test"] = evaluation.test.n
    return flat


def _write(run_dir: Path, manifest, evaluation: EvaluationResult) -> None:
    from calibgate.runs import add_records, run_commit_lock, verify_run

    with run_commit_lock(run_dir):  # no export re-seals the run between the check and the change
        verify_run(run_dir, manifest)  # nothing changed while we evaluated
        add_records(run_dir, manifest, {  # with the manifest, all or nothing: a full disk or Ctrl-C changes no file
            EVALUATION: (evaluation.model_dump_json(indent=2) + "\n").encode("utf-8"),
            METRICS: (json.dumps(flat_metrics(evaluation), indent=2, sort_keys=True) + "\n").encode("utf-8"),
        })



def _check_unseen_spellings(path: Path, unseen: list[str], labels: list[str]) -> None:
    """A label the model lacks that reads as one it has ('Card_Arrival ' for 'card_arrival') is the model's class
    written another way, not a new class whose rows count as errors."""
    from calibgate.data.jsonl import label_key

    known = {label_key(label): label for label in labels}
    for label in unseen:
        if (same := known.get(label_key(label))) is not None:
            raise DataError(
                f"{path}: label {ascii(label)} differs from the model's {ascii(same)} only in case, spaces, invisible "
                "characters or Unicode normalisation: one class written two ways, not a new class",
                fix=f"write it as {ascii(same)}, the way the training data does",
            )


__all__ = ["evaluate", "flat_metrics", "DataError"]
