"""The four trainable strategies, registered by name.

* ``embedding-probe``: logistic regression on frozen normalised embeddings
* ``retrieval``: cosine kNN over the labeled rows (a :class:`~calibgate.modeling.KNNHead`)
* ``lora``: LoRA adapters on the encoder's linear layers, LP-FT recipe, merged for serving
* ``full-finetune``: every encoder weight tuned, LP-FT recipe
"""

from __future__ import annotations

import time

import numpy as np

from calibgate.runs import HeadSpec
from calibgate.training.job import FitJob
from calibgate.training.model import TrainedModel
from calibgate.training.registry import Strategy, register_strategy


def _tensor(x: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x))


def _baseline(job: FitJob) -> dict:
    probe = job.probe()
    return {"weight": _tensor(probe.weight), "bias": _tensor(probe.bias)}


def _common(job: FitJob, **config) -> dict:
    o = job.options
    return {
        "strategy": o.strategy, "seed": o.seed, "n_train": len(job.train),
        "n_validation": len(job.validation) if job.validation is not None else 0,
        "max_length": job.max_length if o.tunes_encoder else job.info.max_length, "modifiers": list(o.modifiers), **config,
    }


@register_strategy
class EmbeddingProbe(Strategy):
    name = "embedding-probe"

    def fit(self, job: FitJob) -> TrainedModel:
        started = time.perf_counter()
        probe = job.probe()
        head = {"weight": _tensor(probe.weight), "bias": _tensor(probe.bias)}
        return TrainedModel(
            strategy=self.name, lora_rank=None, label_names=job.train.label_names, info=job.info,
            head_spec=HeadSpec(kind="linear"), head_tensors=head, baseline_head=dict(head), max_length=job.info.max_length,
            train_seconds=time.perf_counter() - started, modifiers=job.options.modifiers,
            train_config=_common(job, C=probe.C, cv_accuracy=probe.cv_accuracy, cv_folds=probe.folds),
        )


@register_strategy
class Retrieval(Strategy):
    name = "retrieval"

    def fit(self, job: FitJob) -> TrainedModel:
        import torch

        from calibgate.training.frozen import fit_knn

        started = time.perf_counter()
        x = job.frozen("train")
        knn = fit_knn(x, job.train.labels, job.train.n_classes)
        seconds = time.perf_counter() - started
        head = {"keys": _tensor(x.astype(np.float32)), "key_labels": torch.as_tensor(job.train.labels, dtype=torch.long)}
        return TrainedModel(
            strategy=self.name, lora_rank=None, label_names=job.train.label_names, info=job.info,
            head_spec=HeadSpec(kind="knn", k=knn.k, weighting=knn.weighting), head_tensors=head,
            baseline_head=_baseline(job), max_length=job.info.max_length, train_seconds=seconds,
            modifiers=job.options.modifiers,
            train_config=_common(job, k=knn.k, weighting=knn.weighting, loo_accuracy=knn.loo_accuracy),
        )


class _Tuned(Strategy):
    """LP-FT through the serving graph; subclasses say which encoder weights train."""


    def prepare(self, encoder, job: FitJob):
        raise NotImplementedError

    def finish(self, encoder, job: FitJob):
        return encoder, None

    def fit(self, job: FitJob) -> TrainedModel:
        import torch

        from calibgate.embeddings.modeldir import load_pretrained_model, load_pretrained_tokenizer
        from calibgate.modeling import LinearHead, TextClassifier
        from calibgate.training.loop import LoopConfig, pick_batch_size, pick_device, train_loop

        o = job.options
        started = time.perf_counter()
        probe = job.probe()  # LP: the head starts from the probe's solution
        torch.manual_seed(o.seed)
        tokenizer = load_pretrained_tokenizer(job.info.path)
        encoder = load_pretrained_model(job.info.path)
        encoder, extra = self.prepare(encoder, job)
        head = LinearHead(_tensor(probe.weight), _tensor(probe.bias))
        classifier = TextClassifier(encoder, head, pooling=job.info.pooling, normalize=True)
        device = pick_device(o.device)
        config = encoder.config
        batch_size = pick_batch_size(
            o.batch_size, device=device, hidden_size=int(getattr(config, "hidden_size", 768)),
            n_layers=int(getattr(config, "num_hidden_layers", 12)), max_length=job.max_length,
        )
        loop = LoopConfig(
            epochs=o.epochs, batch_size=batch_size, encoder_lr=o.resolved_encoder_lr(), head_lr=o.head_lr,
            seed=o.seed, device=device, patience=o.patience, progress=o.progress,
            class_weights=_class_weights(job.train.labels, job.train.n_classes) if "class-weighted-loss" in o.modifiers else None,
            resample="resample" in o.modifiers,
        )
        val = job.validation
        result = train_loop(
            classifier, tokenizer, job.train.texts, job.train.labels,
            val.texts if val is not None else None, val.labels if val is not None else None,
            max_length=job.max_length, config=loop,
        )
        merged, adapter = self.finish(classifier.encoder, job)
        merged.eval()
        classifier.encoder = merged
        seconds = time.perf_counter() - started
        head_tensors = {k: v.detach().cpu().clone() for k, v in (("weight", head.linear.weight), ("bias", head.linear.bias))}
        return TrainedModel(
            strategy=self.name, lora_rank=o.lora_rank, label_names=job.train.label_names, info=job.info,
            head_spec=HeadSpec(kind="linear"), head_tensors=head_tensors, baseline_head=_baseline(job),
            max_length=job.max_length, train_seconds=seconds, curves=result.curves, modifiers=o.modifiers,
            device=device, encoder=merged, tokenizer=tokenizer, adapter=adapter, _classifier=classifier,
            train_config=_common(
                job, epochs=o.epochs, epochs_run=len(result.curves) - 1, best_epoch=result.best_epoch,
                batch_size=batch_size, encoder_lr=loop.encoder_lr, head_lr=loop.head_lr, patience=o.patience,
                weight_decay=loop.weight_decay, warmup=loop.warmup, probe_C=probe.C, head_init="probe (LP-FT)",
                examples_per_second=round(result.examples_per_second, 2), loop_seconds=round(result.seconds, 3),
                loop_cpu_seconds=round(result.cpu_seconds, 3),
                **extra,
            ),
        )


@register_strategy
class LoRA(_Tuned):
    name = "lora"

    def prepare(self, encoder, job: FitJob):
        from calibgate.training.lora import apply_lora

        model, leaves = apply_lora(encoder, rank=job.options.lora_rank, seed=job.options.seed)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return model, {"lora_rank": job.options.lora_rank, "lora_alpha": 2 * job.options.lora_rank,
                       "lora_dropout": 0.05, "target_modules": leaves, "trainable_encoder_params": trainable}

    def finish(self, encoder, job: FitJob):
        from calibgate.training.lora import merge_lora

        merged, state, config = merge_lora(encoder)
        return merged, (state, config)


@register_strategy
class FullFinetune(_Tuned):
    name = "full-finetune"

    def prepare(self, encoder, job: FitJob):
        for p in encoder.parameters():
            p.requires_grad_(True)
        return encoder, {"trainable_encoder_params": sum(p.numel() for p in encoder.parameters())}


def _class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse-frequency weights, mean 1 over present classes (King & Zeng's 'balanced' weighting)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)
