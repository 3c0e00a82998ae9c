"""Lazy imports of heavy optional dependencies, with an exact install hint."""

from __future__ import annotations

import importlib
from types import ModuleType

from calibgate.errors import MissingDependencyError

_INSTALL_HINT = {
    "torch": "pip install 'torch>=2.4'  (CPU: pip install torch --index-url https://download.pytorch.org/whl/cpu)",
    "transformers": "pip install 'transformers>=4.45'",
    "peft": "pip install 'peft>=0.13'",
    "evaluate": "pip install 'evaluate>=0.4'",
    "onnxruntime": "pip install onnxruntime",
    "onnx": "pip install onnx onnxscript",
    "onnxscript": "pip install onnxscript",
    "cleanlab": "pip install cleanlab",
    "dvc": "pip install dvc",
    "git": "pip install gitpython",
    "starlette": "pip install 'calibgate[serve]'  (starlette, uvicorn, prometheus-client)",
    "uvicorn": "pip install 'calibgate[serve]'  (starlette, uvicorn, prometheus-client)",
    "prometheus_client": "pip install 'calibgate[serve]'  (starlette, uvicorn, prometheus-client)",
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        hint = _INSTALL_HINT.get(top, f"pip install {top}")
        raise MissingDependencyError(
            f"calibgate needs the optional package '{top}' for this step ({exc})", fix=hint
        ) from exc
