"""conv2d 1x1, stride 1, no padding, on Helium (MVE, Cortex-M55).

Blocks of 2 output pixels x 2 output channels: per 16 input channels, 2 input and 2 weight
vector loads feed 4 VMLADAVA.S8 (64 MACs in 8 instructions; mcugen_mve_pw2x2 in
templates/runtime/mcugen_mve.h, in assembly) in a tail-predicated loop (DLSTP.8 / LETP), so
any channel count works and no byte past a pixel is read. The weights stay int8 in flash, in
the order the loop reads them (per channel pair, per 16-byte chunk, c0's then c1's; a partial
last chunk zero-padded). input_offset * sum(w) is folded into the bias (common.folded_bias),
which starts the sums.

The four sums (x0.c0, x0.c1, x1.c0, x1.c1) go through a vector output stage exact for every
int32 accumulator (VQRDMULH, VRSHL with depthwise_mve's ties correction, saturating zero
point, clamp: no fast/slow split) and one VSTRB.32 scatter store with the pair's offsets
(c0, c1, out_c + c0, out_c + c1) from the table. The ties correction is left out when a
negative value clamps to act_min anyway (requant.needs_ties: every ReLU layer). Channels whose
every reachable accumulator gives one output (dead ReLU channels) are paired too and just
stored. An odd last pixel stores 2 lanes (VSTRB under VCTP.32).

All sizes are run-time fields of `mcugen_pw_mve_params`: one function per output-stage shape.

A per-tensor weight zero point (uint8 models) stays out of the int8 weights: sum_c x_c (w_c + o)
= sum_c x_c w_c + o * sum_c x_c, so each pixel's input sum times o joins its lanes' sums (the
bias folds input_offset * sum(w + o), common.folded_bias); `..._offset_params` carries o.

Pixels go 4 at a time (mcugen_mve_pw4x2: the two pixel pairs in one asm block, sharing the
channel pair's table rows: q, shift and offsets are loaded once for 8 outputs), then the last
0..3 in pairs.

Order (overlap): each group of 4 (then 2 or 1) pixels reads its input pixels for each channel
pair and writes its output pixels in between: lag 0, units of unequal size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from ..conv2d import geometry, lowered_params
from ..weights import constants
from .common import KernelSource, acc_range, folded_bias, spec_name
from .requant import constant_channels, needs_ties

OP = "conv2d"
NAME = "pointwise_mve"
SCRATCH = False
CHANNEL_AXIS = 0
CHUNK = 16  # input channels per vector
FILL_WORDS = 8  # per constant pair: offsets, values


@dataclass(frozen=True)
class PwMveSpec:
    """What changes the code of the output stage (everything else is table data)."""

    fn: str
    left: bool  # some channel shifts left: a VSHL before VQRDMULH
    ties: bool  # negative ties can reach an output: the sign correction
    all_right: bool  # every channel shifts right: the correction needs no mask
    offset: bool  # the weights have a zero point: each pixel's input sum times it joins the sums

    @property
    def params(self) -> str:
        return f"mcugen_pw_mve{'_offset' if self.offset else ''}_params"

    @property
    def masked(self) -> bool:
        return self.ties and not self.all_right

    @property
    def row(self) -> int:
        """int32 words per channel pair in the table: bias0, bias1, q, -right, offsets[, left][, mask]."""
        return 2 + 12 + 4 * self.left + 4 * self.masked


@dataclass(frozen=True, eq=False)
class Channels:
    """Output channels as pairs in compute order (an odd group repeats its last channel)."""

    computed: np.ndarray  # (pairs, 2)
    constant: np.ndarray  # (pairs, 2)
    values: np.ndarray  # (pairs, 2): the constant channels' outputs


def _pairs(channels: np.ndarray) -> np.ndarray:
    if channels.size % 2:
        channels = np.append(channels, channels[-1])
    return channels.reshape(-1, 2)


def channels(node: Node, graph: Graph) -> Channels:
    stage = lowered_params(node).stage
    constant, values = constant_channels(stage, *acc_range(node, graph, CHANNEL_AXIS))
    fixed = _pairs(np.flatnonzero(constant))
    return Channels(_pairs(np.flatnonzero(~constant)), fixed, values[fixed])


def applies(node: Node, graph: Graph, target: Target) -> bool:
    if node.op != OP or not target.has_mve:
        return False
    g = geometry(node, graph)
    pointwise = (g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left) == (1, 1, 1, 1, 0, 0)
    return pointwise and (g.out_h, g.out_w) == (g.in_h, g.in_w)


def spec(node: Node, graph: Graph) -> PwMveSpec:
    stage = lowered_params(node).stage
    computed = channels(node, graph).computed.ravel()
    shift = stage.shift.astype(np.int64)[computed]
    left, all_right, ties = bool((shift > 0).any()), bool((shift < 0).all()), needs_ties(stage)
    offset = stage.weight_offset != 0
    return PwMveSpec(spec_name("mcugen_pw_mve", (int(left), int(ties), int(all_right and ties), int(offset))),
                     left, ties, all_right, offset)


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    s = spec(node, graph)
    return KernelSource(s.fn, "kernels/arm/pointwise_mve.c.j2", s, ("mcugen_mve.h",), s.params)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    g, ch, stage = geometry(node, graph), channels(node, graph), lowered_params(node).stage
    return {
        "pixels": g.out_h * g.out_w,
        "in_c": g.in_c,
        "out_c": g.out_c,
        "pairs": len(ch.computed),
        "fill_pairs": len(ch.constant),
        "output_offset": stage.output_offset,
        "act_min": stage.act_min,
        "act_max": stage.act_max,
        **({"weight_offset": stage.weight_offset} if stage.weight_offset else {}),
    }


def packed_weights(weights: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """(C_out, C_in) int8 -> per channel pair, per 16-byte chunk, c0's then c1's (zero-padded)."""
    chunks = -(-weights.shape[1] // CHUNK)
    padded = np.zeros((weights.shape[0], chunks * CHUNK), np.int8)
    padded[:, :weights.shape[1]] = weights
    w = padded[pairs.ravel()].reshape(len(pairs), 2, chunks, CHUNK)
    return np.ascontiguousarray(w.transpose(0, 2, 1, 3)).ravel()


def _quad(v: np.ndarray) -> np.ndarray:
    """(pairs, 2) -> (pairs, 4): lanes (c0, c1, c0, c1), both pixels of a pair."""
    return np.concatenate([v, v], axis=1)


def offsets(pairs: np.ndarray, out_c: int) -> np.ndarray:
    """(pairs, 4): each lane's output byte from the pixel pair's first output byte."""
    return np.concatenate([pairs, pairs + out_c], axis=1)


def table(node: Node, graph: Graph) -> np.ndarray:
    stage, ch, s = lowered_params(node).stage, channels(node, graph), spec(node, graph)
    pairs = ch.computed
    if not pairs.size:
        return np.zeros(s.row, np.int32)
    bias = folded_bias(node, graph, stage, CHANNEL_AXIS)[pairs]
    shift = stage.shift.astype(np.int64)[pairs]
    rows = [bias, _quad(stage.multiplier.astype(np.int64)[pairs]), _quad(np.minimum(shift, 0)),
            offsets(pairs, geometry(node, graph).out_c)]
    if s.left:
        rows.append(_quad(np.maximum(shift, 0)))
    if s.masked:
        rows.append(_quad(np.where(shift < 0, -1, 0)))
    return np.concatenate(rows, axis=1).astype(np.int32).ravel()


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    weights, _ = constants(node, graph)
    ch = channels(node, graph)
    w = np.asarray(weights.data, np.int8).reshape(weights.shape[0], -1)
    packed = packed_weights(w, ch.computed) if ch.computed.size else np.zeros(CHUNK, np.int8)
    fills = np.concatenate([offsets(ch.constant, geometry(node, graph).out_c),
                            _quad(ch.values)], axis=1).astype(np.int32).ravel()
    return [("weights", packed), ("table", table(node, graph)),
            ("fills", fills if fills.size else np.zeros(FILL_WORDS, np.int32))]


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    """raster_limit's lag-0 bound for units of unequal size: each group of pixels (4, then 2 or 1)
    reads its inputs while it writes its outputs, so its outputs must end below its first input."""
    g = geometry(node, graph)
    pixels = g.out_h * g.out_w
    quads = pixels // 4 * 4
    starts = np.concatenate([np.arange(0, quads, 4), np.arange(quads, pixels, 2)]).astype(np.int64)
    ends = np.append(starts[1:], pixels)
    return (int(min(pixels * g.in_c, (starts * g.in_c - ends * g.out_c).min())),)
