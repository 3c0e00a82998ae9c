"""Tiny real data (rows from the demo banking77 subset) and a tiny calibgate project."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import demo_data_dir, pick, read_jsonl, write_jsonl

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_rows() -> dict[str, list[dict]]:
    return {split: read_jsonl(demo_data_dir() / f"{split}.jsonl") for split in ("train", "test", "calibration")}


@pytest.fixture(scope="session")
def four_labels(demo_rows) -> list[str]:
    return sorted({r["label"] for r in demo_rows["train"]})[:4]


@pytest.fixture(scope="session")
def tiny_sets(demo_rows, four_labels):
    """(train, test) LabeledSets: 4 intents, 10 and 5 rows each."""
    from calibgate.data.jsonl import from_records

    tr = pick(demo_rows["train"], four_labels, 10)
    te = pick(demo_rows["test"], four_labels, 5)
    train = from_records([r["text"] for r in tr], [r["label"] for r in tr])
    test = from_records([r["text"] for r in te], [r["label"] for r in te], label_names=train.label_names)
    return train, test


@pytest.fixture()
def tiny_project(tmp_path, demo_rows, four_labels, tiny_bert_dir) -> Path:
    """A calibgate project dir: calibgate.yaml on the tiny BERT, 40 train / 20 test rows."""
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", pick(demo_rows["train"], four_labels, 10))
    write_jsonl(data / "test.jsonl", pick(demo_rows["test"], four_labels, 5))
    (tmp_path / "calibgate.yaml").write_text(
        f"model: {tiny_bert_dir}\nruns_dir: runs\nseed: 0\n"
        "data:\n  train: data/train.jsonl\n  test: data/test.jsonl\n  calibration: data/train.jsonl\n"
        "  production: null\n  dvc_target: null\n",
        encoding="utf-8",
    )
    return tmp_path
