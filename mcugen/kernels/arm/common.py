"""What the fast (Arm DSP / Helium) kernel variants share: their C source descriptor and
the compile-time facts about a weighted layer they rely on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...ir import Graph, Node
from ..common import io_qparams
from ..conv2d import geometry, lowered_params
from ..weights import OutputStage, constants
from .requant import MAX_SCALED_LEFT, scaled_channels


@dataclass(frozen=True)
class KernelSource:
    """One C function of a variant: rendered once per distinct `name` from `template` with
    `spec` (its compile-time constants). The schedule calls it as `name(in, out, consts...)`,
    or, when `params` names a struct type, as `name(&layer_params, in, out, consts...)`
    with the variant's `c_params` as that struct's int32_t fields (emit.py declares the
    type), so one function can serve layers that differ only in those run-time values."""

    name: str
    template: str
    spec: Any
    headers: tuple[str, ...]
    params: str | None = None


def spec_name(stem: str, values: tuple[object, ...]) -> str:
    """A C function name that differs whenever a compile-time constant differs."""
    return "_".join([stem, *(str(v).replace("-", "m") for v in values)])


def effective_weights(node: Node, graph: Graph, axis: int) -> np.ndarray:
    """(C_out, taps) int64, output channel `axis` first: w + weight_offset, what each input tap
    is multiplied by. A per-tensor weight zero point (pre-quantized uint8 models) rides in the
    weights this way (|w + offset| <= 383 fits the kernels' int16 halves), so no kernel sees it."""
    weights, _ = constants(node, graph)
    w = np.moveaxis(weights.data.astype(np.int64), axis, 0).reshape(weights.shape[axis], -1)
    return w + lowered_params(node).stage.weight_offset


def acc_bounds(node: Node, graph: Graph, axis: int) -> np.ndarray:
    """Per output channel, the largest |accumulator| any int8 input gives (bias included)."""
    _, bias = constants(node, graph)
    zp_in = io_qparams(node, graph)[0].scalar_zero_point
    max_input = max(128 + zp_in, 127 - zp_in)
    return np.abs(bias.data.astype(np.int64)) + max_input * np.abs(effective_weights(node, graph, axis)).sum(axis=1)


def acc_range(node: Node, graph: Graph, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the lowest and highest accumulator int8 inputs reach (exactly: each
    tap's term is extreme at an end of the input range, independently of the others)."""
    _, bias = constants(node, graph)
    w = effective_weights(node, graph, axis)
    offset = -io_qparams(node, graph)[0].scalar_zero_point
    ends = np.stack([(-128 + offset) * w, (127 + offset) * w])
    b = bias.data.astype(np.int64)
    return b + ends.min(axis=0).sum(axis=1), b + ends.max(axis=0).sum(axis=1)


def scalable(node: Node, graph: Graph, axis: int) -> np.ndarray:
    """Per output channel: whether requant.py's scaled stage is exact for it and its weights,
    times the stage's 2^(left+1), still fit the int16 halves the kernels multiply."""
    stage = lowered_params(node).stage
    left = np.minimum(np.maximum(stage.shift.astype(np.int64), 0), MAX_SCALED_LEFT)
    w_max = np.abs(effective_weights(node, graph, axis)).max(axis=1, initial=0)
    return scaled_channels(stage, acc_bounds(node, graph, axis)) & (w_max << (left + 1) < 1 << 15)


def folded_bias(node: Node, graph: Graph, stage: OutputStage, axis: int) -> np.ndarray:
    """bias + input_offset * sum(effective weights) per output channel, wrapped to int32, so the
    inner loops multiply raw int8 inputs.

    Folding is exact for taps that read an input and for padding taps that read the input
    zero point (x + input_offset = 0 there): kernels that fold must pad with the zero point.
    Partial sums may leave int32 on the way; they wrap like the hardware and the final sum
    is the reference's, which lower_output_stage keeps within int32."""
    _, bias = constants(node, graph)
    folded = bias.data.astype(np.int64) + stage.input_offset * effective_weights(node, graph, axis).sum(axis=1)
    return wrap_int32(folded)


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """int64 values wrapped to int32's range (still int64), as a 32-bit register holds them."""
    return ((np.asarray(x, np.int64) + (1 << 31)) % (1 << 32)) - (1 << 31)


def fed_by(node: Node, graph: Graph, variant: str) -> Node:
    """The streamed node (running as `variant`) whose rows `node`'s function computes itself."""
    producer = graph.producer(node.inputs[0])
    assert producer is not None and producer.variant == variant
    return producer


def row_bytes(node: Node, graph: Graph) -> int:
    """Bytes of one NHWC row of the node's input: what a fed layer advances its feeder's input by."""
    g = geometry(node, graph)
    return g.in_w * g.in_c
