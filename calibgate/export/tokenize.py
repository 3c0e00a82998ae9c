"""Torch-free tokenisation for serving, identical to what transformers produced at export.

The export writes ``export/tokenizer.json``: the serialisation of the very
``tokenizers`` backend that transformers' fast tokenizer ran (so special
tokens and post-processing match, including what transformers 5 adds at load
time), plus a :class:`~calibgate.records.export.TokenizerSpec` with the
truncation length, pad token and pad side. Serving pads each batch to its
longest row on that side (transformers' ``padding=True``); the export checks
token-id and mask equality against transformers on the parity texts.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from calibgate.records.export import TokenizerSpec


class ServingTokenizer:
    """Texts -> (input_ids, attention_mask) int64 arrays, with truncation and batch padding."""

    def __init__(self, tokenizer_json: str, spec: TokenizerSpec):
        from tokenizers import Tokenizer

        from calibgate.errors import IntegrityError

        self.spec = spec
        try:
            self._tok = Tokenizer.from_str(tokenizer_json)
        except Exception as exc:  # the tokenizers library raises a bare Exception for any malformed file
            raise IntegrityError(
                f"{spec.path}: not a tokenizers-library tokenizer ({str(exc).splitlines()[0][:80]})",
                fix="re-run 'calibgate export' on the run, or restore it from the registry",
            ) from None
        self._tok.no_padding()
        self._tok.no_truncation()
        self._tok.enable_truncation(max_length=spec.max_length, direction=spec.truncation_side)

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids per text (special tokens added, truncated, unpadded)."""
        return [np.asarray(e.ids, dtype=np.int64) for e in self._tok.encode_batch(list(texts))]

    def pad(self, rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Pad ``rows`` to the longest one on the spec's side; returns (input_ids, attention_mask)."""
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.spec.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            if self.spec.padding_side == "right":
                ids[i, : len(row)] = row
                mask[i, : len(row)] = 1
            else:
                ids[i, width - len(row) :] = row
                mask[i, width - len(row) :] = 1
        return ids, mask

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return self.pad(self.encode(texts))
