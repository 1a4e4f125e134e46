"""conv2d 1x1, stride 1, no padding, on the Arm DSP extension (Cortex-M4/M7/M33/M55).

A GEMM blocked 2 output pixels x 2 output channels: per 4 input channels, two LDRs of
input, four SXTB16 and eight SMLAD (16 MACs) against weights repacked at compile time
to int16 pairs in the order SXTB16 produces (channel pair, 4-channel group, [c: x0 x2
x1 x3]) so they load as words without unpacking. input_offset * sum(w) is folded into
the bias; the output stage is requant.py's. All sizes are C constants.

Order (overlap): output pixels are written in pairs, pair k after reading only input
pixels 2k and 2k + 1 (each re-read per channel pair): units of two pixels, lag 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from .. import raster_limit
from ..conv2d import (  # noqa: F401 - the variant keeps the op's semantics: re-exported for kernel_of
    float_reference,
    geometry,
    lower,
    lowered_params,
    macs,
    output_qparams,
    quantize_constants,
    reference,
)
from .common import ChannelSplit, KernelSource, paired_constants, spec_name, split_channels
from .requant import FastStage

OP = "conv2d"
NAME = "pointwise_dsp"
SCRATCH = False
CHANNEL_AXIS = 0
GROUP = 4  # input channels per SXTB16 pair


@dataclass(frozen=True)
class PointwiseSpec:
    fn: str
    pixels: int
    in_c: int
    out_c: int
    unroll: int  # 4-channel groups per loop iteration
    fast_pairs: int
    slow_pairs: int
    stage: FastStage
    output_offset: int  # for the slow channels' portable output stage


def _split(node: Node, graph: Graph) -> ChannelSplit:
    return split_channels(node, graph, lowered_params(node).stage, CHANNEL_AXIS)


def applies(node: Node, graph: Graph, target: Target) -> bool:
    if node.op != OP or not target.has_dsp or lowered_params(node).stage.weight_offset != 0:
        return False
    g = geometry(node, graph)
    pointwise = (g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left) == (1, 1, 1, 1, 0, 0)
    same = (g.out_h, g.out_w) == (g.in_h, g.in_w)
    return pointwise and same and g.in_c % GROUP == 0


def packed_weights(weights: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """(C_out, C_in) int8 -> int16 pairs as int32 words in the kernel's read order: per channel
    pair, per group of 4 input channels, each channel's (x0, x2) and (x1, x3), the halves
    SXTB16 pairs up (words, so the compiler may load two at once with LDRD)."""
    in_c = weights.shape[1]
    w = weights.astype(np.int16)[pairs.ravel()].reshape(len(pairs), 2, in_c // GROUP, GROUP)[..., [0, 2, 1, 3]]
    return np.ascontiguousarray(w.transpose(0, 2, 1, 3)).ravel().view("<i4").astype(np.int32)  # word pairs


def spec(node: Node, graph: Graph, optimize: str) -> PointwiseSpec:
    g, split = geometry(node, graph), _split(node, graph)
    fs = split.stage
    groups = g.in_c // GROUP
    unroll = max(u for u in (1, 2, 4, 8) if groups % u == 0 and (optimize == "speed" or u <= 2))
    pixels = g.out_h * g.out_w
    values = (pixels, g.in_c, g.out_c, unroll, len(split.fast), len(split.slow), fs.uniform_left,
              int(fs.all_right), fs.act_min, fs.act_max)
    return PointwiseSpec(spec_name("mcugen_pw_dsp", values), pixels, g.in_c, g.out_c, unroll, len(split.fast),
                         len(split.slow), fs, lowered_params(node).stage.output_offset)


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    s = spec(node, graph, optimize)
    return KernelSource(s.fn, "kernels/arm/pointwise_dsp.c.j2", s, ("mcugen_dsp.h",))


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    return {}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return paired_constants(node, graph, _split(node, graph), packed_weights)


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    g = geometry(node, graph)
    pixels = g.out_h * g.out_w
    first = np.arange(0, pixels, 2, dtype=np.int64) * g.in_c
    return (raster_limit(first, 2 * g.out_c, pixels * g.in_c, lag=0),)
