"""The one gate every Hugging Face model directory passes before anything in it is loaded.

calibgate loads weights only from safetensors (no pickle: ``pytorch_model.bin``,
``*.pt``, ``*.ckpt`` can run code when unpickled) and never runs code shipped
with a model (``auto_map`` / ``trust_remote_code``). :func:`check_model_dir`
refuses anything else *before* transformers sees the directory, with a
:class:`~calibgate.errors.ModelError` (exit code 2, one line naming the path
and the fix); :func:`load_pretrained_model` and :func:`load_pretrained_tokenizer`
are the only callers of ``from_pretrained`` and always pass
``use_safetensors=True, trust_remote_code=False, local_files_only=True``.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

from calibgate.errors import ModelError
from calibgate.paths import MACHINE_ERRNOS, PICKLE_SUFFIXES  # PICKLE_SUFFIXES: formats that are (or wrap) pickle

_CONFIGS = ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json",
            "generation_config.json", "adapter_config.json")
_FIX_WEIGHTS = ("convert the weights to safetensors (e.g. model.save_pretrained(dir, safe_serialization=True)"
                " in a trusted environment) and remove the pickle files")


def _read_config(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not UTF-8, not JSON, an absurd integer
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ModelError(f"{path}: unreadable model config ({reason})", fix="restore the model directory from its source") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: model config is a JSON {type(data).__name__}, not an object", fix="restore the model directory")
    return data


def _remote_code(config: dict) -> bool:
    return bool(config.get("auto_map")) or bool(config.get("trust_remote_code")) or any(
        isinstance(v, dict) and bool(v.get("auto_map")) for v in config.values()
    )


def check_model_dir(path: str | Path, *, option: str = "--model") -> dict:
    """Validate a local model directory and return its ``config.json``; :class:`ModelError` on anything unsafe.

    Refused: not a directory; no or unreadable ``config.json``; a config (model,
    tokenizer, processor, adapter) naming custom code (``auto_map``,
    ``trust_remote_code``); weights other than safetensors, or no weights;
    ``*.py`` files beside the weights (remote code); symlinked weights.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"model directory {str(path)!r} not found",
                         fix=f"pass {option} a local Hugging Face model directory (calibgate does not download models)")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{path}: no config.json, not a Hugging Face model directory",
                         fix=f"pass {option} a directory saved with save_pretrained (config.json + model.safetensors)")
    config = _read_config(config_file)
    for name in _CONFIGS:
        extra = config if name == "config.json" else (_read_config(path / name) if (path / name).is_file() else {})
        if _remote_code(extra):
            raise ModelError(f"{path / name}: the model asks to run its own code (auto_map / trust_remote_code)",
                             fix="calibgate never runs code shipped with a model; use an architecture transformers implements")
    code = sorted(p.name for p in path.glob("*.py"))
    if code:
        raise ModelError(f"{path}: ships Python code ({code[0]}): remote code is never run",
                         fix="remove the .py files and use an architecture transformers implements")
    files = [p for p in path.iterdir() if p.is_file() or p.is_symlink()]
    pickles = sorted(p.name for p in files if p.suffix.lower() in PICKLE_SUFFIXES)
    weights = sorted(p for p in files if p.suffix == ".safetensors")
    if pickles:
        raise ModelError(f"{path}: {pickles[0]} is a pickle-format file; calibgate loads safetensors only", fix=_FIX_WEIGHTS)
    if not weights:
        raise ModelError(f"{path}: no model.safetensors (config but no weights)",
                         fix="restore the weights as safetensors, or pass the directory that holds them")
    linked = [p.name for p in weights if p.is_symlink()]
    if linked:
        raise ModelError(f"{path}: {linked[0]} is a symlink", fix="copy the real weight file into the model directory")
    empty = [p.name for p in weights if p.stat().st_size < 8]  # safetensors starts with an 8-byte header length
    if empty:
        raise ModelError(f"{path}: {empty[0]} is empty or truncated", fix="restore the weights from the model's source")
    return config


@contextlib.contextmanager
def _loading(path: str | Path, what: str):
    """Any failure of ``from_pretrained`` on a checked directory is the directory's fault (exit 2), in one line.

    transformers raises OSError, ValueError, RuntimeError, KeyError or safetensors' own error for a damaged or
    inconsistent directory (a truncated header, a tokenizer that is not JSON, a config whose sizes the weights do not
    have); a full disk or memory stays an environment failure (:data:`calibgate.paths.MACHINE_ERRNOS`).
    """
    try:
        yield
    except (ModelError, MemoryError):
        raise
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in MACHINE_ERRNOS:
            raise
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ModelError(f"{path}: cannot load the {what} ({type(exc).__name__}: {detail})",
                         fix="restore the model directory from its source (config, tokenizer and weights saved together)") from None


def load_pretrained_model(path: str | Path):
    """``AutoModel.from_pretrained`` of a checked directory: safetensors only, no remote code, no download."""
    from calibgate._lazy import require

    check_model_dir(path)
    transformers = require("transformers")
    with _loading(path, "model"):
        model, info = transformers.AutoModel.from_pretrained(
            str(path), local_files_only=True, use_safetensors=True, trust_remote_code=False, output_loading_info=True
        )
    # weights the architecture needs but the file lacks are initialised at random: a config that does not match its
    # weights (another architecture, more layers) would embed, train and score with noise and exit 0
    missing = sorted(info.get("missing_keys") or []) + sorted(k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys") or [])
    if missing:
        raise ModelError(f"{path}: the weights do not fit config.json: {len(missing)} tensor(s) missing or of another "
                         f"shape (first: {missing[0]}), which would be random", fix="restore config.json and the weights "
                         "from the same model (model_type, num_hidden_layers and sizes as saved)")
    # a layer the weights hold but the config does not build (num_hidden_layers 0, -1, or fewer than saved) is dropped
    # in silence: another, shallower model embedded, trained and was exported under the directory's name, exit 0.
    # Other unused tensors stay allowed: a checkpoint's task head (an MLM or LM head) is not part of the encoder
    unbuilt = sorted(key for key in info.get("unexpected_keys") or [] if _LAYER_KEY.search(str(key)))
    if unbuilt:
        raise ModelError(f"{path}: the weights hold layers config.json does not build ({len(unbuilt)} tensor(s) unused, "
                         f"first: {unbuilt[0]}; num_hidden_layers is {config_layers(path)!r})", fix="restore config.json "
                         "and the weights from the same model (num_hidden_layers as saved)")
    return model


_LAYER_KEY = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.\d+\.")  # encoder.layer.3., model.layers.3., h.3.


def config_layers(path: str | Path):
    """``num_hidden_layers`` as config.json gives it (None when it does not)."""
    return _read_config(Path(path) / "config.json").get("num_hidden_layers")


def load_pretrained_tokenizer(path: str | Path):
    """``AutoTokenizer.from_pretrained`` of a checked directory (pad token set to EOS when missing)."""
    from calibgate._lazy import require

    config = check_model_dir(path)
    transformers = require("transformers")
    with _loading(path, "tokenizer"):
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    vocab = config.get("vocab_size")
    if isinstance(vocab, int) and not isinstance(vocab, bool) and len(tokenizer) > vocab:
        # ids past the model's embedding table: the first text holding such a token crashed inside torch (IndexError,
        # exit 3) after the plan or the training had started
        raise ModelError(f"{path}: the tokenizer knows {len(tokenizer)} tokens but the model's embedding table has {vocab} "
                         "(a tokenizer of another model?)", fix="restore the model directory's tokenizer files from its "
                         "source, or resize the embeddings and save the model with its tokenizer")
    if isinstance(vocab, int) and not isinstance(vocab, bool) and len(tokenizer) < max(2, vocab // 2):
        # transformers builds a tokenizer of a handful of special tokens when tokenizer.json and vocab.txt are gone:
        # every word becomes [UNK], and plans, training and exports run on constant inputs without an error
        raise ModelError(f"{path}: the tokenizer knows {len(tokenizer)} tokens but the model has {vocab} (tokenizer.json / "
                         "vocab files missing?)", fix="restore the model directory's tokenizer files from its source")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
