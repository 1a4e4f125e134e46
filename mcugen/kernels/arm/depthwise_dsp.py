"""depthwise_conv2d 3x3, stride 1 or 2, depth multiplier 1, on the Arm DSP extension.

Channels innermost (NHWC), 4 at a time: per tap one LDR gives 4 channels, SXTB16 splits
them into (c0, c2) and (c1, c3), and SMLABB/SMLATT multiply each half by the matching
half of a weight word (9 instructions per 4 MACs, no repacking of the input; pairing
two taps for SMLAD would cost the same in PKH). Weights are repacked at compile time
to those int16 pairs (`packed_weights`). input_offset * sum(w) is folded into the bias, so padding taps read
a row of zero-point bytes (the scratch) instead of being skipped; interior pixels
address their taps with constant offsets, edge pixels through a table of tap pointers.

Output stage: requant.py's fast stage when every channel passes `fast_channels`, else the
portable `mcugen_requantize` for the whole layer (degenerate channels are rare and the
MACs dominate). All sizes are C constants.

Order: output pixels in raster order straight to the output, no row ring; the output
never overlaps the input (`overlap_limits` declares none), so the arena may grow.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from ..depthwise_conv2d import (  # noqa: F401 - the variant keeps the op's semantics: re-exported for kernel_of
    float_reference,
    lower,
    macs,
    output_qparams,
    quantize_constants,
    reference,
)
from ..conv2d import ConvGeometry, geometry, lowered_params
from ..weights import constants
from .common import KernelSource, acc_bounds, folded_bias, spec_name
from .requant import FastStage, fast_channels, fast_stage

OP = "depthwise_conv2d"
NAME = "depthwise_dsp"
SCRATCH = True
CHANNEL_AXIS = 3
GROUP = 4  # channels per input word
TAPS = 9


@dataclass(frozen=True)
class DepthwiseSpec:
    fn: str
    g: ConvGeometry
    fast: bool  # every channel takes the fast output stage
    stage: FastStage
    output_offset: int
    pad_zp: int  # the input zero point: a padding tap reading it adds 0 to the unfolded sum

    @property
    def table_stride(self) -> int:
        return self.stage.table_stride if self.fast else 3

    def interior(self) -> tuple[int, int, int, int]:
        """oy0, oy1, ox0, ox1: output rows / columns whose 3x3 windows lie inside the input."""
        g = self.g

        def span(pad: int, stride: int, size: int, out: int) -> tuple[int, int]:
            lo = -(-pad // stride)
            hi = max(lo, min(out, (size - 3 + pad) // stride + 1))
            return min(lo, out), hi

        return (*span(g.pad_top, g.stride_h, g.in_h, g.out_h), *span(g.pad_left, g.stride_w, g.in_w, g.out_w))


def applies(node: Node, graph: Graph, target: Target) -> bool:
    if node.op != OP or not target.has_dsp or lowered_params(node).stage.weight_offset != 0:
        return False
    g = geometry(node, graph)
    return ((g.kernel_h, g.kernel_w) == (3, 3) and g.stride_h == g.stride_w and g.stride_h in (1, 2)
            and g.in_c == g.out_c and g.in_c % GROUP == 0)


def packed_weights(weights: np.ndarray) -> np.ndarray:
    """(9, C) int8 (tap, channel) -> int32 words: per 4-channel group, per tap, the int16
    pairs (w[c0], w[c2]) and (w[c1], w[c3]), the halves SXTB16 and its ROR 8 give."""
    c = weights.shape[-1]
    w = weights.reshape(TAPS, c // GROUP, GROUP).astype(np.int64)  # (tap, group, lane)
    words = (w[..., [0, 1]] & 0xFFFF) | ((w[..., [2, 3]] & 0xFFFF) << 16)  # (tap, group, word)
    return np.ascontiguousarray(words.transpose(1, 0, 2)).ravel().astype(np.uint32).view(np.int32)


def _fast(node: Node, graph: Graph) -> bool:
    return bool(fast_channels(lowered_params(node).stage, acc_bounds(node, graph, CHANNEL_AXIS)).all())


def spec(node: Node, graph: Graph) -> DepthwiseSpec:
    g, stage = geometry(node, graph), lowered_params(node).stage
    bias = folded_bias(node, graph, stage, CHANNEL_AXIS)
    fast = _fast(node, graph)
    fs = fast_stage(stage, bias, np.arange(g.out_c))
    values = (g.in_h, g.in_w, g.in_c, g.out_h, g.out_w, g.stride_h, g.pad_top, g.pad_left, int(fast),
              fs.uniform_left, int(fs.all_right), fs.act_min, fs.act_max, stage.output_offset, -stage.input_offset)
    return DepthwiseSpec(spec_name("mcugen_dw_dsp", values), g, fast, fs, stage.output_offset, -stage.input_offset)


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    return KernelSource(spec(node, graph).fn, "kernels/arm/depthwise_dsp.c.j2", spec(node, graph), ("mcugen_dsp.h",))


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    return {}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    weights, _ = constants(node, graph)
    s, stage = spec(node, graph), lowered_params(node).stage
    if s.fast:
        table = s.stage.table()
    else:
        table = np.stack([s.stage.bias, stage.multiplier, stage.shift], axis=1).astype(np.int32)
    w = np.asarray(weights.data, np.int8).reshape(TAPS, -1)
    return [("weights", packed_weights(w)), ("table", table.ravel())]


def scratch_bytes(node: Node, graph: Graph) -> int:
    return geometry(node, graph).in_c  # one input pixel of zero-point bytes (the padding)


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    return (None,)
