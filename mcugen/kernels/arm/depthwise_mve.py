"""depthwise_conv2d 3x3, stride 1 or 2, depth multiplier 1, on Helium (MVE, Cortex-M55).

Channels innermost (NHWC), 8 at a time in int16 lanes: per tap one VLDRB.S16 widens 8
input channels, one more the tap's 8 int8 weights (kept int8 in flash; a layer with a
per-tensor weight zero point keeps w + offset, 9 bits, as int16 read by VLDRH.S16, the
same count of instructions), and VMULLB /
VMULLT multiply the even and odd lanes into two int32x4 accumulators (6 instructions per
8 MACs). A channel count that is not a multiple of 8 ends with a group that overlaps the
previous one (it starts at C - 8 and rewrites some outputs with the same bytes), so no
lane is ever predicated; C >= 8 is required. input_offset * sum(w) is folded into the
bias, so padding taps read a pixel of zero-point bytes (the scratch). The interior pixels
of an output row run through one call, two at a time (each weight vector serves both),
their taps through three row pointers (widening loads take low registers only: nine tap
pointers do not fit); a pixel whose window crosses the padding reads its taps through a
table of nine pointers (two more instructions per tap, no copies).

Output stage, exact for every int32 accumulator (no per-channel fast/slow split):
VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul lane for lane; TFLite's
rounding divide by 2^right rounds ties away from zero where VRSHL rounds them up, so
negative values are first lowered by one (VQRDMULH never returns INT32_MIN for q >= 0,
so that cannot wrap): mcugen_mve_mbqm / _any in templates/runtime/mcugen_mve.h. The two
int32x4 halves are narrowed with saturation into one int16x8 (even / odd lanes give the
channel order back), the zero point added saturating, clamped and stored with VSTRB.16
(mcugen_mve_out16).

All sizes are run-time fields of `mcugen_dw_mve_params`: one function serves every layer
(the spec only says whether some channel shifts left or some shifts right by 0).

Order: output pixels in raster order straight to the output, two at a time in a row's
interior: a pixel's bytes (each group of 8 channels) are written after its own group's taps
and its pair partner's are read, so when pixel p's bytes are written the input still to be
read starts at the lowest window of pixels p, p + 1, ... and the writes end at most a pixel
further, (p + 2) * C (`overlap_limits`: raster units of a pixel, lag 0, one pixel more). A
last group overlapping the previous one re-reads only bytes of the same windows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from .. import raster_limit, window_first_reads
from ..common import io_qparams
from ..conv2d import geometry, lowered_params
from ..weights import OutputStage
from .common import KernelSource, effective_weights, folded_bias, spec_name

OP = "depthwise_conv2d"
NAME = "depthwise_mve"
SCRATCH = True
CHANNEL_AXIS = 3
PARAMS = "mcugen_dw_mve_params"
LANES = 8  # channels per group: one int16x8 vector
TAPS = 9


@dataclass(frozen=True)
class MveStageSpec:
    """What changes the code of the vector output stage (everything else is table data)."""

    any_left: bool  # some channel has shift > 0: a VSHL before VQRDMULH
    all_right: bool  # every channel has shift < 0: the ties correction needs no mask

    @property
    def words(self) -> int:
        """int32 words per group of 8 channels in the table."""
        return 8 * (3 + self.any_left + (not self.all_right))

    def c_mbqm(self, acc: str, row: str, lane: int) -> str:
        """C of the int32x4 `acc` through MultiplyByQuantizedMultiplier, with the 4 lanes from
        `lane` (0: even channels, 4: odd) of the group's table rows at pointer `row`."""
        def vector(word: int) -> str:
            return f"mcugen_mve_ld32({row} + {word + lane})"

        if not self.any_left and self.all_right:
            return f"mcugen_mve_mbqm({acc}, {vector(8)}, {vector(16)})"
        left = vector(24) if self.any_left else "mcugen_mve_dup32(0)"
        fix = "mcugen_mve_dup32(-1)" if self.all_right else vector(self.words - 8)
        return f"mcugen_mve_mbqm_any({acc}, {vector(8)}, {left}, {vector(16)}, {fix})"


@dataclass(frozen=True)
class DepthwiseMveSpec:
    fn: str
    stage: MveStageSpec
    wide: bool  # int16 weights: w + a weight zero point's offset
    feed_fn: str = ""  # depthwise_fed_mve: the pointwise function writing its input rows into a ring
    feed_params: str = ""  # its params struct type

    @property
    def fed(self) -> bool:
        return bool(self.feed_fn)

    @property
    def params(self) -> str:
        return "mcugen_dw_mve_fed_params" if self.fed else PARAMS

    @property
    def weight_type(self) -> str:
        return "int16_t" if self.wide else "int8_t"


def mve_stage_spec(stage: OutputStage) -> MveStageSpec:
    shift = stage.shift.astype(np.int64)
    return MveStageSpec(bool((shift > 0).any()), bool((shift < 0).all()))


def group_starts(channels: int) -> np.ndarray:
    """First channel of each group of 8: 0, 8, ..., and C - 8 for a last, overlapping group."""
    return np.minimum(np.arange(0, channels, LANES), channels - LANES)


def lane_order(starts: np.ndarray) -> np.ndarray:
    """(groups, 8) channel per table lane: per group the even channels (VMULLB's lanes), then the odd."""
    return starts[:, None] + np.array([0, 2, 4, 6, 1, 3, 5, 7])


def stage_table(stage: OutputStage, bias: np.ndarray, s: MveStageSpec, starts: np.ndarray) -> np.ndarray:
    """Per group, 8-word rows in lane order: bias, q, -right[, left][, mask (-1: shifts right)]."""
    ch = lane_order(starts)
    shift = stage.shift.astype(np.int64)[ch]
    rows = [np.asarray(bias, np.int64)[ch], stage.multiplier.astype(np.int64)[ch], -np.maximum(-shift, 0)]
    if s.any_left:
        rows.append(np.maximum(shift, 0))
    if not s.all_right:
        rows.append(np.where(shift < 0, -1, 0))
    return np.stack(rows, axis=1).astype(np.int32).ravel()


def packed_weights(weights: np.ndarray, starts: np.ndarray, dtype: type) -> np.ndarray:
    """(9, C) (tap, channel) -> per group, per tap, its 8 channels' weights as `dtype`."""
    ch = starts[:, None] + np.arange(LANES)
    return np.ascontiguousarray(weights[:, ch].transpose(1, 0, 2)).ravel().astype(dtype)


def applies(node: Node, graph: Graph, target: Target) -> bool:
    if node.op != OP or not target.has_mve:
        return False
    g = geometry(node, graph)
    return ((g.kernel_h, g.kernel_w) == (3, 3) and g.stride_h == g.stride_w and g.stride_h in (1, 2)
            and g.in_c == g.out_c and g.in_c >= LANES)


def spec(node: Node, graph: Graph) -> DepthwiseMveSpec:
    stage = lowered_params(node).stage
    s, wide = mve_stage_spec(stage), stage.weight_offset != 0
    return DepthwiseMveSpec(spec_name("mcugen_dw_mve", (int(s.any_left), int(s.all_right), int(wide))), s, wide)


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    s = spec(node, graph)
    return KernelSource(s.fn, "kernels/arm/depthwise_mve.c.j2", s, ("mcugen_mve.h",), s.params)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    g, stage = geometry(node, graph), lowered_params(node).stage
    return {
        "in_h": g.in_h,
        "in_w": g.in_w,
        "channels": g.in_c,
        "out_h": g.out_h,
        "out_w": g.out_w,
        "stride": g.stride_h,
        "pad_top": g.pad_top,
        "pad_left": g.pad_left,
        "pad_value": io_qparams(node, graph)[0].scalar_zero_point,
        "output_offset": stage.output_offset,
        "act_min": stage.act_min,
        "act_max": stage.act_max,
    }


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    stage, s = lowered_params(node).stage, spec(node, graph)
    starts = group_starts(geometry(node, graph).in_c)
    w = effective_weights(node, graph, CHANNEL_AXIS).T  # (taps, channel)
    table = stage_table(stage, folded_bias(node, graph, stage, CHANNEL_AXIS), s.stage, starts)
    return [("weights", packed_weights(w, starts, np.int16 if s.wide else np.int8)), ("table", table)]


def scratch_bytes(node: Node, graph: Graph) -> int:
    return geometry(node, graph).in_c  # one input pixel of zero-point bytes (the padding)


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    g = geometry(node, graph)
    in_bytes = g.in_h * g.in_w * g.in_c
    return (raster_limit(window_first_reads(g), g.out_c, in_bytes, lag=0) - g.out_c,)
