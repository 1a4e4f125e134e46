"""conv2d with a 3 x KW kernel whose window rows fit one vector (KW * C_in <= 16: MobileNets'
first layer) on Helium (MVE, Cortex-M55).

In NHWC one kernel row of a window is KW * C_in contiguous bytes, so one VLDRB.8 loads it
(with up to 16 - KW * C_in bytes beyond it); each output channel's weights are stored as
3 vectors of 16 int8, zero past the row, so the extra bytes add nothing. Per pair of
output pixels in a row the 6 input vectors stay in registers and each channel costs 3
weight loads and 6 VMLADAV(A).S8 (16 MACs each; mcugen_mve_mladav3x2, in assembly). A
window that crosses the padding, or whose last vector would read past the input, is first
gathered into the scratch (the zero point where the padding is, so the folded bias stays
exact: common.folded_bias). A pixel's 8 sums go through the scratch into two int32x4 vectors
(even and odd channels), plus the folded bias, into depthwise_mve's exact vector output
stage. Output channels not a multiple of 8 end with an overlapping group, like
depthwise_mve; C_out >= 8. All sizes are run-time fields of `mcugen_conv_mve_params`.

A per-tensor weight zero point (uint8 models) would take the weights out of int8, so they
stay int8 and each pixel adds offset * (the sum of its window's bytes): 3 more VMLADAV per
pixel against a vector of ones over the kernel row (the bytes past it weigh nothing), into
both channel vectors (`mcugen_conv_mve_offset_params` has the offset).

No overlap is declared: a pair reads a window anywhere above it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from ..common import io_qparams
from ..conv2d import geometry, lowered_params
from ..weights import constants
from .common import KernelSource, folded_bias, spec_name
from .depthwise_mve import LANES, MveStageSpec, group_starts, mve_stage_spec, stage_table

OP = "conv2d"
NAME = "conv_mve"
SCRATCH = True
CHANNEL_AXIS = 0
VECTOR = 16  # bytes per window row vector
KH = 3  # kernel rows: the template and mcugen_mve_mladav3x2 hold 2 * KH input vectors and a weight vector


@dataclass(frozen=True)
class ConvMveSpec:
    fn: str
    stage: MveStageSpec
    offset: bool  # a weight zero point: each pixel adds offset * its window sum

    @property
    def params(self) -> str:
        return "mcugen_conv_mve_offset_params" if self.offset else "mcugen_conv_mve_params"


def applies(node: Node, graph: Graph, target: Target) -> bool:
    if node.op != OP or not target.has_mve:
        return False
    g = geometry(node, graph)
    return g.kernel_h == KH and g.kernel_w * g.in_c <= VECTOR and g.out_c >= LANES


def packed_weights(weights: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(C_out, 3 * KW * C_in) int8 -> per group of 8 channels, per channel, 3 rows of 16 int8
    (a kernel row, then zeros)."""
    row = weights.shape[1] // KH
    padded = np.zeros((weights.shape[0], KH, VECTOR), np.int8)
    padded[:, :, :row] = weights.reshape(-1, KH, row)
    ch = starts[:, None] + np.arange(LANES)
    return np.ascontiguousarray(padded[ch]).ravel()


def spec(node: Node, graph: Graph) -> ConvMveSpec:
    stage = lowered_params(node).stage
    s, offset = mve_stage_spec(stage), stage.weight_offset != 0
    return ConvMveSpec(spec_name("mcugen_conv_mve", (int(s.any_left), int(s.all_right), int(offset))), s, offset)


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    s = spec(node, graph)
    return KernelSource(s.fn, "kernels/arm/conv_mve.c.j2", s, ("mcugen_mve.h",), s.params)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    g, stage = geometry(node, graph), lowered_params(node).stage
    fields = {
        "in_h": g.in_h,
        "in_w": g.in_w,
        "in_c": g.in_c,
        "out_h": g.out_h,
        "out_w": g.out_w,
        "out_c": g.out_c,
        "kernel_w": g.kernel_w,
        "stride_h": g.stride_h,
        "stride_w": g.stride_w,
        "pad_top": g.pad_top,
        "pad_left": g.pad_left,
        "pad_value": io_qparams(node, graph)[0].scalar_zero_point,
        "output_offset": stage.output_offset,
        "act_min": stage.act_min,
        "act_max": stage.act_max,
    }
    if spec(node, graph).offset:
        fields["weight_offset"] = stage.weight_offset
    return fields


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    weights, _ = constants(node, graph)
    stage, s = lowered_params(node).stage, spec(node, graph)
    starts = group_starts(geometry(node, graph).out_c)
    w = np.asarray(weights.data, np.int8).reshape(weights.shape[0], -1)
    table = stage_table(stage, folded_bias(node, graph, stage, CHANNEL_AXIS), s.stage, starts)
    return [("weights", packed_weights(w, starts)), ("table", table)]


def scratch_bytes(node: Node, graph: Graph) -> int:
    # the 16 accumulators of a pair (first: word-aligned), then two pixels' gathered windows
    return 2 * LANES * 4 + 2 * KH * VECTOR


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    return (None,)
