"""The production model's probabilities on a list of texts, and embeddings with the project's encoder.

The model is scored through its ONNX export when it has one (what serving
runs, no torch), else through the run's torch classifier.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from calibgate.settings import ProjectConfig


@contextmanager
def model_run_dir(cfg: ProjectConfig, *, model: str | Path | None, version: str | None) -> Iterator[Path | None]:
    """``model`` as given, else the registry version ``version`` restored into a temp dir (verified), else None."""
    if model is not None:
        from calibgate.runs import read_manifest

        read_manifest(model, option="--model")  # before any text is embedded; the fix names the option given
        yield Path(model)
        return
    if version is None:
        yield None
        return
    from calibgate.registry.api import fetch_version

    with tempfile.TemporaryDirectory(prefix="calibgate-production-") as tmp:
        yield Path(fetch_version(version, Path(tmp) / "run", repo=cfg.root))


def model_probs(run_dir: Path, texts: list[str]) -> tuple[np.ndarray, list[str]]:
    """(n, k) softmax probabilities of the run on ``texts`` and its label names."""
    from calibgate.runs import EXPORT_RECORD, read_manifest

    manifest = read_manifest(run_dir)
    from calibgate.export.serving import Predictor, softmax

    if EXPORT_RECORD in manifest.files:

        predictor = Predictor.from_run(run_dir)
        return softmax(predictor.logits(texts)), list(predictor.label_names)
    from calibgate.training.predict import predict_proba
    from calibgate.modeling import load_classifier

    classifier, tokenizer, manifest = load_classifier(run_dir)
    return predict_proba(classifier, tokenizer, texts, max_length=manifest.max_length), list(manifest.label_names)


def embed(cfg: ProjectConfig, texts: list[str]) -> np.ndarray:
    """Frozen-encoder embeddings of ``texts`` (cached on disk by the encoder)."""
    from calibgate.embeddings.encoder import embed_texts

    return embed_texts(texts, model=cfg.model_path()).vectors
