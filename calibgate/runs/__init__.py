"""The run directory: what ``calibgate train`` writes and every later step reads.

A run directory is self-contained (weights in safetensors, tokenizer, label
map, config, plan, lineage) and carries the sha256 of every file in its
manifest ``calibgate-run.json``. :func:`load_run` re-hashes and refuses a
tampered run; the registry records the same hashes.

This package owns the run-directory contract; every other module asks it:

* :mod:`~calibgate.runs.layout`: every file and folder name inside a run;
* :mod:`~calibgate.runs.manifest`: the manifest, hashing and verification;
* :mod:`~calibgate.runs.readers`: one typed reader per record a run holds
  (plan, evaluation, export), all ending in :func:`~calibgate.runs.parsing.parse_record`,
  the one bytes -> record step with one error behaviour.

Layout::

    runs/<run_id>/
      calibgate-run.json      RunManifest (manifest.py)
      encoder/                HF model dir: config, model.safetensors, tokenizer
                              (merged weights for lora / full-finetune, the
                              frozen base for embedding-probe / retrieval)
      head.safetensors        linear head {"weight", "bias"} or kNN index
                              {"keys", "key_labels"}
      baseline/probe_head.safetensors   probe on the frozen base (the base model's score)
      adapter/                peft adapter (lora only), for reference
      README.md               model card with Hugging Face metadata
      train_config.json  curves.json  plan.json
      evaluation.json  metrics.json                   (calibgate evaluate)
      export/export.json  model.onnx  model.int8.onnx  tokenizer.json   (calibgate export)
"""

from __future__ import annotations

from calibgate.runs.layout import *  # noqa: F401,F403 - the names are the package's API
from calibgate.runs.manifest import (  # noqa: F401
    RUN_SCHEMA_VERSION, HeadSpec, RunManifest, Strategy, add_files, add_records, hash_tree, load_run, manifest_digest,
    parse_manifest, read_manifest, run_commit_lock, run_files, sha256_file, verify_run, write_manifest,
)
from calibgate.runs.parsing import first_problem, parse_record  # noqa: F401
from calibgate.runs.readers import read_evaluation, read_export, read_plan, read_record, verified_bytes  # noqa: F401
