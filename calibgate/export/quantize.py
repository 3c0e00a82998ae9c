"""Dynamic int8 quantisation of an exported graph with onnxruntime.

``quantize_dynamic`` stores int8 weights for MatMul/Gemm/Gather and quantises
activations per batch at run time (no calibration data). Two details:

* a dynamo export carries ``graph.value_info`` entries that the quantizer's
  shape bookkeeping trips over, so they are cleared first (ORT re-infers what
  it needs);
* the classification head stays fp32: it is tiny (labels x hidden, or the kNN
  keys), and int8 similarity scores can reorder a kNN vote.
"""

from __future__ import annotations

import ast
import logging
import os
import tempfile
from pathlib import Path

from calibgate._lazy import require


def quantize_int8(src: Path, dst: Path) -> list[str]:
    """Write the int8 version of ``src`` to ``dst``; returns the names of the nodes kept in fp32."""
    onnx = require("onnx")
    quantization = require("onnxruntime.quantization")

    model = onnx.load(str(src))
    del model.graph.value_info[:]
    keep_fp32 = [node.name for node in model.graph.node if _in_head(node)]
    fd, clean = tempfile.mkstemp(suffix=".onnx", dir=dst.parent)
    os.close(fd)
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint on the root logger
    try:
        onnx.save(model, clean)
        quantization.quantize_dynamic(
            clean,
            str(dst),
            weight_type=quantization.QuantType.QInt8,
            nodes_to_exclude=keep_fp32,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        root_logger.setLevel(level)
        Path(clean).unlink(missing_ok=True)
    return keep_fp32


def _in_head(node) -> bool:
    """True for nodes of the classifier's ``head`` submodule (dynamo metadata or TorchScript scope names)."""
    if node.name.startswith("/head/"):
        return True
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return False
            return len(scopes) > 1 and scopes[1] == "head"
    return False
