"""Loading and validation of labeled and production (unlabeled) text sets."""

from calibgate.data.jsonl import LabeledSet, UnlabeledSet, load_labeled, load_unlabeled, write_jsonl

__all__ = ["LabeledSet", "UnlabeledSet", "load_labeled", "load_unlabeled", "write_jsonl"]
