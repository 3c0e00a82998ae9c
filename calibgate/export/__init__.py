"""ONNX export, parity, quantization, latency, and torch-free serving.

* :mod:`.api` ``export(run, ...)``: one graph (token ids -> logits) per run,
  parity with torch, optional int8, latency; writes ``<run>/export/``
* :mod:`.serving` ``predict(run, texts)``: onnxruntime + tokenizers only
* :mod:`.onnx_export` (torch), :mod:`.quantize`, :mod:`.latency`,
  :mod:`.tokenize`, :mod:`.errors`; the ``export.json`` record is :mod:`calibgate.records.export`
"""
