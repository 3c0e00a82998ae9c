"""calibgate: plan, gate and register adaptations of small language models.

Importing this package is cheap: torch, transformers, peft and evaluate load
only when a command needs them (see ``calibgate/_lazy.py``).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
