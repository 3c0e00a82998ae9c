"""The one serving graph every strategy reduces to: encoder -> pooling -> head.

* ``embedding-probe``: frozen base encoder, linear head from logistic regression
* ``retrieval``: frozen base encoder, kNN head voting over stored labeled keys
* ``lora`` / ``full-finetune``: tuned (merged) encoder, trained linear head

:class:`TextClassifier` maps ``(input_ids, attention_mask)`` to logits; ONNX
export traces exactly this module, so torch and ONNX serve the same function.
Imports torch: only training, export and evaluation load this module.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from calibgate.embeddings.encoder import pool
from calibgate.runs import HeadSpec, RunManifest


class LinearHead(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.copy_(bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear(pooled)


class KNNHead(nn.Module):
    """Cosine kNN vote over stored keys; logits are log vote shares (smoothed).

    Votes are similarity-weighted when ``weighting == "similarity"``. The
    output is a proper log-probability so argmax, softmax and calibration
    metrics behave as for a linear head.
    """

    def __init__(self, keys: torch.Tensor, key_labels: torch.Tensor, n_classes: int, k: int, weighting: str = "uniform"):
        super().__init__()
        self.register_buffer("keys", nn.functional.normalize(keys.float(), dim=1))
        self.register_buffer("key_onehot", nn.functional.one_hot(key_labels.long(), n_classes).float())
        self.k = int(min(k, keys.shape[0]))
        self.weighting = weighting

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        query = nn.functional.normalize(pooled, dim=1)
        sims = query @ self.keys.T
        top, idx = torch.topk(sims, self.k, dim=1)
        weights = top.clamp(min=0.0) + 1e-6 if self.weighting == "similarity" else torch.ones_like(top)
        votes = (self.key_onehot[idx] * weights.unsqueeze(-1)).sum(dim=1)
        shares = (votes + 0.1 / votes.shape[1]) / (votes.sum(dim=1, keepdim=True) + 0.1)
        return torch.log(shares)


class TextClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, head: nn.Module, *, pooling: str, normalize: bool):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.pooling = pooling
        self.normalize = normalize

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool(hidden, attention_mask, pooling=self.pooling, normalize=self.normalize)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(input_ids, attention_mask))


def build_head(spec: HeadSpec, tensors: dict[str, torch.Tensor], n_classes: int) -> nn.Module:
    if spec.kind == "linear":
        return LinearHead(tensors["weight"], tensors["bias"])
    return KNNHead(tensors["keys"], tensors["key_labels"], n_classes, spec.k or 10, spec.weighting or "uniform")


def load_classifier(run_dir: str | Path, manifest: RunManifest | None = None):
    """(TextClassifier in eval mode, tokenizer, manifest) for a verified run directory."""
    from safetensors.torch import load_file

    from calibgate.embeddings.modeldir import check_model_dir, load_pretrained_model, load_pretrained_tokenizer
    from calibgate.runs import ENCODER_DIR, HEAD, load_run

    run_dir = Path(run_dir)
    manifest = manifest or load_run(run_dir)
    check_model_dir(run_dir / ENCODER_DIR, option="--run")
    tokenizer = load_pretrained_tokenizer(run_dir / ENCODER_DIR)
    encoder = load_pretrained_model(run_dir / ENCODER_DIR)
    head = build_head(manifest.head, load_file(str(run_dir / HEAD)), len(manifest.label_names))
    model = TextClassifier(encoder, head, pooling=manifest.pooling, normalize=manifest.normalize).eval()
    return model, tokenizer, manifest
