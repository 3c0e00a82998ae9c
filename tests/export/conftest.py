"""Real run directories for export tests, written through calibgate.runs without the training branch.

Each run copies a tiny random encoder (or the real MiniLM), stores a linear
head or a kNN index in head.safetensors, and is sealed by write_manifest, so
export and serving see exactly what 'calibgate train' writes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

LABELED = [
    ("my card still hasn't arrived after two weeks", "card_arrival"),
    ("when will the new card be delivered to my house", "card_arrival"),
    ("I ordered a card last Monday and nothing came in the post", "card_arrival"),
    ("how long does it take for a card to arrive in Spain?", "card_arrival"),
    ("The card you sent me never showed up.", "card_arrival"),
    ("is there a way to track the delivery of my card", "card_arrival"),
    ("still waiting on my card, it's been 10 days", "card_arrival"),
    ("Card not here yet", "card_arrival"),
    ("why was I charged a fee for paying with my card", "card_payment_fee_charged"),
    ("there is an extra charge on my statement for a card payment", "card_payment_fee_charged"),
    ("I got charged 1 euro for a purchase abroad, what is that?", "card_payment_fee_charged"),
    ("What's this fee on my card transaction yesterday?", "card_payment_fee_charged"),
    ("you took a fee from my card payment without telling me", "card_payment_fee_charged"),
    ("Do you charge for using the card in shops?", "card_payment_fee_charged"),
    ("a fee was applied when I paid at the supermarket", "card_payment_fee_charged"),
    ("Why is there a commission on this payment", "card_payment_fee_charged"),
    ("how do I change my PIN", "change_pin"),
    ("I want to set a new pin number for my card", "change_pin"),
    ("Can I change the PIN at an ATM or only in the app?", "change_pin"),
    ("forgot my pin, how can I reset it", "change_pin"),
    ("where in the app can the pin code be updated", "change_pin"),
    ("Is it possible to pick my own PIN?", "change_pin"),
    ("need to switch my pin to something easier to remember please", "change_pin"),
    ("PIN change", "change_pin"),
]
TEXTS = [t for t, _ in LABELED]
LABEL_NAMES = sorted({label for _, label in LABELED})


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_run(
    root: Path,
    encoder_dir: Path,
    *,
    head: str = "linear",
    tensors=None,
    strategy: str | None = None,
    tokenizer_config: dict | None = None,
    run_id: str | None = None,
) -> Path:
    """Write a sealed run directory at ``root`` (encoder copied, head.safetensors, manifest)."""
    import torch
    from safetensors.torch import save_file

    from calibgate.embeddings.encoder import resolve_model_dir
    from calibgate.runs import HeadSpec, RunManifest, write_manifest

    info = resolve_model_dir(encoder_dir)
    root.mkdir(parents=True)
    shutil.copytree(encoder_dir, root / "encoder")
    if tokenizer_config:
        config_path = root / "encoder" / "tokenizer_config.json"
        config = json.loads(config_path.read_text())
        config.update(tokenizer_config)
        config_path.write_text(json.dumps(config))
    hidden = json.loads((encoder_dir / "config.json").read_text())["hidden_size"]
    generator = torch.Generator().manual_seed(0)
    n = len(LABEL_NAMES)
    if tensors is None:
        if head == "linear":
            tensors = {
                "weight": torch.randn(n, hidden, generator=generator) * 3,
                "bias": torch.randn(n, generator=generator),
            }
        else:
            tensors = {"keys": torch.randn(18, hidden, generator=generator), "key_labels": torch.arange(18) % n}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(root / "head.safetensors"))
    spec = HeadSpec(kind="linear") if head == "linear" else HeadSpec(kind="knn", k=5, weighting="similarity")
    manifest = RunManifest(
        run_id=run_id or root.name,
        strategy=strategy or ("embedding-probe" if head == "linear" else "retrieval"),
        label_names=LABEL_NAMES,
        base_model=str(encoder_dir),
        model_type=info.model_type,
        pooling=info.pooling,
        normalize=info.normalize,
        max_length=info.max_length,
        head=spec,
    )
    write_manifest(root, manifest)
    return root


@pytest.fixture(scope="session")
def test_jsonl(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "test.jsonl", [{"text": t, "label": y} for t, y in LABELED])


@pytest.fixture(scope="session")
def bert_linear_export(tmp_path_factory, tiny_bert_dir, test_jsonl):
    """(run_dir, ExportResult): tiny BERT + linear head, exported with int8 and latency."""
    from calibgate.export.api import export

    run = make_run(tmp_path_factory.mktemp("runs") / "bert-linear", tiny_bert_dir)
    return run, export(run, quantize="int8", test=test_jsonl, latency_runs=20)


@pytest.fixture(scope="session")
def bert_knn_export(tmp_path_factory, tiny_bert_dir):
    from calibgate.export.api import export

    run = make_run(tmp_path_factory.mktemp("runs") / "bert-knn", tiny_bert_dir, head="knn")
    return run, export(run, parity_texts=TEXTS, latency_runs=0)


@pytest.fixture(scope="session")
def llama_export(tmp_path_factory, tiny_llama_dir):
    from calibgate.export.api import export

    run = make_run(tmp_path_factory.mktemp("runs") / "llama-linear", tiny_llama_dir, strategy="lora")
    return run, export(run, parity_texts=TEXTS, latency_runs=0)
