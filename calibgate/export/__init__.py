"""ONNX export, parity, quantization, latency, and torch-free serving."""
