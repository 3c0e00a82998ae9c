"""Batched, dynamically padded inference through the serving graph (encoder -> pooling -> head).

Used by the training loop (tokenize, collate), the planner's hidden-state view, a trained model's ``predict_proba`` and
evaluation; it lives with training, which evaluation already builds on, so the two never import each other.

Texts are sorted by token count and padded per batch, so a batch of short
texts costs short-text time; ``torch.inference_mode`` skips autograd state.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def tokenize(tokenizer, texts: Sequence[str], *, max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length``, unpadded."""
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def collate(ids: Sequence[Sequence[int]], pad_id: int):
    """Right-padded ``(input_ids, attention_mask)`` tensors for one batch."""
    import torch

    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return input_ids, mask


def pad_id(tokenizer) -> int:
    value = tokenizer.pad_token_id
    if value is None:
        value = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return int(value)


def predict_proba(classifier, tokenizer, texts: Sequence[str], *, max_length: int, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """Softmax over the classifier's logits, one row per text, in input order."""
    import torch

    if not texts:
        raise ValueError("predict_proba needs at least one text")
    ids = tokenize(tokenizer, texts, max_length=max_length)
    order = np.argsort([-len(row) for row in ids], kind="stable")
    pad = pad_id(tokenizer)
    out: np.ndarray | None = None
    classifier.eval()
    with torch.inference_mode():
        for start in range(0, len(ids), batch_size):
            index = order[start : start + batch_size]
            input_ids, mask = collate([ids[i] for i in index], pad)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                logits = classifier(input_ids.to(device), mask.to(device))
            probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            if out is None:
                out = np.zeros((len(ids), probs.shape[1]), dtype=np.float32)
            out[index] = probs
    return out
