"""average_pool: TFLite Micro's int8 AveragePool (NHWC, batch 1).

The mean runs over the in-bounds taps only (padding is excluded from both the
sum and the count, like ONNX count_include_pad=0), on the raw int8 values:
TFLite requires the output to share the input's QParams, so no rescaling is
needed. Global average pooling is the case kernel = (H, W).

The pool geometry (`PoolParams`, `lower_pool`, `windows`) lives here and is
shared with max_pool, which has the same parameters.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..ir import Graph, IRError, Node, QParams, Tensor
from ..quant.arith import rounded_div
from . import activation_inputs
from .common import INT8_MAX, INT8_MIN, activation_range

OP = "average_pool"
SCRATCH = False


@dataclass(frozen=True)
class PoolParams:
    """The fields of `mcugen_<pool>_params`, in declaration order."""

    in_h: int
    in_w: int
    channels: int
    out_h: int
    out_w: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    act_min: int
    act_max: int


def pool_input(node: Node, graph: Graph) -> Tensor:
    (name,) = activation_inputs(node, graph)
    return graph.tensor(name)


def _has_empty_window(size: int, out: int, kernel: int, stride: int, pad: int) -> bool:
    start = np.arange(out) * stride - pad
    return bool(np.any(np.minimum(start + kernel, size) <= np.maximum(start, 0)))


def geometry(node: Node, graph: Graph, act_min: int = INT8_MIN, act_max: int = INT8_MAX) -> PoolParams:
    """The pool's geometry (the float stage has no QParams, so no clamp bounds yet)."""
    inp = pool_input(node, graph)
    if len(inp.shape) != 4:
        raise IRError(f"node '{node.name}' ({node.op}): input shape {inp.shape} is not NHWC")
    _, in_h, in_w, channels = inp.shape
    w = node.attrs.window
    out_h, out_w = w.output_hw(in_h, in_w)
    if min(out_h, out_w) < 1:
        raise IRError(f"node '{node.name}' ({node.op}): kernel {w.kernel} is larger than the padded input")
    # TFLite fails at run time on a window with no input tap (count 0); refuse it at compile time.
    if _has_empty_window(in_h, out_h, w.kernel[0], w.stride[0], w.pads[0]) or _has_empty_window(
        in_w, out_w, w.kernel[1], w.stride[1], w.pads[1]
    ):
        raise IRError(f"node '{node.name}' ({node.op}): a window lies entirely in the padding")
    return PoolParams(in_h, in_w, channels, out_h, out_w, *w.kernel, *w.stride, w.pads[0], w.pads[1], act_min, act_max)


def lower_pool(node: Node, graph: Graph) -> PoolParams:
    """Geometry and clamp of a quantized pool, after checking what TFLite requires of it."""
    inp, out = pool_input(node, graph), graph.tensor(node.outputs[0])
    assert inp.qparams is not None and out.qparams is not None
    if not _same_qparams(inp.qparams, out.qparams):
        raise IRError(f"node '{node.name}' ({node.op}): TFLite requires output QParams equal to the input's")
    p = geometry(node, graph, *activation_range(node.attrs.activation, out.qparams))
    expected = (1, p.out_h, p.out_w, p.channels)
    if out.shape != expected:
        raise IRError(f"node '{node.name}' ({node.op}): output shape {out.shape}, the window gives {expected}")
    return p


def _same_qparams(a: QParams, b: QParams) -> bool:
    return bool(np.array_equal(a.scale, b.scale) and np.array_equal(a.zero_point, b.zero_point))


def windows(x: np.ndarray, p: PoolParams, fill: float) -> np.ndarray:
    """(1, H, W, C) -> (out_h, out_w, C, kernel_h, kernel_w) views; taps outside the input read `fill`."""
    rows = max(p.pad_top + p.in_h, (p.out_h - 1) * p.stride_h + p.kernel_h)
    cols = max(p.pad_left + p.in_w, (p.out_w - 1) * p.stride_w + p.kernel_w)
    padded = np.full((rows, cols, p.channels), fill, x.dtype)
    padded[p.pad_top : p.pad_top + p.in_h, p.pad_left : p.pad_left + p.in_w] = x.reshape(p.in_h, p.in_w, p.channels)
    views = sliding_window_view(padded, (p.kernel_h, p.kernel_w), axis=(0, 1))
    return views[: (p.out_h - 1) * p.stride_h + 1 : p.stride_h, : (p.out_w - 1) * p.stride_w + 1 : p.stride_w]


def lowered_params(node: Node) -> PoolParams:
    if not isinstance(node.lowered, PoolParams):
        raise IRError(f"node '{node.name}' ({node.op}) is not lowered")
    return node.lowered


def clamp(v: np.ndarray, p: PoolParams) -> np.ndarray:
    """TFLite's order: max with act_min first, then min with act_max."""
    return np.minimum(np.maximum(v, p.act_min), p.act_max)


def float_clamp(v: np.ndarray, node: Node) -> np.ndarray:
    act = node.attrs.activation
    return np.minimum(np.maximum(v, act.lo), act.hi)


def _tap_counts(p: PoolParams) -> np.ndarray:
    ones = np.ones((1, p.in_h, p.in_w, 1), np.int32)
    return windows(ones, dataclasses.replace(p, channels=1), 0).sum(axis=(-2, -1), dtype=np.int32)


def float_reference(node: Node, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    p = geometry(node, graph)
    x = np.asarray(inputs[0], np.float64)
    mean = windows(x, p, 0.0).sum(axis=(-2, -1)) / _tap_counts(p)
    return float_clamp(mean, node).reshape(1, p.out_h, p.out_w, p.channels).astype(np.float32)


def output_qparams(node: Node, graph: Graph) -> QParams | None:
    return pool_input(node, graph).qparams


def quantize_constants(node: Node, graph: Graph) -> list[Tensor]:
    return []


def lower(node: Node, graph: Graph) -> PoolParams:
    return lower_pool(node, graph)


def reference(node: Node, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    p = lowered_params(node)
    sums = windows(np.asarray(inputs[0], np.int32), p, 0).sum(axis=(-2, -1), dtype=np.int32)
    out = clamp(rounded_div(sums, _tap_counts(p)), p)
    return out.reshape(1, p.out_h, p.out_w, p.channels).astype(np.int8)


def macs(node: Node, graph: Graph) -> int:
    """0: pooling adds and divides but multiplies nothing; MACs count conv/FC work only."""
    return 0


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    """None: the output never overlaps the input (kernels/__init__.py)."""
    return (None,)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    return {k: int(v) for k, v in dataclasses.asdict(lowered_params(node)).items()}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return []
