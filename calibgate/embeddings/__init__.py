"""Frozen-encoder sentence embeddings and their on-disk cache."""

from calibgate.embeddings.encoder import DEFAULT_MODEL, Embeddings, embed_texts, resolve_model_dir

__all__ = ["DEFAULT_MODEL", "Embeddings", "embed_texts", "resolve_model_dir"]
