"""The fine-tuning loop shared by LoRA and full fine-tuning.

The recipe (measured in benchmarks/RESULTS-training.md): the serving graph
itself is trained (encoder -> the encoder's own pooling -> linear head), the
head starts from the logistic-regression probe's solution (LP-FT: Kumar et
al., 2022, arXiv:2202.10054), the head has its own, higher learning rate,
AdamW with linear warm-up and decay, and early stopping on validation loss
with the best checkpoint restored -- epoch 0 (the probe init) included, so
tuning never ends worse on validation loss than the probe it started from.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from calibgate.training.predict import collate, pad_id, tokenize


@dataclass(frozen=True)
class LoopConfig:
    epochs: int
    batch_size: int
    encoder_lr: float
    head_lr: float
    seed: int
    device: str
    patience: int = 2
    weight_decay: float = 0.01
    warmup: float = 0.06
    max_grad_norm: float = 1.0
    class_weights: np.ndarray | None = None
    resample: bool = False
    progress: bool = False


@dataclass
class LoopResult:
    curves: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    examples_seen: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # process CPU time in the training steps: a fair speed measure on a shared machine

    @property
    def examples_per_second(self) -> float:
        return self.examples_seen / self.seconds if self.seconds > 0 else 0.0


def length_bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, *, shuffle: bool = True) -> list[np.ndarray]:
    """Batches of similar-length rows: shuffle, sort within pools of 50 batches, shuffle the batches."""
    index = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    pool = batch_size * 50
    batches: list[np.ndarray] = []
    for start in range(0, len(index), pool):
        part = index[start : start + pool]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def balanced_indices(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One epoch of the same size with every present class drawn equally often (with replacement)."""
    classes = np.unique(labels)
    per_class = int(math.ceil(len(labels) / len(classes)))
    drawn = [rng.choice(np.flatnonzero(labels == c), per_class, replace=True) for c in classes]
    return rng.permutation(np.concatenate(drawn))[: len(labels)]


def train_loop(classifier, tokenizer, train_texts, train_labels, val_texts, val_labels, *, max_length: int, config: LoopConfig) -> LoopResult:
    """Train ``classifier``'s trainable parameters in place; restores the best checkpoint."""
    import torch

    device = config.device
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    classifier.to(device)
    train_ids = tokenize(tokenizer, train_texts, max_length=max_length)
    val_ids = tokenize(tokenizer, val_texts, max_length=max_length) if val_texts else None
    train_labels = np.asarray(train_labels)
    lengths = np.array([len(r) for r in train_ids])
    pad = pad_id(tokenizer)

    head_params = [p for p in classifier.head.parameters() if p.requires_grad]
    encoder_params = [p for p in classifier.encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": encoder_params, "lr": config.encoder_lr},
            {"params": head_params, "lr": config.head_lr},
        ],
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = math.ceil(len(train_ids) / config.batch_size)
    total = max(steps_per_epoch * config.epochs, 1)
    warmup = max(int(config.warmup * total), 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(total - warmup, 1)))
    )
    weight = torch.as_tensor(config.class_weights, dtype=torch.float32, device=device) if config.class_weights is not None else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    autocast = device.startswith("cuda")

    def evaluate() -> tuple[float | None, float | None]:
        if not val_ids:
            return None, None
        classifier.eval()
        losses, hits = 0.0, 0
        order = np.argsort([len(r) for r in val_ids], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(order), 64):
                index = order[start : start + 64]
                ids, mask = collate([val_ids[i] for i in index], pad)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                    logits = classifier(ids.to(device), mask.to(device)).float()
                target = torch.as_tensor(np.asarray(val_labels)[index], device=device)
                losses += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
                hits += int((logits.argmax(-1) == target).sum())
        return losses / len(val_ids), hits / len(val_ids)

    def snapshot() -> dict:
        return {n: p.detach().clone() for n, p in classifier.named_parameters() if p.requires_grad}

    result = LoopResult()
    val_loss, val_acc = evaluate()
    result.curves.append({"epoch": 0, "train_loss": None, "val_loss": val_loss, "val_accuracy": val_acc, "seconds": 0.0})
    best_loss, best_state, stale = val_loss, snapshot() if val_loss is not None else None, 0
    bar = _progress_bar(len(train_ids) * config.epochs, config.progress)
    try:
        for epoch in range(1, config.epochs + 1):
            classifier.train()
            rows = balanced_indices(train_labels, rng) if config.resample else np.arange(len(train_ids))
            started, cpu_started, seen, loss_sum = time.perf_counter(), time.process_time(), 0, 0.0
            for batch in length_bucketed_batches(lengths[rows], config.batch_size, rng):
                index = rows[batch]
                ids, mask = collate([train_ids[i] for i in index], pad)
                target = torch.as_tensor(train_labels[index], device=device)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                    logits = classifier(ids.to(device), mask.to(device))
                loss = loss_fn(logits.float(), target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(encoder_params + head_params, config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                seen += len(index)
                loss_sum += loss.detach().item() * len(index)
                if bar is not None:
                    bar.update(len(index))
                    bar.set_postfix(epoch=epoch, loss=f"{loss.detach().item():.3f}", ex_s=f"{seen / (time.perf_counter() - started):.1f}")
            seconds = time.perf_counter() - started
            result.cpu_seconds += time.process_time() - cpu_started
            result.examples_seen += seen
            result.seconds += seconds
            val_loss, val_acc = evaluate()
            result.curves.append({
                "epoch": epoch, "train_loss": loss_sum / max(seen, 1), "val_loss": val_loss, "val_accuracy": val_acc,
                "seconds": round(seconds, 3), "examples_per_second": round(seen / seconds, 2) if seconds else None,
            })
            from calibgate.progress import line

            line(
                f"training epoch {epoch}/{config.epochs}: train loss {loss_sum / max(seen, 1):.4f}"
                + (f", validation loss {val_loss:.4f}, accuracy {val_acc:.3f}" if val_loss is not None else "")
                + f" ({seconds:.1f}s)",
                enabled=config.progress,
            )
            if val_loss is None:
                result.best_epoch = epoch
                continue
            if val_loss < best_loss - 1e-6:
                best_loss, best_state, stale, result.best_epoch = val_loss, snapshot(), 0, epoch
            else:
                stale += 1
                if stale >= config.patience:
                    break
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        params = dict(classifier.named_parameters())
        with torch.no_grad():
            for name, value in best_state.items():
                params[name].copy_(value)
    classifier.eval()
    return result


def _progress_bar(total: int, enabled: bool):
    from calibgate.progress import bar

    return bar(total, "training", unit="example", enabled=enabled)


def pick_device(requested: str | None = None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_batch_size(requested: int | None, *, device: str, hidden_size: int, n_layers: int, max_length: int) -> int:
    """The batch size: the user's, else 16 on CPU (fastest measured on 2 cores), else what fits in half the free GPU memory."""
    if requested:
        return requested
    if not device.startswith("cuda"):
        return 16
    import torch

    free, _ = torch.cuda.mem_get_info()
    # activations kept for backward: ~ 24 tensors of (seq, hidden) per layer, fp32 worst case
    per_example = 24 * max_length * hidden_size * max(n_layers, 1) * 4
    fits = int(0.5 * free // max(per_example, 1))
    size = 8
    while size * 2 <= min(fits, 128):
        size *= 2
    return size
