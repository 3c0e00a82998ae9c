"""A tiny project with one trained run (probe on the tiny BERT) to evaluate."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import demo_data_dir, pick, read_jsonl, write_jsonl

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def _rows(split: str, labels: list[str] | None, per_class: int) -> list[dict]:
    rows = read_jsonl(demo_data_dir() / f"{split}.jsonl")
    return pick(rows, labels or sorted({r["label"] for r in rows})[:4], per_class)


@pytest.fixture(scope="session")
def _trained_project(tmp_path_factory, tiny_bert_dir) -> Path:
    from calibgate.api import train

    root = tmp_path_factory.mktemp("eval-project")
    (root / "data").mkdir()
    train_rows = _rows("train", None, 10)
    labels = sorted({r["label"] for r in train_rows})
    write_jsonl(root / "data" / "train.jsonl", train_rows)
    write_jsonl(root / "data" / "test.jsonl", _rows("test", labels, 6))
    write_jsonl(root / "data" / "hard.jsonl", _rows("test", labels, 6)[::3])
    (root / "calibgate.yaml").write_text(
        f"model: {tiny_bert_dir}\nruns_dir: runs\ndata:\n  train: data/train.jsonl\n  test: data/test.jsonl\n"
        "  production: null\n  dvc_target: null\n",
        encoding="utf-8",
    )
    train(config=root / "calibgate.yaml", strategy="lora", lora_rank=2, epochs=1, run_id="run1")
    return root


@pytest.fixture()
def project(_trained_project, tmp_path) -> Path:
    """A fresh copy per test, so tests that tamper or write do not interfere."""
    dst = tmp_path / "project"
    shutil.copytree(_trained_project, dst, symlinks=True)
    return dst
