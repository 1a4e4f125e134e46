"""depthwise_conv2d: TFLite Micro's int8 per-channel DepthwiseConv (NHWC, batch 1).

Weights (1, KH, KW, C_out) with C_out = C_in * depth_multiplier: output channel
c reads input channel c // depth_multiplier only (TFLite's order, and ONNX's for
group = C_in). Otherwise conv2d: same geometry and parameters (`ConvParams`),
padding taps skipped, same output stage.

In place: when writing output pixels straight to their place would force the
output to start more than a row below the input (`overlap_limits`), the kernel
computes `delay_rows` rows ahead into a ring of row buffers (the scratch) and
writes row r back only once row r + delay_rows - 1 is computed; for a 3x3
stride-1 conv two rows let the output coincide with the input (TinyEngine's
in-place depthwise, with rows instead of channels).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..ir import Graph, Node, QParams, Tensor
from . import NO_READ, raster_limit, window_first_reads
from .conv2d import ConvGeometry, ConvParams, geometry, integer_operands, lowered_params, tap_patches
from .weights import (
    c_constants_of,
    constants,
    float_activation,
    lower_output_stage,
    output_stage,
    quantize_weighted,
    real_constants,
)

OP = "depthwise_conv2d"
SCRATCH = True
MAX_DELAY_ROWS = 4
CHANNEL_AXIS = 3  # of the weights (1, KH, KW, C_out)


def correlate(x: np.ndarray, weights: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """Per output channel c: sum over taps of x[..., c // m] * weights[0, ky, kx, c], float64."""
    spread = np.repeat(np.asarray(x, np.float64), g.out_c // g.in_c, axis=-1)  # channel c holds c // m
    w = np.asarray(weights, np.float64)
    acc = np.zeros((g.out_h, g.out_w, g.out_c), np.float64)
    for ky, kx, patch in tap_patches(spread, g):
        acc += patch * w[0, ky, kx, :]
    return acc.reshape(1, g.out_h, g.out_w, g.out_c)


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
    """H' * W' * C_out * KH * KW."""
    weights, _ = constants(node, graph)
    _, out_h, out_w, _ = graph.tensor(node.outputs[0]).shape
    return out_h * out_w * weights.size


def delay_rows(g: ConvGeometry) -> int:
    """0: write pixels straight out; r > 0: rows through a ring of r row buffers (module docstring).

    The fewest rows that let the output start at the input (limit >= 0), unless
    writing straight out already shifts the output by at most a row, which costs
    less arena than the ring would."""
    if _limit(g, 0) >= -g.out_w * g.out_c:
        return 0
    return next((r for r in range(1, MAX_DELAY_ROWS + 1) if _limit(g, r) >= 0), 0)


def _limit(g: ConvGeometry, rows: int) -> int:
    """The overlap limit of the kernel run with `rows` delay rows (overlap_limits)."""
    first = window_first_reads(g)
    in_bytes = g.in_h * g.in_w * g.in_c
    if rows == 0:
        channel = np.arange(g.out_c) // (g.out_c // g.in_c)  # the input channel output channel oc reads
        reads = np.where(first[:, None] == NO_READ, NO_READ, first[:, None] + channel)
        return raster_limit(reads.ravel(), 1, in_bytes, lag=1)
    return raster_limit(first.reshape(g.out_h, g.out_w).min(axis=1), g.out_w * g.out_c, in_bytes, lag=rows)


def scratch_bytes(node: Node, graph: Graph) -> int:
    g = geometry(node, graph)
    return delay_rows(g) * g.out_w * g.out_c


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    """The output may start at input_start + d for any d <= the limit (kernels/__init__.py).

    delay_rows 0: the units are output bytes, pixels in raster order and channels
    ascending; out[oc] is written right after the window's taps of input channel
    oc // depth_multiplier are read (lag 1). delay_rows r: the units are output rows,
    row y written after rows y + 1 .. y + r - 1 are computed into the ring (lag r)."""
    g = geometry(node, graph)
    return (_limit(g, delay_rows(g)),)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    p = lowered_params(node)
    return {**dataclasses.asdict(p.geometry), **p.stage.c_fields(), "delay_rows": delay_rows(p.geometry)}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return c_constants_of(node, graph, lowered_params(node).stage)
