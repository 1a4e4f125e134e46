"""ONNX float models -> IR: `load_model` reads and validates a file, `import_model` maps it."""
from __future__ import annotations

from .load import load_model
from .onnx import import_model

__all__ = ["load_model", "import_model"]
