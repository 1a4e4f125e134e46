"""conv2d 1x1, stride 1, no padding, on the Arm DSP extension (Cortex-M4/M7/M33/M55).

One shared C function per structure (unroll, whether exact channels or clamps exist, whether
negative ties matter): the sizes are fields of `mcugen_pw_dsp_params`.

Per pair of output pixels, the pair's input is first widened to int16 in the scratch, word by
word interleaved (per 4-channel group: pixel 0's (x0, x2), pixel 1's (x0, x2), pixel 0's
(x1, x3), pixel 1's (x1, x3), the halves SXTB16 pairs up). Then 2 pixels x 4 output channels
per block: per word of each pixel, 1 LDRD of input, 2 LDRD of the 4 channels' weights
(repacked to the same order at compile time) and 8 SMLAD, 16 MACs in 11 instructions. On a DSP
core without clamps the scaled blocks run in assembly (`_quads`: the unrolled word loop is
entered part-way when the word count is not a multiple of the unroll), the C loop being its
twin on the host.

Everything a block reads is one stream (`stream_words`): per block of 4 channels, the 4 biases
twice (one LDM starts both pixels' sums), the weights, then per channel q, k, right and the
output channel. The channels fall in three kinds, in this order:
- scaled blocks: requant.py's scaled stage (SMMLAR, ASR, SSAT), their weights and bias
  pre-multiplied by 2^(left+1);
- exact blocks: channels the scaled stage cannot take, through the portable mcugen_requantize
  (their k word holds the shift);
- constant channels: every int8 input gives the same output (a dead ReLU channel), which is
  just stored: channel by channel when few, else as a whole output row of their values
  (memcpy, before the blocks overwrite the other channels).
A kind's last block repeats its last channel to fill 4 (the same byte is stored twice).

Order (overlap): pixel pair k reads input pixels 2k, 2k + 1 into the scratch, then writes
output pixels 2k, 2k + 1: units of two pixels that read all their input first, lag 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from .. import raster_limit
from ..conv2d import geometry, lowered_params
from .common import KernelSource, acc_range, effective_weights, folded_bias, scalable, spec_name
from .requant import ScaledStage, constant_channels, needs_ties, scaled_stage

OP = "conv2d"
NAME = "pointwise_dsp"
SCRATCH = True
CHANNEL_AXIS = 0
GROUP = 4  # input channels per SXTB16 pair
BLOCK = 4  # output channels per block
ROW = 4  # stream words per output channel after a block's weights: q, k, right, channel
# Instructions per pixel (measured on QEMU, newlib-nano's memcpy): a stored constant channel ~3,
# a memcpy of the whole output row ~2/3 per byte + 10
FILL_COST, COPY_BASE = 3, 10


@dataclass(frozen=True)
class PointwiseSpec:
    fn: str
    unroll: int  # words of input per inner loop iteration (the assembly enters it part-way)
    exact: bool  # some channels need the portable output stage
    clamps: bool  # the activation narrows the int8 range
    ties: bool  # negative ties need the sign correction
    ring: bool = False  # outputs go to a depthwise ring as int16 (pointwise_ring_dsp), not to NHWC int8

    @property
    def params(self) -> str:
        """The params struct type: its fields are those this structure reads (cppcheck flags unread ones)."""
        kind = '_exact' if self.exact else '_clamp' if self.clamps else ''
        return f"mcugen_pw_dsp{kind}{'_ring' if self.ring else ''}_params"


@dataclass(frozen=True, eq=False)
class Channels:
    """The output channels by kind, blocks in compute order (a kind's last block repeats its last channel)."""

    scaled: np.ndarray  # (blocks, BLOCK)
    exact: np.ndarray  # (blocks, BLOCK)
    constant: np.ndarray  # channel indices
    values: np.ndarray  # their outputs
    stage: ScaledStage  # of scaled.ravel()
    bias: np.ndarray  # folded, per channel


def _blocks(channels: np.ndarray) -> np.ndarray:
    pad = -channels.size % BLOCK
    return np.append(channels, np.repeat(channels[-1:], pad)).reshape(-1, BLOCK)


def channels(node: Node, graph: Graph) -> Channels:
    stage = lowered_params(node).stage
    constant, values = constant_channels(stage, *acc_range(node, graph, CHANNEL_AXIS))
    scaled = scalable(node, graph, CHANNEL_AXIS) & ~constant
    exact = ~scaled & ~constant
    bias = folded_bias(node, graph, stage, CHANNEL_AXIS)
    s_blocks = _blocks(np.flatnonzero(scaled))
    return Channels(s_blocks, _blocks(np.flatnonzero(exact)), np.flatnonzero(constant), values[constant],
                    scaled_stage(stage, bias, s_blocks.ravel()), bias)


def applies(node: Node, graph: Graph, target: Target) -> bool:
    if node.op != OP or not target.has_dsp:
        return False
    g = geometry(node, graph)
    pointwise = (g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left) == (1, 1, 1, 1, 0, 0)
    same = (g.out_h, g.out_w) == (g.in_h, g.in_w)
    return pointwise and same and g.in_c % GROUP == 0


def packed_weights(weights: np.ndarray, blocks: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(C_out, C_in) effective weights -> int16 pairs (times each channel's `scale`) as int32 words in the
    kernel's read order: per block, per word of input (per group of 4 input channels, (x0, x2)
    then (x1, x3)), the block's 4 channels' words. Shape (blocks, C_in / 2 * BLOCK)."""
    in_c = weights.shape[1]
    scaled = weights.astype(np.int64)[blocks.ravel()] * scale.reshape(-1, 1)
    assert np.abs(scaled).max(initial=0) < 1 << 15
    w = scaled.astype(np.int16).reshape(len(blocks), BLOCK, in_c // GROUP, GROUP)[..., [0, 2, 1, 3]]
    # (block, channel, group, half, pair) -> (block, group, half, channel, pair)
    w = w.reshape(len(blocks), BLOCK, in_c // GROUP, 2, 2).transpose(0, 2, 3, 1, 4)
    return np.ascontiguousarray(w).view("<i4").reshape(len(blocks), -1).astype(np.int32)


def spec(node: Node, graph: Graph, optimize: str, ring: bool = False) -> PointwiseSpec:
    unroll = 8 if optimize == "speed" else 2  # in_c is a multiple of 4: the words, of 2
    stage, ch = lowered_params(node).stage, channels(node, graph)
    exact, clamps, ties = bool(ch.exact.size), stage.act_min > -128 or stage.act_max < 127, needs_ties(stage)
    values = (unroll, int(exact), int(clamps), int(ties), *(("r",) if ring else ()))
    return PointwiseSpec(spec_name("mcugen_pw_dsp", values), unroll, exact, clamps, ties, ring)


def c_kernel(node: Node, graph: Graph, optimize: str, ring: bool = False) -> KernelSource:
    s = spec(node, graph, optimize, ring)
    return KernelSource(s.fn, "kernels/arm/pointwise_dsp.c.j2", s, ("mcugen_dsp.h",), s.params)


def copies_row(node: Node, graph: Graph) -> bool:
    """Whether the constant channels are stored as a whole row (cheaper than one by one)."""
    return FILL_COST * channels(node, graph).constant.size > 2 * geometry(node, graph).out_c // 3 + COPY_BASE


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    ch, block = channels(node, graph), _block_words(geometry(node, graph).in_c)
    return block_params(node, graph, block * len(ch.scaled) if ch.scaled.size else 0, block * len(ch.exact))


def block_params(node: Node, graph: Graph, scaled_words: int, exact_words: int) -> dict[str, int]:
    """The params fields, given the stream's scaled and exact parts in words (pointwise_dsp8 shares them)."""
    g, ch, stage = geometry(node, graph), channels(node, graph), lowered_params(node).stage
    s = spec(node, graph, "speed")
    row = copies_row(node, graph)
    fields = {"pixels": g.out_h * g.out_w, "in_c": g.in_c, "out_c": g.out_c, "scaled_words": scaled_words,
              "constants": 0 if row else len(ch.constant), "row_bytes": g.out_c if row else 0}
    if s.exact or s.clamps:
        fields.update(act_min=stage.act_min, act_max=stage.act_max)
    if s.exact:
        fields.update(exact_words=exact_words, output_offset=stage.output_offset)
    return fields


def _block_words(in_c: int) -> int:
    return 2 * BLOCK + in_c // 2 * BLOCK + ROW * BLOCK


def _stream(blocks: np.ndarray, bias: np.ndarray, weights: np.ndarray, rows: list[np.ndarray]) -> np.ndarray:
    """Per block: its biases twice, weights, then per channel the `rows` columns."""
    b = bias.reshape(-1, BLOCK)
    per_channel = np.stack([r.reshape(-1, BLOCK) for r in rows], axis=2).reshape(len(blocks), -1)
    return np.concatenate([b, b, weights, per_channel], axis=1).ravel()


def stream_words(node: Node, graph: Graph, channel_bytes: int = 1) -> np.ndarray:
    """The scaled blocks' stream, then the exact blocks' (q, shift in the k word, the bias unscaled). A
    channel's output goes `channel_bytes` times its index past the pixel's (1: NHWC; a ring's plane)."""
    ch, stage = channels(node, graph), lowered_params(node).stage
    w = effective_weights(node, graph, CHANNEL_AXIS)
    parts = []
    if ch.scaled.size:
        s = ch.stage
        parts.append(_stream(ch.scaled, s.bias, packed_weights(w, ch.scaled, s.scale),
                             [s.multiplier, s.k, s.right, ch.scaled * channel_bytes]))
    if ch.exact.size:
        e = ch.exact.ravel()
        parts.append(_stream(ch.exact, ch.bias[e], packed_weights(w, ch.exact, np.ones(e.size, np.int64)),
                             [stage.multiplier[e], stage.shift[e], np.zeros_like(e), e * channel_bytes]))
    return np.concatenate(parts).astype(np.int32) if parts else np.zeros(1, np.int32)


def fills(node: Node, graph: Graph, channel_bytes: int = 1) -> np.ndarray:
    """(channel offset, value) per constant channel, or (NHWC only) the row: their values at their
    channels as bytes in int32 words (the other channels' bytes are overwritten)."""
    ch = channels(node, graph)
    if channel_bytes == 1 and copies_row(node, graph):
        out_c = geometry(node, graph).out_c
        row = np.zeros(-(-out_c // 4) * 4, np.int8)
        row[ch.constant] = ch.values
        return row.view("<i4").astype(np.int32)
    if ch.constant.size:
        return np.stack([ch.constant * channel_bytes, ch.values], axis=1).astype(np.int32).ravel()
    return np.zeros(2, np.int32)


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return [("weights", stream_words(node, graph)), ("constants", fills(node, graph))]


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 2 * geometry(node, graph).in_c * 2  # two pixels' inputs as int16


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    g = geometry(node, graph)
    pixels = g.out_h * g.out_w
    first = np.arange(0, pixels, 2, dtype=np.int64) * g.in_c
    return (raster_limit(first, 2 * g.out_c, pixels * g.in_c, lag=1),)
