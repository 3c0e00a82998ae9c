"""The run's model card: README.md with Hugging Face model-card YAML metadata.

Metadata keys follow https://huggingface.co/docs/hub/model-cards
(``library_name``, ``tags``, ``base_model``, ``datasets``, ``metrics``,
``pipeline_tag``).
"""

from __future__ import annotations

import yaml

from calibgate.embeddings.encoder import DEFAULT_MODEL
from calibgate.records.strategies import spec
from calibgate.runs import RunManifest


def model_card(manifest: RunManifest, curves: list[dict], plan: dict | None) -> str:
    best = _best(curves)
    meta = {
        "library_name": spec(manifest.strategy).library,
        "pipeline_tag": "text-classification",
        "tags": ["calibgate", "text-classification", manifest.strategy] + (["lora"] if manifest.lora_rank else []),
    }
    if manifest.base_model == DEFAULT_MODEL:
        meta["base_model"] = f"sentence-transformers/{DEFAULT_MODEL}"
    else:
        meta["base_model_path"] = manifest.base_model  # a local directory, not a hub id
    dataset = _dataset_id(manifest.data)
    if dataset:
        meta["datasets"] = [dataset]
    meta["metrics"] = ["accuracy", "f1"]
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {manifest.run_id}",
        "",
        f"A `{manifest.strategy}`{f' (rank {manifest.lora_rank})' if manifest.lora_rank else ''} adaptation of "
        f"`{manifest.base_model}` for text classification over {len(manifest.label_names)} labels, trained by calibgate.",
        "",
        "Serving graph: encoder -> "
        f"{manifest.pooling} pooling -> L2 normalisation -> {manifest.head.kind} head"
        f"{f' (k={manifest.head.k}, {manifest.head.weighting} votes)' if manifest.head.kind == 'knn' else ''}.",
        "Predictions are always one of the training labels.",
        "",
        "## Training",
        "",
        f"- data: `{manifest.data.get('source', 'in memory')}` ({manifest.data.get('n', '?')} rows, "
        f"DVC md5 `{manifest.data.get('dvc_md5')}`)",
        f"- git commit: `{manifest.git_commit}`",
        f"- device: {manifest.device}; train seconds: {manifest.train_seconds}",
        f"- modifiers: {', '.join(manifest.modifiers) or 'none'}",
    ]
    if best is not None:
        lines.append(f"- best validation epoch: {best['epoch']} (loss {best['val_loss']:.4f}, accuracy {best['val_accuracy']:.4f})")
    from calibgate.training.api import tuning_note

    note = tuning_note(manifest.strategy, manifest.train_config, curves)
    if note:
        lines.append(f"- note: {note}")
    override = manifest.train_config.get("plan_override")
    if override and not override.get("follows_plan"):
        lines.append(f"- strategy overrides the plan's {override.get('planned_strategy')}: {override.get('reason')}")
    if plan:
        rec = plan.get("recommendation", {})
        lines.append(f"- plan: {rec.get('chosen_candidate', rec.get('strategy'))}")
    lines += ["", "## Labels", "", ", ".join(f"`{name}`" for name in manifest.label_names), ""]
    return "\n".join(lines)


def _dataset_id(data: dict) -> str | None:
    """The training data as the card's ``datasets`` names it: its repo-relative path, never a machine's absolute
    path (the DVC md5 is in the card's Training section)."""
    from pathlib import PurePath

    source = data.get("source")
    if not source:
        return None
    path = PurePath(str(source))
    name = path.name if path.is_absolute() or ".." in path.parts else path.as_posix()
    return name


def _best(curves: list[dict]) -> dict | None:
    scored = [c for c in curves if c.get("val_loss") is not None]
    return min(scored, key=lambda c: c["val_loss"]) if scored else None
