"""depthwise_conv2d: TFLite Micro's int8 per-channel DepthwiseConv (NHWC, batch 1).

Weights (1, KH, KW, C_out) with C_out = C_in * depth_multiplier: output channel
c reads input channel c // depth_multiplier only (TFLite's order, and ONNX's for
group = C_in). Otherwise conv2d: same geometry and parameters (`ConvParams`),
padding taps skipped, same output stage.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..ir import Graph, Node, QParams, Tensor
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
SCRATCH = False
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


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    p = lowered_params(node)
    return {**dataclasses.asdict(p.geometry), **p.stage.c_fields()}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return c_constants_of(node, graph, lowered_params(node).stage)
