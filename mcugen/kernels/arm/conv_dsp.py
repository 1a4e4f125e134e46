"""conv2d with a k x k kernel (k > 1) and few input channels (MobileNets' first layer) on
the Arm DSP extension (Cortex-M4/M7/M33/M55).

Per pair of output pixels, im2col into the scratch: two int16 rows of the window's
KH*KW*C_in raw input values (padding taps hold the input zero point, so folding
input_offset * sum(w) into the bias stays exact; common.folded_bias), padded to an even
length with a zero. Weights are repacked at compile time as int16 pairs per channel
pair, so each word of the rows meets two weight words in four SMLAD (2 pixels x 2
channels). The output stage is requant.py's. All sizes are C constants.

No overlap is declared: the rows of a pair read a window anywhere above the pair.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from ..common import io_qparams
from ..conv2d import (  # noqa: F401 - the variant keeps the op's semantics: re-exported for kernel_of
    ConvGeometry,
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
NAME = "conv_dsp"
SCRATCH = True
CHANNEL_AXIS = 0
MAX_IN_C = 4
UNROLL_WORDS = 32  # speed: fully unroll rows up to this many words


@dataclass(frozen=True)
class ConvSpec:
    fn: str
    g: ConvGeometry
    pad_value: int  # the input zero point: a padding tap contributes nothing after folding
    row: int  # KH * KW * C_in
    words: int  # int16 pairs per row
    unrolled: bool
    fast_pairs: int
    slow_pairs: int
    stage: FastStage
    output_offset: int


def _split(node: Node, graph: Graph) -> ChannelSplit:
    return split_channels(node, graph, lowered_params(node).stage, CHANNEL_AXIS)


def applies(node: Node, graph: Graph, target: Target) -> bool:
    if node.op != OP or not target.has_dsp or lowered_params(node).stage.weight_offset != 0:
        return False
    g = geometry(node, graph)
    return g.kernel_h * g.kernel_w > 1 and g.in_c <= MAX_IN_C


def packed_weights(weights: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """(C_out, KH*KW*C_in) int8 -> per channel pair, per word j of the row, each channel's
    int16 pair (w[2j], w[2j+1]) as one int32 word (a zero pads an odd row)."""
    row = weights.shape[1]
    w = np.zeros((weights.shape[0], row + row % 2), np.int16)
    w[:, :row] = weights
    words = w.view("<i4").astype(np.int32)  # (C_out, words)
    return np.ascontiguousarray(words[pairs.ravel()].reshape(len(pairs), 2, -1).transpose(0, 2, 1)).ravel()


def spec(node: Node, graph: Graph, optimize: str) -> ConvSpec:
    g, split = geometry(node, graph), _split(node, graph)
    fs = split.stage
    row = g.kernel_h * g.kernel_w * g.in_c
    words = (row + 1) // 2
    unrolled = optimize == "speed" and words <= UNROLL_WORDS
    pad = io_qparams(node, graph)[0].scalar_zero_point
    values = (*(getattr(g, f) for f in g.__dataclass_fields__), pad, int(unrolled), len(split.fast),
              len(split.slow), fs.uniform_left, int(fs.all_right), fs.act_min, fs.act_max)
    return ConvSpec(spec_name("mcugen_conv_dsp", values), g, pad, row, words, unrolled, len(split.fast),
                    len(split.slow), fs, lowered_params(node).stage.output_offset)


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    s = spec(node, graph, optimize)
    return KernelSource(s.fn, "kernels/arm/conv_dsp.c.j2", s, ("mcugen_dsp.h",))


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    return {}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    return paired_constants(node, graph, _split(node, graph), packed_weights)


def scratch_bytes(node: Node, graph: Graph) -> int:
    g = geometry(node, graph)
    row = g.kernel_h * g.kernel_w * g.in_c
    return 2 * 2 * (row + row % 2)  # two int16 rows
