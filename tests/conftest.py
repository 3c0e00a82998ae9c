"""Shared fixtures: an isolated HOME and cache, tiny random models built locally, real data.

Tiny models are random-config BERT and Llama models with the real MiniLM
tokenizer, written to a session temp dir: fast for code paths, nothing
downloaded. The real MiniLM is used by tests marked ``slow``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True, scope="session")
def _isolated_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    # the suite runs inside GitHub Actions too: none of the job's GITHUB_* variables (a pull request's
    # GITHUB_BASE_REF, the step summary, the token) may reach the code under test unless a test sets it
    github = [k for k in os.environ if k.startswith("GITHUB_")]
    old = {k: os.environ.get(k) for k in ("HOME", "CALIBGATE_CACHE_DIR", "GIT_CONFIG_NOSYSTEM", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DVC_NO_ANALYTICS", *github)}
    os.environ["HOME"] = str(home)
    os.environ["CALIBGATE_CACHE_DIR"] = str(home / "cache")
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["DVC_NO_ANALYTICS"] = "1"
    for key in github:
        os.environ.pop(key, None)
    (home / ".gitconfig").write_text("[user]\n\tname = calibgate tests\n\temail = tests@calibgate.invalid\n[init]\n\tdefaultBranch = main\n")
    yield
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from calibgate.embeddings.encoder import default_model_dir

    return default_model_dir()


def _copy_tokenizer(src: Path, dst: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, dst / name)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, minilm_dir) -> Path:
    """A 2-layer, 32-wide random BERT with MiniLM's tokenizer and sentence-transformers pooling files."""
    from transformers import BertConfig, BertModel

    out = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(out, safe_serialization=True)
    _copy_tokenizer(minilm_dir, out)
    (out / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Normalize"}]))
    return out


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, minilm_dir) -> Path:
    """A 2-layer random Llama-style decoder (last-token pooling) with a word-piece tokenizer."""
    from transformers import LlamaConfig, LlamaModel

    out = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(
        vocab_size=30522, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=128, pad_token_id=0,
    )
    import torch

    torch.manual_seed(0)
    LlamaModel(config).save_pretrained(out, safe_serialization=True)
    _copy_tokenizer(minilm_dir, out)
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED_DATASETS.exists():
        pytest.skip(f"shared data sets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS


def demo_data_dir() -> Path:
    """The repo's DVC-tracked demo data, restored from the in-repo directory remote on a fresh clone."""
    demo = REPO_ROOT / "datasets"
    if not (demo / "train.jsonl").exists():
        from dvc.repo import Repo

        with Repo(str(REPO_ROOT)) as repo:
            repo.pull(targets=[str(REPO_ROOT / "datasets.dvc")])
    return demo


def pick(rows: list[dict], labels: list[str], per_class: int) -> list[dict]:
    """The first ``per_class`` rows of each label, in label order."""
    out = []
    for label in labels:
        out += [r for r in rows if r["label"] == label][:per_class]
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def invoke_in(directory: Path, *args: str):
    """Run the CLI with ``directory`` as the working directory (a project's calibgate.yaml is found there)."""
    from click.testing import CliRunner

    from calibgate.cli import cli

    old = os.getcwd()
    os.chdir(directory)
    try:
        return CliRunner().invoke(cli, list(args))
    finally:
        os.chdir(old)
