"""onnxruntime running a pre-quantized model itself: its outputs in the IR's int8 domain.

onnxruntime's quantized arithmetic is not TFLite's (float requantization, other
rounding), so this is an accuracy cross-check (top-1 agreement), never a
bit-exactness reference; that is TFLM's job (tflm.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .ir import Graph
from .reference import run_onnx


def run_onnx_quantized(model_path: str | Path, graph: Graph, inputs: np.ndarray) -> np.ndarray:
    """The ONNX model's first output for each int8 IR input, as int8 (a uint8 model's moved by -128)."""
    uint8 = graph.meta.get("quantized_input_dtype") == "uint8"
    # run_onnx casts to the model's input type: a uint8 model gets its own values back
    feed = inputs.astype(np.int16) + 128 if uint8 else inputs
    outputs = np.asarray(run_onnx(model_path, graph, feed))
    if outputs.dtype == np.uint8:
        outputs = (outputs.astype(np.int16) - 128).astype(np.int8)
    shape = graph.tensor(graph.outputs[0]).shape
    return outputs.reshape((len(inputs),) + shape)
