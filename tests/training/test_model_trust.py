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
