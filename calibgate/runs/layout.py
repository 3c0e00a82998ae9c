"""Every file and folder name inside a run directory, in one place.

``calibgate train`` writes the first group, ``evaluate`` and ``export`` add
theirs; the registry, the gate, the report, serving and drift read them.
Names are POSIX paths relative to the run root (the form the manifest's
``files`` uses). No other module spells them: ``tests/test_run_layout.py``
fails on a string constant equal to one of them anywhere else in calibgate.
Changing a name breaks every run already written, so they never change.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

__all__ = [
    "MANIFEST", "ENCODER_DIR", "HEAD", "BASELINE_DIR", "BASELINE_HEAD", "ADAPTER_DIR", "ADAPTER_WEIGHTS", "MODEL_CARD",
    "TRAIN_CONFIG", "CURVES", "PLAN", "EVALUATION", "METRICS", "EXPORT_DIR", "EXPORT_RECORD", "EXPORT_TOKENIZER",
    "ONNX_FILES", "FILES", "FOLDERS", "file_name", "RUN_ID_PATTERN", "is_run_id",
]

MANIFEST = "calibgate-run.json"  # RunManifest, written last (calibgate.runs.manifest)

# written by 'calibgate train'
ENCODER_DIR = "encoder"  # HF model dir: merged weights (lora / full-finetune) or the frozen base
HEAD = "head.safetensors"  # linear head {"weight", "bias"} or kNN index {"keys", "key_labels"}
BASELINE_DIR = "baseline"
BASELINE_HEAD = f"{BASELINE_DIR}/probe_head.safetensors"  # probe on frozen base embeddings: the base model's score
ADAPTER_DIR = "adapter"  # peft adapter (lora only), for reference
ADAPTER_WEIGHTS = f"{ADAPTER_DIR}/adapter_model.safetensors"
MODEL_CARD = "README.md"  # Hugging Face model card
TRAIN_CONFIG = "train_config.json"
CURVES = "curves.json"
PLAN = "plan.json"  # the Plan the run was trained from, when there was one

# written by 'calibgate evaluate'
EVALUATION = "evaluation.json"  # EvaluationResult
METRICS = "metrics.json"  # flat numbers for 'dvc metrics diff'

# written by 'calibgate export' (the folder is swapped in whole)
EXPORT_DIR = "export"
EXPORT_RECORD = f"{EXPORT_DIR}/export.json"  # ExportResult
EXPORT_TOKENIZER = f"{EXPORT_DIR}/tokenizer.json"  # tokenizers-library JSON for torch-free serving
ONNX_FILES = {"fp32": f"{EXPORT_DIR}/model.onnx", "int8": f"{EXPORT_DIR}/model.int8.onnx"}

FILES = (MANIFEST, HEAD, BASELINE_HEAD, ADAPTER_WEIGHTS, MODEL_CARD, TRAIN_CONFIG, CURVES, PLAN, EVALUATION, METRICS,
         EXPORT_RECORD, EXPORT_TOKENIZER, *ONNX_FILES.values())
FOLDERS = (ENCODER_DIR, BASELINE_DIR, ADAPTER_DIR, EXPORT_DIR)


def file_name(rel: str) -> str:
    """The last part of a run path: ``export/model.onnx`` -> ``model.onnx`` (a file inside its folder, or a copy
    of a run record kept elsewhere under its own name, as the registry's evidence commit and ``ci --out`` do)."""
    return PurePosixPath(rel).name


# a run id names one directory under runs/: letters, digits, '.', '_', '-'; no separator, no '..', no leading '-' or
# '.', at most 128 characters (what train generates: 20261202-071500-lora-r16-3fa9)
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_run_id(value: object) -> bool:
    return isinstance(value, str) and RUN_ID_PATTERN.fullmatch(value) is not None and ".." not in value
