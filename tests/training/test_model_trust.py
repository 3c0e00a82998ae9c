"""Model directories that could run code, or are broken, are refused before anything is loaded: exit 2, one line.

Every "evil" directory is real: ``pytorch_model.bin`` is a pickle that writes
a marker file when unpickled, ``modeling_evil.py`` writes one when imported.
The marker must never appear.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from calibgate.errors import ModelError
from tests.conftest import invoke_in


class _Payload:
    """Unpickling this calls exec, which writes the marker file: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def evil_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    return path


def _base(dst: Path, tiny_bert_dir: Path, *, weights: bool = True) -> Path:
    dst.mkdir(parents=True)
    for p in tiny_bert_dir.iterdir():
        if p.is_file() and (weights or p.suffix != ".safetensors"):
            shutil.copy(p, dst / p.name)
    return dst


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "MARKER-code-ran"


@pytest.fixture
def bad_dirs(tmp_path, tiny_bert_dir, marker) -> dict[str, Path]:
    root = tmp_path / "models"
    out = {}
    d = _base(root / "pickle-only", tiny_bert_dir, weights=False)
    evil_pickle(d / "pytorch_model.bin", marker)
    out["pickle-only"] = d
    d = _base(root / "pickle-beside-safetensors", tiny_bert_dir)
    evil_pickle(d / "training_args.pt", marker)
    out["pickle-beside-safetensors"] = d
    d = _base(root / "ckpt", tiny_bert_dir, weights=False)
    evil_pickle(d / "model.ckpt", marker)
    out["ckpt"] = d
    d = _base(root / "auto-map", tiny_bert_dir)
    config = json.loads((d / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (d / "config.json").write_text(json.dumps(config))
    (d / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    out["auto-map"] = d
    d = _base(root / "tokenizer-remote-code", tiny_bert_dir)
    tok = json.loads((d / "tokenizer_config.json").read_text())
    tok["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
    (d / "tokenizer_config.json").write_text(json.dumps(tok))
    out["tokenizer-remote-code"] = d
    d = _base(root / "no-config", tiny_bert_dir)
    (d / "config.json").unlink()
    out["no-config"] = d
    out["config-no-weights"] = _base(root / "config-no-weights", tiny_bert_dir, weights=False)
    d = _base(root / "unreadable-config", tiny_bert_dir)
    (d / "config.json").write_text("{not json")
    out["unreadable-config"] = d
    d = _base(root / "config-not-object", tiny_bert_dir)
    (d / "config.json").write_text("[1, 2]")
    out["config-not-object"] = d
    out["missing"] = root / "does-not-exist"
    return out


def test_the_payload_is_live(tmp_path):
    live = tmp_path / "live-marker"
    pickle.loads(evil_pickle(tmp_path / "p.bin", live).read_bytes())
    assert live.exists()  # so its absence below means nothing was unpickled


def test_library_refuses_before_loading(bad_dirs, marker):
    from calibgate.embeddings.encoder import resolve_model_dir
    from calibgate.embeddings.modeldir import load_pretrained_model, load_pretrained_tokenizer

    for name, path in bad_dirs.items():
        for load in (resolve_model_dir, load_pretrained_model, load_pretrained_tokenizer):
            with pytest.raises(ModelError) as info:
                load(path)
            assert info.value.exit_code == 2 and str(path) in info.value.message, (name, info.value)
            assert "\n" not in info.value.format() and info.value.fix, name
    assert not marker.exists()


def test_train_and_plan_refuse_every_bad_model_dir(tiny_project, bad_dirs, marker):
    for name, path in bad_dirs.items():
        for args in (["train", "--strategy", "embedding-probe", "--model", str(path), "-q"], ["plan", "--model", str(path)]):
            result = invoke_in(tiny_project, *args)
            lines = result.stderr.strip().splitlines()
            assert result.exit_code == 2, (name, args, result.output)
            assert len(lines) == 1 and str(path) in lines[0] and "fix:" in lines[0], (name, lines)
    assert not marker.exists() and not (tiny_project / "runs").exists()


def test_a_run_whose_encoder_was_swapped_for_a_pickle_is_refused(tiny_project, marker):
    from calibgate.runs import read_manifest, write_manifest

    assert invoke_in(tiny_project, "train", "--strategy", "embedding-probe", "--run-id", "r", "-q").exit_code == 0
    run = tiny_project / "runs" / "r"
    (run / "encoder" / "model.safetensors").unlink()
    evil_pickle(run / "encoder" / "pytorch_model.bin", marker)
    write_manifest(run, read_manifest(run))  # the attacker re-hashes: the manifest alone cannot stop this
    for args in (["evaluate", "--run", "runs/r"], ["export", "--run", "runs/r", "--latency-runs", "0"]):
        result = invoke_in(tiny_project, *args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and "pytorch_model.bin" in lines[0], (args, result.output)
    assert not marker.exists()


def test_a_run_with_remote_code_in_its_encoder_is_refused(tiny_project, marker):
    from calibgate.runs import read_manifest, write_manifest

    assert invoke_in(tiny_project, "train", "--strategy", "embedding-probe", "--run-id", "r", "-q").exit_code == 0
    run = tiny_project / "runs" / "r"
    config = json.loads((run / "encoder" / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (run / "encoder" / "config.json").write_text(json.dumps(config))
    write_manifest(run, read_manifest(run))
    result = invoke_in(tiny_project, "evaluate", "--run", "runs/r")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "auto_map" in lines[0], result.output
    assert not marker.exists()


def test_no_call_site_bypasses_the_check():
    """from_pretrained and torch.load appear only in the one validating module; trust_remote_code is never True."""
    root = Path(__file__).resolve().parents[2] / "calibgate"
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "modeldir.py":
            assert ".from_pretrained(" not in text, path
        assert "torch.load(" not in text and "trust_remote_code=True" not in text, path


def test_the_model_fingerprint_is_content_not_modification_time(tiny_bert_dir, tmp_path):
    """A reinstall of the same weights (a fresh venv, another clone) keeps every cache keyed on the model; other weights
    get another key."""
    import os
    import shutil

    from calibgate.embeddings.encoder import _fingerprint

    copy = tmp_path / "copy"
    shutil.copytree(tiny_bert_dir, copy)
    weights = next(copy.glob("*.safetensors"))
    os.utime(weights, (1_000_000_000, 1_000_000_000))
    assert _fingerprint(copy) == _fingerprint(tiny_bert_dir)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # the last weight byte changes: another model
    weights.write_bytes(bytes(data))
    assert _fingerprint(copy) != _fingerprint(tiny_bert_dir)


@pytest.fixture
def inconsistent_dirs(tmp_path, tiny_bert_dir) -> dict[str, Path]:
    """Directories that pass the safety check but cannot be the model they claim: each must be exit 2, not random
    weights with exit 0, nor an internal error."""
    root = tmp_path / "inconsistent"
    out = {}
    d = _base(root / "more-layers", tiny_bert_dir)
    config = json.loads((d / "config.json").read_text())
    config["num_hidden_layers"] = 4  # the weights hold 2: blocks 3 and 4 would be random
    (d / "config.json").write_text(json.dumps(config))
    out["more-layers"] = d
    for name, layers in (("fewer-layers", 1), ("no-layers", 0), ("negative-layers", -1)):
        d = _base(root / name, tiny_bert_dir)  # the weights' unbuilt blocks were dropped in silence: a shallower model
        config = json.loads((d / "config.json").read_text())
        config["num_hidden_layers"] = layers
        (d / "config.json").write_text(json.dumps(config))
        out[name] = d
    d = _base(root / "tokenizer-past-the-embeddings", tiny_bert_dir, weights=False)
    from transformers import BertConfig, BertModel

    config = json.loads((d / "config.json").read_text())  # MiniLM's 30,522 token ids into a table of 16,000 rows:
    config.pop("architectures", None)  # IndexError inside torch at the first rare word, exit 3
    BertModel(BertConfig(**{**config, "vocab_size": 16000})).save_pretrained(d, safe_serialization=True)
    out["tokenizer-past-the-embeddings"] = d
    d = _base(root / "other-architecture", tiny_bert_dir)
    config = json.loads((d / "config.json").read_text())
    config.update(model_type="llama", architectures=["LlamaForCausalLM"], intermediate_size=64, num_key_value_heads=2)
    (d / "config.json").write_text(json.dumps(config))
    out["other-architecture"] = d
    d = _base(root / "empty-weights", tiny_bert_dir)
    next(d.glob("*.safetensors")).write_bytes(b"")
    out["empty-weights"] = d
    d = _base(root / "tokenizer-not-json", tiny_bert_dir)
    (d / "tokenizer.json").write_text("root:x:0:0:root:/root:/bin/bash\n")
    out["tokenizer-not-json"] = d
    return out


def test_a_directory_whose_parts_do_not_fit_is_refused_when_loaded(inconsistent_dirs, tiny_project):
    from calibgate.embeddings.modeldir import load_pretrained_model, load_pretrained_tokenizer

    for name, path in inconsistent_dirs.items():
        with pytest.raises(ModelError) as info:
            load_pretrained_tokenizer(path)
            load_pretrained_model(path)
        assert info.value.exit_code == 2 and str(path) in info.value.message and "\n" not in info.value.format(), name
        result = invoke_in(tiny_project, "plan", "--fast", "--model", str(path))
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and str(path) in lines[0], (name, result.output)


def test_a_model_that_embeds_to_nan_is_refused(tiny_bert_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from calibgate.embeddings.encoder import embed_texts

    d = _base(tmp_path / "nan", tiny_bert_dir)
    weights = next(d.glob("*.safetensors"))
    tensors = load_file(str(weights))
    key = next(k for k in tensors if k.endswith("LayerNorm.weight"))
    tensors[key][:] = float("nan")
    save_file(tensors, str(weights), metadata={"format": "pt"})
    with pytest.raises(ModelError, match="NaN or infinite embeddings"):
        embed_texts(["card arrived", "refund please"], model=d, cache=False)


def test_a_weight_byte_changed_anywhere_is_another_model(tiny_bert_dir, tmp_path):
    from calibgate.embeddings.encoder import _fingerprint

    copy = tmp_path / "middle"
    shutil.copytree(tiny_bert_dir, copy)
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # far from both ends: a sampled hash would miss it
    weights.write_bytes(bytes(data))
    assert _fingerprint(copy) != _fingerprint(tiny_bert_dir)


@pytest.mark.parametrize("damage", ["truncated", "wrong-rows", "nan"])
def test_a_damaged_embedding_cache_entry_is_computed_again(tiny_bert_dir, damage):
    import hashlib

    import numpy as np

    from calibgate.embeddings.encoder import cache_dir, embed_texts, resolve_model_dir, write_cached_arrays

    texts = [f"damaged cache text {damage} {i}" for i in range(4)]
    first = embed_texts(texts, model=tiny_bert_dir)
    info = resolve_model_dir(tiny_bert_dir)
    key = hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]  # embed_texts' key
    entry = cache_dir() / "embeddings" / info.fingerprint / f"{key}.npz"
    assert entry.is_file()
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:100])
    elif damage == "wrong-rows":
        write_cached_arrays(entry, {"vectors": first.vectors[:2], "n_tokens": first.n_tokens[:2]})
    else:
        write_cached_arrays(entry, {"vectors": np.full_like(first.vectors, np.nan), "n_tokens": first.n_tokens})
    again = embed_texts(texts, model=tiny_bert_dir)
    assert not again.from_cache and np.allclose(again.vectors, first.vectors)


@pytest.mark.parametrize("file, edit", [
    ("config.json", lambda c: {**c, "max_position_embeddings": float("inf")}),  # written as 'Infinity', or 1e400 in JSON
    ("sentence_bert_config.json", lambda c: {**c, "max_seq_length": float("inf")}),
    ("config.json", lambda c: {**c, "max_position_embeddings": float("nan")}),
])
def test_a_model_config_with_an_infinite_length_is_a_bad_model_dir(tmp_path, tiny_bert_dir, file, edit):
    """int(inf) raised OverflowError, an internal error (exit 3)."""
    from calibgate.embeddings.encoder import resolve_model_dir

    d = _base(tmp_path / "inf", tiny_bert_dir)
    config = json.loads((d / file).read_text()) if (d / file).exists() else {}
    (d / file).write_text(json.dumps(edit(config)))
    with pytest.raises(ModelError, match="unreadable sentence-transformers config") as info:
        resolve_model_dir(d)
    assert info.value.exit_code == 2
