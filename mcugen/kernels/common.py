"""Helpers every kernel shares: fused-activation range and float rounding at compile time."""
from __future__ import annotations

import math

import numpy as np

from ..ir import Activation, Graph, Node, QParams

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """std::round / TfLiteRound: ties away from zero (np.round would round ties to even)."""
    x = np.asarray(x, np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def activation_range(activation: Activation, out: QParams) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized: the fused clamp as int8 bounds.

    TFLite divides in float32; float64 differs on near-ties (e.g. 1 / 0.0350877195...)."""
    scale, zp = np.float32(out.scalar_scale), out.scalar_zero_point

    def quantize(value: float) -> int:
        return zp + int(round_half_away(np.float32(value) / scale))

    lo = INT8_MIN if math.isinf(activation.lo) else max(INT8_MIN, quantize(activation.lo))
    hi = INT8_MAX if math.isinf(activation.hi) else min(INT8_MAX, quantize(activation.hi))
    return lo, hi


def io_qparams(node: Node, graph: Graph) -> tuple[QParams, QParams]:
    """QParams of the node's first activation input and of its output."""
    first = next(graph.tensor(n) for n in node.inputs if not graph.tensor(n).is_const)
    out = graph.tensor(node.outputs[0])
    assert first.qparams is not None and out.qparams is not None
    return first.qparams, out.qparams
