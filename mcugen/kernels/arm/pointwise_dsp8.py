"""conv2d 1x1, stride 1, no padding, on the Arm DSP extension with int8 weights: `--optimize size`.

pointwise_dsp's int16 weight pairs double the weights' flash (VWW on M7: 155 KB against the
M55's 102 KB of int8). This variant stores them as int8, 4 per word, and widens them at run
time with SXTB16 (w0, w2) and SXTB16 ROR 8 (w1, w3), the halves the input copy makes of the
input. The channel kinds (scaled, exact, constant) and the fills are pointwise_dsp's
(`channels`, `fills`).

Widening costs an instruction per weight word and half, so a block shares it among 4 pixels:
per quad of pixels, its input is widened to int16 in the scratch (per group of 4 input
channels: the 4 pixels' (x0, x2) words, then their (x1, x3) words), then 4 pixels x 2 output
channels per block. Per group: the 2 channels' weight words (one LDRD) widened by SXTB16,
the pixels' (x0, x2) words (2 LDRD) against them, the same weight words reloaded and widened
by SXTB16 ROR 8 against the (x1, x3) words: 32 MACs in 26 instructions (6 LDRD, 4 SXTB16,
16 SMLAD; 8 sums, 2 weight and 2 input words and 2 pointers fill the 14 registers), where 2
pixels x 4 channels would widen twice as often (30). In assembly on a DSP core without
clamps, the group loop unrolled and entered part-way (like pointwise_dsp's word loop); the C
loop is its twin. A quad past the last pixel repeats the last pixel (the same bytes stored
again).

Output stage: the weights cannot carry the scaled stage's 2^(left+1) any more, so the sum does:
a = acc << (left+1), one LSL per output, then requant.py's scaled stage on a, which is the
stage's `scaled_requantize(acc)` exactly (the bias stays unscaled in the sum, whose shift scales
it too; `scaled_channels` already bounds |acc| * 2^(left+1) below 2^31, so the LSL cannot
overflow). The channel kinds come from pointwise_dsp's `scalable`, whose bound on the int16
weight halves this variant does not need: a channel it refuses only takes the exact stage. Per
channel the stream holds q, k and one word of right | (left+1) << 8 | channel << 16: the
register-shifted ASR and LSL read only the low byte of their shift register.

Weight zero point (uint8 models): the stored weights are the raw int8 ones and the per-tensor
offset is folded at run time, acc = bias + sum(w x) + offset * sum(x): the input copy sums each
pixel's inputs (SMLAD of its halves by (1, 1)) and every block starts its sums at bias plus
offset times that sum (`PointwiseSpec8.offset`). w + offset (up to 383) would not fit int8.

Stream per block of 2 channels: the 2 biases (folded, unscaled; the 4 pixels start from them),
the weights (per group, the 2 channels' words), then per channel q, k and the packed word. A
kind's last block repeats its last channel to fill 2.

Order (overlap): quad k reads input pixels 4k..4k+3 into the scratch, then writes output pixels
4k..4k+3: units of four pixels that read all their input first, lag 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from .. import raster_limit
from ..conv2d import geometry, lowered_params
from . import pointwise_dsp
from .common import KernelSource, effective_weights, spec_name
from .pointwise_dsp import CHANNEL_AXIS, GROUP, fills
from .requant import ScaledStage, scaled_stage

OP = "conv2d"
NAME = "pointwise_dsp8"
SCRATCH = True
PIXELS = 4  # pixels per unit
BLOCK = 2  # output channels per block
ROW = 3  # stream words per output channel after a block's weights: q, k, right | (left+1) << 8 | channel << 16
UNROLL = 2  # groups of 4 input channels per assembly loop iteration


@dataclass(frozen=True)
class PointwiseSpec8:
    fn: str
    unroll: int
    exact: bool  # some channels need the portable output stage
    clamps: bool  # the activation narrows the int8 range
    ties: bool  # negative ties need the sign correction
    offset: bool  # a per-tensor weight zero point, folded through each pixel's input sum
    ring: bool = False  # outputs go to a depthwise ring as int16 (pointwise_ring_dsp), not to NHWC int8

    @property
    def params(self) -> str:
        kind = "_exact" if self.exact else "_clamp" if self.clamps else ""
        return f"mcugen_pw_dsp8{kind}{'_offset' if self.offset else ''}{'_ring' if self.ring else ''}_params"


@dataclass(frozen=True, eq=False)
class Pairs:
    """pointwise_dsp's scaled and exact channels in blocks of 2 (a kind's last block repeats its last channel)."""

    scaled: np.ndarray  # (blocks, BLOCK)
    exact: np.ndarray  # (blocks, BLOCK)
    stage: ScaledStage  # of scaled.ravel()
    bias: np.ndarray  # folded, per channel


def _pairs(blocks: np.ndarray) -> np.ndarray:
    kept = np.array(list(dict.fromkeys(blocks.ravel().tolist())), np.int64)  # without pointwise_dsp's fill to 4
    pad = -kept.size % BLOCK
    return np.append(kept, np.repeat(kept[-1:], pad)).reshape(-1, BLOCK)


def pairs(node: Node, graph: Graph) -> Pairs:
    ch = pointwise_dsp.channels(node, graph)
    scaled = _pairs(ch.scaled)
    return Pairs(scaled, _pairs(ch.exact), scaled_stage(lowered_params(node).stage, ch.bias, scaled.ravel()), ch.bias)


def applies(node: Node, graph: Graph, target: Target) -> bool:
    return (graph.meta.get("optimize") == "size" and pointwise_dsp.applies(node, graph, target)
            and geometry(node, graph).out_c < 1 << 15)  # the channel in the packed word's high half


def _weight_offset(node: Node) -> int:
    return int(lowered_params(node).stage.weight_offset)


def spec(node: Node, graph: Graph, ring: bool = False) -> PointwiseSpec8:
    s = pointwise_dsp.spec(node, graph, "size")
    offset = _weight_offset(node) != 0
    values = (UNROLL, int(s.exact), int(s.clamps), int(s.ties), int(offset), *(("r",) if ring else ()))
    return PointwiseSpec8(spec_name("mcugen_pw_dsp8", values), UNROLL, s.exact, s.clamps, s.ties, offset, ring)


def c_kernel(node: Node, graph: Graph, optimize: str, ring: bool = False) -> KernelSource:
    s = spec(node, graph, ring)
    return KernelSource(s.fn, "kernels/arm/pointwise_dsp8.c.j2", s, ("mcugen_dsp.h",), s.params)


def _block_words(in_c: int) -> int:
    return BLOCK + in_c // GROUP * BLOCK + ROW * BLOCK


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    p, block = pairs(node, graph), _block_words(geometry(node, graph).in_c)
    fields = pointwise_dsp.block_params(node, graph, block * len(p.scaled), block * len(p.exact))
    if _weight_offset(node):
        fields["weight_offset"] = _weight_offset(node)
    return fields


def packed_weights(weights: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """(C_out, C_in) int8 weights -> int32 words in the kernel's read order: per block, per group of
    4 input channels, the block's channels' words (input channels 4g..4g+3 as bytes, low first).
    Shape (blocks, C_in / 4 * BLOCK)."""
    in_c = weights.shape[1]
    w = weights[blocks.ravel()].astype(np.int8).reshape(len(blocks), BLOCK, in_c // GROUP, GROUP)
    return np.ascontiguousarray(w.transpose(0, 2, 1, 3)).view("<i4").reshape(len(blocks), -1).astype(np.int32)


def stored_weights(node: Node, graph: Graph) -> np.ndarray:
    """(C_out, C_in) the int8 weights as stored: without the per-tensor offset the kernel folds."""
    w = effective_weights(node, graph, CHANNEL_AXIS) - _weight_offset(node)
    assert w.min(initial=0) >= -128 and w.max(initial=0) <= 127
    return w


def _stream(blocks: np.ndarray, bias: np.ndarray, weights: np.ndarray, rows: list[np.ndarray]) -> np.ndarray:
    per_channel = np.stack([r.reshape(-1, BLOCK) for r in rows], axis=2).reshape(len(blocks), -1)
    return np.concatenate([bias.reshape(-1, BLOCK), weights, per_channel], axis=1).ravel()


def stream_words(node: Node, graph: Graph, channel_bytes: int = 1) -> np.ndarray:
    """The scaled blocks' stream, then the exact blocks' (q, the shift in the k word, the channel alone).
    A channel's output goes `channel_bytes` times its index past the pixel's (1: NHWC; a ring's plane)."""
    p, stage = pairs(node, graph), lowered_params(node).stage
    assert geometry(node, graph).out_c * channel_bytes < 1 << 15  # the offset in the word's high half
    w = stored_weights(node, graph)
    parts = []
    if p.scaled.size:
        s, c = p.stage, p.scaled.ravel()
        lsl = np.log2(s.scale).astype(np.int64)
        packed = s.right.astype(np.int64) | lsl << 8 | c * channel_bytes << 16
        parts.append(_stream(p.scaled, p.bias[c], packed_weights(w, p.scaled), [s.multiplier, s.k, packed]))
    if p.exact.size:
        e = p.exact.ravel()
        parts.append(_stream(p.exact, p.bias[e], packed_weights(w, p.exact),
                             [stage.multiplier[e], stage.shift[e], e * channel_bytes << 16]))
    return np.concatenate(parts).astype(np.int32) if parts else np.zeros(1, np.int32)


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return [("weights", stream_words(node, graph)), ("constants", fills(node, graph))]


def scratch_bytes(node: Node, graph: Graph) -> int:
    return PIXELS * geometry(node, graph).in_c * 2  # four pixels' inputs as int16


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    g = geometry(node, graph)
    pixels = g.out_h * g.out_w
    first = np.arange(0, pixels, PIXELS, dtype=np.int64) * g.in_c
    return (raster_limit(first, PIXELS * g.out_c, pixels * g.in_c, lag=1),)
