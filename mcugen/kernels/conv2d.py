"""conv2d: TFLite Micro's int8 per-channel Conv (NHWC activations, batch 1).

Weights (C_out, KH, KW, C_in), one bias per output channel, explicit pads; taps
in the padding are skipped (they would add (pad - zp_in) * w otherwise). The
accumulation and output stage are shared with depthwise_conv2d and
fully_connected (kernels/weights.py).

The geometry (`ConvGeometry`, `geometry`, `tap_patches`) lives here and is
shared with depthwise_conv2d, which has the same parameters.

Both references correlate in float64: the integer one feeds it integers whose
products and sums stay far below 2^53 (lower bounds |acc| by 2^31), so every
BLAS sum is exact and the conversion back to int64 loses nothing.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..ir import Graph, IRError, Node, QParams, Tensor
from . import activation_inputs, raster_limit, window_first_reads
from .weights import (
    OutputStage,
    c_constants_of,
    constants,
    float_activation,
    lower_output_stage,
    output_stage,
    quantize_weighted,
    real_constants,
)

OP = "conv2d"
SCRATCH = False
CHANNEL_AXIS = 0  # of the weights (C_out, KH, KW, C_in)


@dataclass(frozen=True)
class ConvGeometry:
    """The first fields of `mcugen_conv2d_params` / `mcugen_depthwise_conv2d_params`, in order."""

    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int


@dataclass(frozen=True, eq=False)
class ConvParams:
    """node.lowered of conv2d and depthwise_conv2d; the C struct is geometry then stage.c_fields()."""

    geometry: ConvGeometry
    stage: OutputStage


def geometry(node: Node, graph: Graph) -> ConvGeometry:
    """Shapes of a conv2d or depthwise_conv2d node, checked against each other and the window."""
    (name,) = activation_inputs(node, graph)
    inp, out = graph.tensor(name), graph.tensor(node.outputs[0])
    weights, _ = constants(node, graph)
    if len(inp.shape) != 4:
        raise IRError(f"node '{node.name}' ({node.op}): input shape {inp.shape} is not NHWC")
    _, in_h, in_w, in_c = inp.shape
    window = node.attrs.window
    if len(weights.shape) != 4:
        raise IRError(f"node '{node.name}' ({node.op}): weights shape {weights.shape} is not 4-D")
    if node.op == "conv2d":
        out_c, kh, kw, w_in_c = weights.shape
        fits = w_in_c == in_c
    else:
        one, kh, kw, out_c = weights.shape
        fits = one == 1 and out_c == in_c * node.attrs.depth_multiplier
    if not fits or (kh, kw) != window.kernel:
        raise IRError(f"node '{node.name}' ({node.op}): weights {weights.shape} do not fit input {inp.shape},"
                      f" kernel {window.kernel} and depth multiplier {node.attrs.depth_multiplier}")  # fmt: skip
    out_h, out_w = window.output_hw(in_h, in_w)
    if min(out_h, out_w) < 1 or out.shape != (1, out_h, out_w, out_c):
        raise IRError(f"node '{node.name}' ({node.op}): output shape {out.shape}, the window gives"
                      f" {(1, out_h, out_w, out_c)}")  # fmt: skip
    return ConvGeometry(in_h, in_w, in_c, out_h, out_w, out_c, kh, kw, *window.stride, *window.pads[:2])


def tap_patches(x: np.ndarray, g: ConvGeometry) -> Iterator[tuple[int, int, np.ndarray]]:
    """For each tap (ky, kx), the (out_h, out_w, C) values of x (1, H, W, C) it reads; padding reads 0."""
    channels = x.shape[-1]
    rows = max(g.pad_top + g.in_h, (g.out_h - 1) * g.stride_h + g.kernel_h)
    cols = max(g.pad_left + g.in_w, (g.out_w - 1) * g.stride_w + g.kernel_w)
    padded = np.zeros((rows, cols, channels), np.float64)
    padded[g.pad_top : g.pad_top + g.in_h, g.pad_left : g.pad_left + g.in_w] = x.reshape(g.in_h, g.in_w, channels)
    for ky in range(g.kernel_h):
        for kx in range(g.kernel_w):
            rows_read = slice(ky, ky + (g.out_h - 1) * g.stride_h + 1, g.stride_h)
            cols_read = slice(kx, kx + (g.out_w - 1) * g.stride_w + 1, g.stride_w)
            yield ky, kx, padded[rows_read, cols_read]


def correlate(x: np.ndarray, weights: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """sum over taps and input channels of x * weights: (1, out_h, out_w, out_c) float64."""
    acc = np.zeros((g.out_h * g.out_w, g.out_c), np.float64)
    w = np.asarray(weights, np.float64)
    for ky, kx, patch in tap_patches(np.asarray(x, np.float64), g):
        acc += patch.reshape(-1, g.in_c) @ w[:, ky, kx, :].T
    return acc.reshape(1, g.out_h, g.out_w, g.out_c)


def lowered_params(node: Node) -> ConvParams:
    if not isinstance(node.lowered, ConvParams):
        raise IRError(f"node '{node.name}' ({node.op}) is not lowered")
    return node.lowered


def integer_operands(node: Node, graph: Graph, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x + input_offset, weights + weight_offset, bias) of a lowered node, as exact float64 / int64."""
    stage = lowered_params(node).stage
    weights, bias = constants(node, graph)
    x_offset = np.asarray(x, np.float64) + stage.input_offset
    w_offset = np.asarray(weights.data, np.float64) + stage.weight_offset
    return x_offset, w_offset, np.asarray(bias.data, np.int64)


def float_reference(node: Node, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    weights, bias = real_constants(node, graph, CHANNEL_AXIS)
    return float_activation(correlate(inputs[0], weights, geometry(node, graph)) + bias, node)


def output_qparams(node: Node, graph: Graph) -> QParams | None:
    return None


def quantize_constants(node: Node, graph: Graph) -> list[Tensor]:
    return quantize_weighted(node, graph, CHANNEL_AXIS)


def lower(node: Node, graph: Graph) -> ConvParams:
    return ConvParams(geometry(node, graph), lower_output_stage(node, graph, CHANNEL_AXIS))


def reference(node: Node, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    p = lowered_params(node)
    x, w, bias = integer_operands(node, graph, inputs[0])
    acc = correlate(x, w, p.geometry).astype(np.int64) + bias
    return output_stage(acc, p.stage)


def macs(node: Node, graph: Graph) -> int:
    """H' * W' * C_out * KH * KW * C_in."""
    weights, _ = constants(node, graph)
    _, out_h, out_w, _ = graph.tensor(node.outputs[0]).shape
    return out_h * out_w * weights.size


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    """The output may start at input_start + d for any d <= the limit (kernels/__init__.py).

    The portable kernel's units are output bytes: pixels in raster order, channels
    ascending, and out[oc] is written right after the reads of its whole window;
    those reads all lie at or above the window's first in-bounds tap (lag 1)."""
    g = geometry(node, graph)
    first = np.repeat(window_first_reads(g), g.out_c)
    return (raster_limit(first, 1, g.in_h * g.in_w * g.in_c, lag=1),)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    p = lowered_params(node)
    return {**dataclasses.asdict(p.geometry), **p.stage.c_fields()}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return c_constants_of(node, graph, lowered_params(node).stage)
