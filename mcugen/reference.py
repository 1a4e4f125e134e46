"""The float model run by onnxruntime: the accuracy reference for quantized outputs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ir import Graph, QParams


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def run_onnx(model_path: str | Path, graph: Graph, samples: np.ndarray) -> np.ndarray:
    """First output of the ONNX model for NHWC `samples` (converted back to the model's own layout)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    dtype = {"tensor(float)": np.float32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}[feed.type]
    outputs = []
    for x in samples:
        if graph.meta.get("input_layout") == "nchw" and x.ndim == 3:
            x = np.transpose(x, (2, 0, 1))
        outputs.append(session.run(None, {feed.name: x[None].astype(dtype)})[0][0])
    return np.stack(outputs)


def dequantize(q: np.ndarray, qparams: QParams) -> np.ndarray:
    return (q.astype(np.float64) - qparams.scalar_zero_point) * qparams.scalar_scale


@dataclass(frozen=True)
class Agreement:
    top1: np.ndarray  # per sample: the float reference's top-1 class
    top1_agree: int
    cosine: np.ndarray  # per sample

    @property
    def cosine_min(self) -> float:
        return float(self.cosine.min())


def agreement(quantized_real: np.ndarray, reference: np.ndarray) -> Agreement:
    a = quantized_real.reshape(len(quantized_real), -1)
    b = reference.reshape(len(reference), -1).astype(np.float64)
    top1 = b.argmax(axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosine = np.where(norms > 0, np.sum(a * b, axis=1) / np.maximum(norms, 1e-30), 1.0)
    return Agreement(top1, int(np.sum(a.argmax(axis=1) == top1)), cosine)
