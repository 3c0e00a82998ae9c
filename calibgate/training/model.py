"""A trained model in memory (:class:`TrainedModel`) and how it becomes a run directory.

``TrainedModel.save`` writes into a temporary sibling directory and renames
it into place at the end, so Ctrl-C or any failure leaves no half-written run.
Everything is safetensors or JSON: no pickle anywhere.
"""

from __future__ import annotations

import errno
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from calibgate.embeddings.encoder import DEFAULT_MODEL, ModelInfo, default_model_dir, embed_texts
from calibgate.errors import ModelError
from calibgate.paths import path_error, staging_dir
from calibgate.runs import (
    ADAPTER_DIR, ADAPTER_WEIGHTS, BASELINE_DIR, BASELINE_HEAD, CURVES, ENCODER_DIR, HEAD, MODEL_CARD, PLAN, TRAIN_CONFIG,
    HeadSpec, RunManifest, write_manifest,
)


@dataclass
class TrainedModel:
    """The result of :func:`calibgate.training.fit`: predicts in memory, saves as a run directory."""

    strategy: str
    lora_rank: int | None
    label_names: tuple[str, ...]
    info: ModelInfo  # the base encoder
    head_spec: HeadSpec
    head_tensors: dict  # str -> torch.Tensor, as in head.safetensors
    baseline_head: dict  # probe on frozen base embeddings: {"weight", "bias"}
    max_length: int
    train_seconds: float
    train_config: dict[str, Any] = field(default_factory=dict)
    curves: list[dict] = field(default_factory=list)
    modifiers: tuple[str, ...] = ()
    device: str = "cpu"
    encoder: Any = None  # tuned (merged) encoder for lora / full-finetune; None: the frozen base
    tokenizer: Any = None
    adapter: tuple[dict, Any] | None = None  # (state dict, peft LoraConfig) for lora
    _classifier: Any = field(default=None, repr=False)

    @property
    def tunes_encoder(self) -> bool:
        return self.encoder is not None

    @property
    def classifier(self):
        """The serving graph (:class:`calibgate.modeling.TextClassifier`) in eval mode."""
        if self._classifier is None:
            from calibgate.modeling import TextClassifier, build_head

            encoder, tokenizer = self._encoder_and_tokenizer()
            head = build_head(self.head_spec, self.head_tensors, len(self.label_names))
            self._classifier = TextClassifier(encoder, head, pooling=self.info.pooling, normalize=True).eval()
        return self._classifier

    def _encoder_and_tokenizer(self):
        if self.encoder is None or self.tokenizer is None:
            from calibgate.embeddings.modeldir import load_pretrained_model, load_pretrained_tokenizer

            if self.tokenizer is None:
                self.tokenizer = load_pretrained_tokenizer(self.info.path)
            if self.encoder is None:
                return load_pretrained_model(self.info.path).eval(), self.tokenizer
        return self.encoder, self.tokenizer

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Class probabilities (n, len(label_names)), columns in ``label_names`` order."""
        texts = list(texts)
        if not self.tunes_encoder:
            # frozen encoder: the disk-cached embeddings are the serving graph's pooled vectors
            import torch

            from calibgate.modeling import build_head
            from calibgate.training.frozen import normalize_rows

            pooled = torch.from_numpy(normalize_rows(embed_texts(texts, model=self.info).vectors))
            head = build_head(self.head_spec, self.head_tensors, len(self.label_names)).eval()
            with torch.inference_mode():
                return torch.softmax(head(pooled), dim=-1).numpy().astype(np.float32)
        from calibgate.training.predict import predict_proba

        return predict_proba(self.classifier, self.tokenizer, texts, max_length=self.max_length, batch_size=batch_size, device=self.device)

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.label_names[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def save(
        self,
        run_dir: str | Path,
        *,
        run_id: str | None = None,
        data: dict | None = None,
        plan: Any = None,
        git_commit: str | None = None,
        extra_config: dict | None = None,
    ) -> RunManifest:
        """Write the run directory atomically and return its (hashed) manifest."""
        run_dir = Path(run_dir)
        if run_dir.exists():
            raise ModelError(f"{run_dir} already exists", fix="choose a new run id; runs are never overwritten")
        tmp = staging_dir(run_dir, "tmp")
        try:
            manifest = self._write(tmp, run_id or run_dir.name, data=data, plan=plan, git_commit=git_commit, extra_config=extra_config)
            try:
                tmp.rename(run_dir)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):  # another train with this run id finished first
                    raise ModelError(f"{run_dir} already exists (written meanwhile)",
                                     fix="choose a new run id; runs are never overwritten") from None
                raise path_error(exc, run_dir, "write the run") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return manifest

    def _write(self, root: Path, run_id: str, *, data, plan, git_commit, extra_config) -> RunManifest:
        from safetensors.torch import save_file

        from calibgate.training.card import model_card

        encoder, tokenizer = self._encoder_and_tokenizer()
        encoder.save_pretrained(root / ENCODER_DIR, safe_serialization=True)
        tokenizer.save_pretrained(root / ENCODER_DIR)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.head_tensors.items()}, str(root / HEAD))
        (root / BASELINE_DIR).mkdir()
        save_file({k: v.contiguous() for k, v in self.baseline_head.items()}, str(root / BASELINE_HEAD))
        if self.adapter is not None:
            state, config = self.adapter
            (root / ADAPTER_DIR).mkdir()
            save_file(state, str(root / ADAPTER_WEIGHTS))
            config.save_pretrained(str(root / ADAPTER_DIR))
        train_config = {**self.train_config, **(extra_config or {})}
        _write_json(root / TRAIN_CONFIG, train_config)
        _write_json(root / CURVES, {"epochs": self.curves, "train_seconds": self.train_seconds})
        plan_dict = None
        if plan is not None:
            plan_dict = plan.model_dump(mode="json") if hasattr(plan, "model_dump") else dict(plan)
            _write_json(root / PLAN, plan_dict)
        manifest = RunManifest(
            run_id=run_id,
            strategy=self.strategy,
            lora_rank=self.lora_rank,
            label_names=list(self.label_names),
            base_model=base_model_name(self.info),
            model_type=self.info.model_type,
            pooling=self.info.pooling,
            normalize=True,
            max_length=self.max_length,
            head=self.head_spec,
            modifiers=list(self.modifiers),
            train_config=train_config,
            data=data or {},
            git_commit=git_commit,
            device=self.device,
            train_seconds=round(self.train_seconds, 3),
        )
        (root / MODEL_CARD).write_text(model_card(manifest, self.curves, plan_dict), encoding="utf-8")
        return write_manifest(root, manifest)


def base_model_name(info: ModelInfo) -> str:
    """How a run names its base: the bundled default by name, anything else by absolute path."""
    try:
        if info.path.resolve() == default_model_dir().resolve():
            return DEFAULT_MODEL
    except ModelError:
        pass
    return str(info.path.resolve())


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
