"""LoRA with peft: target modules resolved per architecture, merged into the encoder for serving.

LoRA (Hu et al., 2021, arXiv:2106.09685) adds ``B @ A`` (rank ``r``) beside
frozen linear weights; merging folds ``W + (alpha / r) B A`` back into ``W``
so the served graph is the plain encoder (ONNX export traces no adapter).
"""

from __future__ import annotations

import re

# Linear layers worth adapting, by the leaf names architectures use:
# BERT-style encoders, Llama / Qwen / Mistral / Gemma decoders, DistilBERT, OPT / Phi, MPNet, ModernBERT
_KNOWN_TARGETS = (
    "query", "key", "value", "dense",
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    "q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2",
    "out_proj", "fc1", "fc2", "q", "k", "v", "o", "Wqkv", "Wo", "Wi",
)
_SKIP = ("pooler", "lm_head", "classifier", "score")  # outside the served path, or not ours to adapt


def resolve_target_modules(encoder) -> tuple[str, list[str]]:
    """(peft ``target_modules`` regex, leaf names) for the linear layers of ``encoder``'s blocks.

    Falls back to every linear layer outside the skipped parts for an
    architecture whose names are not in the table.
    """
    from torch import nn

    linear = [
        name for name, module in encoder.named_modules()
        if isinstance(module, nn.Linear) and not any(part in _SKIP for part in name.split("."))
    ]
    leaves = sorted({name.rsplit(".", 1)[-1] for name in linear if name.rsplit(".", 1)[-1] in _KNOWN_TARGETS})
    if not leaves:
        leaves = sorted({name.rsplit(".", 1)[-1] for name in linear})
    if not leaves:
        from calibgate.errors import ModelError

        raise ModelError(f"no linear layers to adapt in {type(encoder).__name__}", fix="use --strategy full-finetune")
    skip = "|".join(_SKIP)
    pattern = rf"^(?!(?:.*\.)?(?:{skip})\.)(?:.*\.)?(?:{'|'.join(map(re.escape, leaves))})$"
    return pattern, leaves


def apply_lora(encoder, *, rank: int, seed: int):
    """Wrap ``encoder`` with fresh LoRA adapters; returns (peft model, leaves adapted)."""
    import torch

    from calibgate._lazy import require

    peft = require("peft")
    pattern, leaves = resolve_target_modules(encoder)
    config = peft.LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05, target_modules=pattern, bias="none")
    torch.manual_seed(seed)
    return peft.get_peft_model(encoder, config), leaves


def merge_lora(peft_model):
    """(merged plain encoder, adapter state dict, adapter config dict) from a trained peft model."""
    from peft import get_peft_model_state_dict

    state = {k: v.detach().to("cpu").clone().contiguous() for k, v in get_peft_model_state_dict(peft_model).items()}
    config = peft_model.peft_config["default"]
    merged = peft_model.merge_and_unload()
    return merged, state, config
