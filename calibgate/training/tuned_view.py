"""Measured fine-tuning for the planner: cross-fitted LP-FT of the encoder's top layers on the calibration set.

The planner's question is how much tuning the encoder adds over the frozen
probe on *this* task. That gain ranges from nothing to twenty points across
real tasks, so it is measured, not assumed. Full fine-tuning inside a plan
would cost as much as training, so the measurement tunes only the top
``layers`` transformer blocks, on hidden states cached from one forward pass
of the frozen lower blocks ("top-layer tuning on cached hidden states"): each
step costs ``layers / n_layers`` of a full step, and the lower blocks of a
pretrained encoder move least under fine-tuning anyway (Merchant et al. 2020,
"What Happens To BERT Embeddings During Fine-tuning?"). The recipe follows
``calibgate train``: the head starts from the frozen probe's solution (LP-FT,
Kumar et al. 2022), the head has its own higher learning rate, AdamW with
linear decay, and the number of epochs is chosen by held-out loss with the
start (the probe itself, epoch 0) among the choices. Each of ``folds`` folds
trains on the others and predicts its own rows after every epoch, so every
calibration row gets an out-of-fold probability from a tuned model and from
the frozen probe on the same split (a paired comparison). The comparison
uses the last epoch (no selection on held-out rows, so no optimism); the
log loss after each epoch is reported beside it. Held-out log loss is not a
usable stopping rule here: it jumps at the first epoch while the pooled
representation moves away from the probe head, then recovers, while
accuracy rises (measured on sst2 at 300 rows: 0.49 -> 0.70 and accuracy
74.0% -> 75.7% after four epochs).

The measurement is sized to a CPU-time budget: a timed forward pass of a few
batches prices a training step, and the number of tuned blocks and epochs
shrinks until the estimate fits (``BUDGET_SECONDS``); a model too large for
even one block and two epochs is not measured.

Blocks are replayed generically: a forward pre-hook records the inputs and
keyword arguments (attention mask, rotary position embeddings) the model
passes to the first tuned block, per batch, and the replay is checked
against the model's own output before anything is trusted. A model whose
blocks cannot be replayed raises :class:`TunedViewUnavailable`; the planner
then falls back to its prior and says so.

Results are cached on disk beside the embeddings (:func:`cached_tuned_view`),
keyed by the texts, labels, model fingerprint, every setting and this
module's own source: the budget makes the measurement depend on how busy the
machine was, so a re-plan of the same data (a CI re-run) reads the same
measurement back instead of a different one. The cached record keeps what
the measurement cost when it ran.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from calibgate.embeddings.encoder import ModelInfo, load_encoder, pool
from calibgate.training.predict import collate, pad_id
from calibgate.training.frozen import fit_probe, normalize_rows

LAYERS = 2
FOLDS = 3
EPOCHS = 3
BATCH_SIZE = 16
MAX_LENGTH = 128
ENCODER_LR = 3e-4
HEAD_LR = 1e-3
THROUGHPUT_STEPS = 2
BUDGET_SECONDS = 40.0  # CPU seconds for the tuning (~20-30 s on 2 idle cores); the configuration shrinks to fit it
BACKWARD_COST = 6.0  # a training step priced in forward passes (forward, backward, AdamW, batch overheads; measured on MiniLM)


class TunedViewUnavailable(RuntimeError):
    """The encoder's blocks could not be replayed from cached hidden states."""


@dataclass(frozen=True)
class TunedView:
    """Out-of-fold probabilities of the tuned and the frozen probe on the same folds, and what it cost."""

    rows: np.ndarray  # calibration rows measured (all, or a stratified sample)
    labels: np.ndarray  # their labels
    tuned_proba: np.ndarray  # (len(rows), K), out of fold
    probe_proba: np.ndarray  # (len(rows), K), out of fold, same folds
    folds: int
    layers: int
    n_layers: int
    best_epoch: int  # epoch with the lowest out-of-fold log loss (0: the probe itself); reported, not used
    epoch_log_loss: tuple[float, ...]  # out-of-fold log loss after each epoch, 0 = the probe
    train_rows: int  # rows each fold's model trained on (before the inner validation split)
    seconds: float
    cpu_seconds: float
    full_step_examples_per_second: float  # a full-model training step, measured here: calibrates the cost model
    embed_examples_per_second: float


@dataclass
class _Batch:
    rows: np.ndarray
    mask: "object"
    hidden: "object"
    args: tuple
    kwargs: dict

    def subset(self, select: np.ndarray) -> "_Batch":
        """The rows ``select`` picks: every per-row tensor (first dimension = batch size) is sliced, shared ones kept."""
        import torch

        size, index = len(self.rows), torch.from_numpy(np.flatnonzero(select))

        def cut(value):
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == size and size > 1:
                return value.index_select(0, index)
            if isinstance(value, tuple):
                return tuple(cut(v) for v in value)
            return value

        return _Batch(
            rows=self.rows[select], mask=self.mask[index], hidden=self.hidden[index],
            args=tuple(cut(a) for a in self.args), kwargs={k: cut(v) for k, v in self.kwargs.items()},
        )


def _split(batches: list["_Batch"], rows: np.ndarray) -> list["_Batch"]:
    """``batches`` cut down to ``rows`` (batches without any of them dropped)."""
    wanted = np.zeros(max(int(b.rows.max()) for b in batches) + 1, dtype=bool)
    wanted[rows] = True
    out = []
    for batch in batches:
        select = wanted[batch.rows]
        if select.all():
            out.append(batch)
        elif select.any():
            out.append(batch.subset(select))
    return out


def measure_tuned_view(
    texts: tuple[str, ...] | list[str],
    labels: np.ndarray,
    n_classes: int,
    *,
    info: ModelInfo,
    embeddings: np.ndarray,
    probe_C: float,
    seed: int = 0,
    folds: int = FOLDS,
    layers: int = LAYERS,
    epochs: int = EPOCHS,
    max_rows: int | None = None,
    budget_seconds: float = BUDGET_SECONDS,
) -> TunedView:
    """Cross-fitted top-``layers`` LP-FT of ``info``'s encoder on (texts, labels); see the module docstring.

    With ``max_rows``, a stratified sample of that many rows is used (``TunedView.rows`` says which).
    """
    import torch

    started, cpu_started = time.perf_counter(), time.process_time()
    labels = np.asarray(labels)
    rows = _sample_rows(labels, max_rows, seed)
    texts, labels, embeddings = [texts[i] for i in rows], labels[rows], np.asarray(embeddings)[rows]
    tokenizer, model = load_encoder(info)
    blocks = _blocks(model)
    ids = tokenizer(list(texts), truncation=True, max_length=min(MAX_LENGTH, info.max_length))["input_ids"]
    pad = pad_id(tokenizer)
    torch.manual_seed(seed)
    # time one forward pass of a few batches to size the measurement to the budget, then cache block inputs
    probe_rows = min(len(ids), 4 * BATCH_SIZE)
    timing_started, cpu_timing_started = time.perf_counter(), time.process_time()
    _cache_inputs(model, blocks, len(blocks) - 1, ids[:probe_rows], pad)
    forward = (time.process_time() - cpu_timing_started) / probe_rows  # CPU seconds per example, whole encoder
    embed_rate = probe_rows / max(time.perf_counter() - timing_started, 1e-9)
    layers, epochs, keep = _fit_budget(len(ids), folds, layers, epochs, len(blocks), forward, budget_seconds)
    if keep < len(ids):  # even one block for two epochs is over budget on every row: measure on fewer rows
        sample = _sample_rows(labels, keep, seed)
        rows, texts, labels, embeddings = rows[sample], [texts[i] for i in sample], labels[sample], embeddings[sample]
        ids = [ids[i] for i in sample]
    first = len(blocks) - layers
    batches, final, expected = _cache_inputs(model, blocks, first, ids, pad)
    top = blocks[first:]
    final = _check_replay(top, final, batches[0], expected, info)

    x = normalize_rows(embeddings)
    by_epoch = np.zeros((epochs + 1, len(labels), n_classes), dtype=np.float32)
    probe = np.zeros((len(labels), n_classes), dtype=np.float32)
    train_rows = 0
    for fold, (train, test) in enumerate(_folds(labels, folds, seed)):
        head_init = fit_probe(x[train], labels[train], n_classes, seed=seed, c_grid=(probe_C,))
        probe[test] = _softmax(x[test] @ head_init.weight.T + head_init.bias)
        net = _TopNet(copy.deepcopy(top), final, head_init, info)
        for epoch, proba in enumerate(_train(net, batches, train, test, labels, seed=seed + fold, epochs=epochs)):
            by_epoch[epoch, test] = proba
        train_rows = max(train_rows, len(train))
    every = np.arange(len(labels))
    losses = [float(-np.mean(np.log(np.clip(p[every, labels], 1e-9, None)))) for p in by_epoch]
    best = int(np.argmin(losses))
    full_rate = _full_step_rate(model, ids, labels, pad, info)
    return TunedView(
        rows=rows, labels=labels, tuned_proba=by_epoch[-1], probe_proba=probe, folds=folds, layers=layers, n_layers=len(blocks),
        best_epoch=best, epoch_log_loss=tuple(losses), train_rows=train_rows,
        seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu_started,
        full_step_examples_per_second=full_rate, embed_examples_per_second=embed_rate,
    )


def cached_tuned_view(texts, labels, n_classes: int, *, info: ModelInfo, embeddings: np.ndarray, probe_C: float, seed: int = 0,
                      max_rows: int | None = None, budget_seconds: float = BUDGET_SECONDS, cache: bool = True) -> TunedView:
    """:func:`measure_tuned_view`, read from the disk cache when this exact measurement already ran (see the module
    docstring); a damaged entry is measured again. Arrays are stored as npz, read without pickle."""
    if not cache:
        return measure_tuned_view(texts, labels, n_classes, info=info, embeddings=embeddings, probe_C=probe_C, seed=seed,
                                  max_rows=max_rows, budget_seconds=budget_seconds)
    from calibgate.embeddings.encoder import cache_dir

    key = hashlib.sha256(json.dumps(
        [list(texts), np.asarray(labels).tolist(), n_classes, info.fingerprint, repr(float(probe_C)), seed, max_rows,
         budget_seconds, FOLDS, LAYERS, EPOCHS, hashlib.sha256(Path(__file__).read_bytes()).hexdigest()],
        ensure_ascii=False,
    ).encode("utf-8")).hexdigest()[:32]
    path = cache_dir() / "tuned-view" / info.fingerprint / f"{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                values = {f.name: stored[f.name] for f in fields(TunedView)}
            return TunedView(**{
                name: (tuple(float(x) for x in v) if name == "epoch_log_loss" else v if v.ndim else v.item())
                for name, v in values.items()
            })
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is measured again
    view = measure_tuned_view(texts, labels, n_classes, info=info, embeddings=embeddings, probe_C=probe_C, seed=seed,
                              max_rows=max_rows, budget_seconds=budget_seconds)
    import io

    from calibgate.paths import atomic_write_bytes

    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(value) for name, value in asdict(view).items()})
    atomic_write_bytes(path, buffer.getvalue())
    return view


MIN_ROWS = 90  # fewer rows than this would measure noise only: not measured


def _fit_budget(n: int, folds: int, layers: int, epochs: int, n_layers: int, forward: float, budget: float) -> tuple[int, int, int]:
    """(blocks, epochs, rows): the most blocks and epochs (fewest 1 and 2) whose estimated training CPU time on
    ``n`` rows fits ``budget`` seconds; past that, one block and two epochs on as many rows as fit."""

    def cost(l: int, e: int, rows: float) -> float:
        train = rows * (folds - 1) / folds
        return folds * (e * train * BACKWARD_COST + (e + 1) * (rows - train)) * (l / n_layers) * forward

    for l in range(min(layers, n_layers), 0, -1):
        for e in range(epochs, 1, -1):
            if cost(l, e, n) <= budget:
                return l, e, n
    rows = int(n * budget / cost(1, 2, n))
    if rows >= MIN_ROWS:
        return 1, 2, rows
    raise TunedViewUnavailable(
        f"tuning even one block for 2 epochs on {MIN_ROWS} rows would take ~{cost(1, 2, MIN_ROWS):.0f} CPU s, "
        f"over the {budget:g} s budget"
    )


def _blocks(model):
    """The encoder's list of transformer blocks: the ModuleList as long as ``num_hidden_layers``."""
    import torch

    n = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n and n > 0:
            return module
    raise TunedViewUnavailable(f"no list of {n} transformer blocks found in {type(model).__name__}")


def _final_norm(model):
    """The norm a decoder applies after its last block (None for BERT-style encoders)."""
    for name in ("norm", "final_layer_norm", "ln_f"):
        module = getattr(model, name, None)
        if module is not None:
            return module
    return None


def _cache_inputs(model, blocks, first: int, ids, pad) -> tuple[list[_Batch], object, object]:
    """(per length-sorted batch the inputs to block ``first``: hidden states, mask, rotary terms; the final norm;
    the model's own output for the first batch, which the replay is checked against)."""
    import torch

    order = np.argsort([len(r) for r in ids], kind="stable")
    captured: dict = {}

    def hook(_module, args, kwargs):
        captured["args"], captured["kwargs"] = args, kwargs

    handle = blocks[first].register_forward_pre_hook(hook, with_kwargs=True)
    batches, first_output = [], None
    try:
        with torch.no_grad():
            for start in range(0, len(order), BATCH_SIZE):
                rows = order[start : start + BATCH_SIZE]
                input_ids, mask = collate([ids[i] for i in rows], pad)
                out = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                args, kwargs = captured["args"], dict(captured["kwargs"])
                kwargs.pop("cache", None), kwargs.pop("past_key_values", None), kwargs.pop("past_key_value", None)
                batches.append(_Batch(rows=rows, mask=mask, hidden=args[0].detach(), args=tuple(args[1:]), kwargs=kwargs))
                first_output = out if first_output is None else first_output
    finally:
        handle.remove()
    return batches, _final_norm(model), first_output


def _run_blocks(blocks, final, batch: _Batch):
    out = batch.hidden
    for block in blocks:
        out = block(out, *batch.args, **batch.kwargs)
        if isinstance(out, tuple):
            out = out[0]
    return final(out) if final is not None else out


def _check_replay(top, final, batch: _Batch, expected, info: ModelInfo):
    """The final norm to apply after the replayed blocks (or None), checked against the model's own output."""
    import torch

    with torch.no_grad():
        for norm in (final, None) if final is not None else (None,):
            replayed = _run_blocks(top, norm, batch)
            if replayed.shape == expected.shape and torch.allclose(replayed, expected, atol=1e-3, rtol=1e-3):
                return norm
    raise TunedViewUnavailable(f"replaying the top blocks of {info.name} does not reproduce its output")


class _TopNet:
    """Top blocks -> the encoder's pooling -> linear head (initialised from the probe: LP-FT)."""

    def __init__(self, blocks, final, head_init, info: ModelInfo):
        import torch

        self.blocks, self.final, self.info = blocks, final, info
        self.head = torch.nn.Linear(head_init.weight.shape[1], head_init.weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(head_init.weight))
            self.head.bias.copy_(torch.from_numpy(head_init.bias))
        for p in self.blocks.parameters():
            p.requires_grad_(True)

    def parameters(self):
        return list(self.blocks.parameters()), list(self.head.parameters())

    def train(self, mode: bool = True):
        self.blocks.train(mode)
        self.head.train(mode)

    def logits(self, batch: _Batch):
        hidden = _run_blocks(self.blocks, self.final, batch)
        return self.head(pool(hidden, batch.mask, pooling=self.info.pooling, normalize=True))

    def predict(self, batches: list[_Batch], rows: np.ndarray) -> np.ndarray:
        """Probabilities for ``rows``, in that order, from batches that hold exactly those rows."""
        import torch

        out = {}
        self.train(False)
        with torch.no_grad():
            for batch in batches:
                for r, p in zip(batch.rows, torch.softmax(self.logits(batch), dim=-1).numpy()):
                    out[int(r)] = p
        return np.stack([out[int(r)] for r in rows])


def _train(net: _TopNet, batches: list[_Batch], train: np.ndarray, test: np.ndarray, labels: np.ndarray, *, seed: int, epochs: int) -> list[np.ndarray]:
    """LP-FT with linear decay for ``epochs`` epochs; the held-out rows' probabilities after each epoch (index 0: the start)."""
    import torch

    plan, held = _split(batches, train), _split(batches, test)
    encoder_params, head_params = net.parameters()
    optimizer = torch.optim.AdamW(
        [{"params": encoder_params, "lr": ENCODER_LR}, {"params": head_params, "lr": HEAD_LR}], weight_decay=0.01
    )
    total = max(len(plan) * epochs, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total))
    rng = np.random.default_rng(seed)
    held_out = [net.predict(held, test)]
    for _ in range(epochs):
        net.train(True)
        for i in rng.permutation(len(plan)):
            batch = plan[i]
            loss = torch.nn.functional.cross_entropy(net.logits(batch), torch.from_numpy(labels[batch.rows]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(encoder_params + head_params, 1.0)
            optimizer.step()
            scheduler.step()
        held_out.append(net.predict(held, test))
    return held_out


def _full_step_rate(model, ids, labels, pad, info: ModelInfo) -> float:
    """Examples per second of a full-model training step (forward, backward, AdamW) on this machine."""
    import torch

    work = copy.deepcopy(model)
    work.train()
    optimizer = torch.optim.AdamW(work.parameters(), lr=1e-6)
    rows = np.argsort([len(r) for r in ids], kind="stable")
    rows = rows[len(rows) // 2 : len(rows) // 2 + BATCH_SIZE]  # median-length texts
    input_ids, mask = collate([ids[i] for i in rows], pad)
    seconds = 0.0
    for step in range(THROUGHPUT_STEPS + 1):
        started = time.perf_counter()
        hidden = work(input_ids=input_ids, attention_mask=mask).last_hidden_state
        loss = pool(hidden, mask, pooling=info.pooling, normalize=True).pow(2).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step:  # the first step warms up allocators and kernels
            seconds += time.perf_counter() - started
    del work
    return THROUGHPUT_STEPS * len(rows) / max(seconds, 1e-6)


def _folds(labels: np.ndarray, folds: int, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(labels)
    if counts[counts > 0].min() >= folds:
        return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(labels, labels))
    return list(KFold(folds, shuffle=True, random_state=seed).split(labels))


def _sample_rows(labels: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
    if max_rows is None or len(labels) <= max_rows:
        return np.arange(len(labels))
    from calibgate.data.sampling import stratified_rows

    return stratified_rows(labels, max_rows, seed=seed)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
