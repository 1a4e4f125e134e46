"""conv2d 1x1, stride 1, no padding, on the Arm DSP extension (Cortex-M4/M7/M33/M55).

One shared C function per structure (unroll, whether exact pairs or clamps exist, whether
negative ties matter): the sizes are fields of `mcugen_pw_dsp_params`.

Per pair of output pixels, the pair's input is first widened to int16 in the scratch, in
the order SXTB16 produces (per 4-channel group: pixel 0's (x0, x2), (x1, x3), then pixel
1's), so the GEMM loads it as words: per group and channel pair, 2 LDRD of input, 2 LDRD
of weights (repacked to the same order at compile time) and 8 SMLAD, 16 MACs.

Output channels fall in three kinds, in this order:
- scaled pairs: requant.py's scaled stage (SMMLAR, ASR, SSAT), their weights and bias
  pre-multiplied by 2^(left+1);
- exact pairs: channels the scaled stage cannot take, through the portable mcugen_requantize;
- constant channels: every int8 input gives the same output (a dead ReLU channel), which is
  just stored.

Order (overlap): pixel pair k reads input pixels 2k, 2k + 1 into the scratch, then writes
output pixels 2k, 2k + 1: units of two pixels that read all their input first, lag 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from .. import raster_limit
from ..common import io_qparams
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
from ..weights import constants
from .common import KernelSource, acc_bounds, folded_bias, spec_name
from .requant import ScaledStage, constant_channels, needs_ties, scaled_channels, scaled_stage

OP = "conv2d"
NAME = "pointwise_dsp"
SCRATCH = True
CHANNEL_AXIS = 0
GROUP = 4  # input channels per SXTB16 pair
ROW = 12  # table words per channel pair: bias0 bias0 bias1 bias1, c0 c1, q0 q1, k0 k1, right0 right1


@dataclass(frozen=True)
class PointwiseSpec:
    fn: str
    unroll: int  # 4-channel groups per inner loop iteration
    exact: bool  # some channel pairs need the portable output stage
    clamps: bool  # the activation narrows the int8 range
    ties: bool  # negative ties need the sign correction

    @property
    def params(self) -> str:
        """The params struct type: its fields are those this structure reads (cppcheck flags unread ones)."""
        return f"mcugen_pw_dsp{'_exact' if self.exact else '_clamp' if self.clamps else ''}_params"


@dataclass(frozen=True, eq=False)
class Channels:
    """The output channels by kind, pairs in compute order (an odd group repeats its last channel)."""

    scaled: np.ndarray  # (pairs, 2)
    exact: np.ndarray  # (pairs, 2)
    constant: np.ndarray  # channel indices
    values: np.ndarray  # their outputs
    stage: ScaledStage  # of scaled.ravel()
    bias: np.ndarray  # folded, per channel


def _pairs(channels: np.ndarray) -> np.ndarray:
    if channels.size % 2:
        channels = np.append(channels, channels[-1])
    return channels.reshape(-1, 2)


def acc_range(node: Node, graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the lowest and highest accumulator int8 inputs reach (exactly: each
    tap's term is extreme at an end of the input range, independently of the others)."""
    weights, bias = constants(node, graph)
    w = weights.data.astype(np.int64).reshape(weights.shape[0], -1)
    offset = -io_qparams(node, graph)[0].scalar_zero_point
    ends = np.stack([(-128 + offset) * w, (127 + offset) * w])
    b = bias.data.astype(np.int64)
    return b + ends.min(axis=0).sum(axis=1), b + ends.max(axis=0).sum(axis=1)


def channels(node: Node, graph: Graph) -> Channels:
    stage = lowered_params(node).stage
    constant, values = constant_channels(stage, *acc_range(node, graph))
    scaled = scaled_channels(stage, acc_bounds(node, graph, CHANNEL_AXIS)) & ~constant
    exact = ~scaled & ~constant
    bias = folded_bias(node, graph, stage, CHANNEL_AXIS)
    s_pairs = _pairs(np.flatnonzero(scaled))
    return Channels(s_pairs, _pairs(np.flatnonzero(exact)), np.flatnonzero(constant), values[constant],
                    scaled_stage(stage, bias, s_pairs.ravel()), bias)


def applies(node: Node, graph: Graph, target: Target) -> bool:
    if node.op != OP or not target.has_dsp or lowered_params(node).stage.weight_offset != 0:
        return False
    g = geometry(node, graph)
    pointwise = (g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left) == (1, 1, 1, 1, 0, 0)
    same = (g.out_h, g.out_w) == (g.in_h, g.in_w)
    return pointwise and same and g.in_c % GROUP == 0


def packed_weights(weights: np.ndarray, pairs: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(C_out, C_in) int8 -> int16 pairs (times each channel's `scale`) as int32 words in the
    kernel's read order: per channel pair, per group of 4 input channels, each channel's
    (x0, x2) and (x1, x3), the halves SXTB16 pairs up."""
    in_c = weights.shape[1]
    scaled = weights.astype(np.int64)[pairs.ravel()] * scale.reshape(-1, 1)
    assert np.abs(scaled).max(initial=0) < 1 << 15
    w = scaled.astype(np.int16).reshape(len(pairs), 2, in_c // GROUP, GROUP)[..., [0, 2, 1, 3]]
    return np.ascontiguousarray(w.transpose(0, 2, 1, 3)).ravel().view("<i4").astype(np.int32)


def spec(node: Node, graph: Graph, optimize: str) -> PointwiseSpec:
    groups = geometry(node, graph).in_c // GROUP
    unroll = max(u for u in (1, 2, 4, 8) if groups % u == 0 and (optimize == "speed" or u <= 2))
    stage, ch = lowered_params(node).stage, channels(node, graph)
    exact, clamps, ties = bool(ch.exact.size), stage.act_min > -128 or stage.act_max < 127, needs_ties(stage)
    return PointwiseSpec(spec_name("mcugen_pw_dsp", (unroll, int(exact), int(clamps), int(ties))),
                         unroll, exact, clamps, ties)


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    s = spec(node, graph, optimize)
    return KernelSource(s.fn, "kernels/arm/pointwise_dsp.c.j2", s, ("mcugen_dsp.h",), s.params)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    g, ch, stage = geometry(node, graph), channels(node, graph), lowered_params(node).stage
    s = spec(node, graph, "speed")
    fields = {"pixels": g.out_h * g.out_w, "in_c": g.in_c, "out_c": g.out_c, "scaled_pairs": len(ch.scaled),
              "constants": len(ch.constant)}
    if s.exact or s.clamps:
        fields.update(act_min=stage.act_min, act_max=stage.act_max)
    if s.exact:
        fields.update(exact_pairs=len(ch.exact), output_offset=stage.output_offset)
    return fields


def _table(ch: Channels, node: Node) -> np.ndarray:
    """Per pair, ROW words: the scaled pairs' stage constants, then the exact pairs' (q, shift in
    the k words, the bias unscaled)."""
    stage = lowered_params(node).stage
    s = ch.stage
    rows = []
    if ch.scaled.size:
        per = [v.reshape(-1, 2) for v in (s.bias, s.multiplier, s.k, s.right)]
        b = per[0]
        rows.append(np.concatenate([b[:, :1], b[:, :1], b[:, 1:], b[:, 1:], ch.scaled, *per[1:]], axis=1))
    if ch.exact.size:
        e = ch.exact
        b = ch.bias[e]
        rows.append(np.concatenate([b[:, :1], b[:, :1], b[:, 1:], b[:, 1:], e, stage.multiplier[e], stage.shift[e],
                                    np.zeros_like(e)], axis=1))
    return np.concatenate(rows).astype(np.int32).ravel() if rows else np.zeros(ROW, np.int32)


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    ch = channels(node, graph)
    weights, _ = constants(node, graph)
    w = np.asarray(weights.data, np.int8).reshape(weights.shape[0], -1)
    pairs = np.concatenate([ch.scaled, ch.exact])
    scale = np.concatenate([ch.stage.scale, np.ones(ch.exact.size, np.int64)])
    packed = packed_weights(w, pairs, scale) if pairs.size else np.zeros(1, np.int32)
    fills = np.stack([ch.constant, ch.values], axis=1).astype(np.int32).ravel() if ch.constant.size else np.zeros(2, np.int32)
    return [("weights", packed), ("table", _table(ch, node)), ("constants", fills)]


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 2 * geometry(node, graph).in_c * 2  # two pixels' inputs as int16


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    g = geometry(node, graph)
    pixels = g.out_h * g.out_w
    first = np.arange(0, pixels, 2, dtype=np.int64) * g.in_c
    return (raster_limit(first, 2 * g.out_c, pixels * g.in_c, lag=1),)
