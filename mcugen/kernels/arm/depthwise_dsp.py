"""depthwise_conv2d 3x3, stride 1 or 2, depth multiplier 1, on the Arm DSP extension.

One shared C function per structure (stride, whether exact channels / clamps / negative ties
exist): every size is a field of the params struct, so all of VWW's layers of one stride
run the same code. SMLAD needs two taps of one channel in a word, which NHWC never gives,
so the input rows a band needs are first copied once into int16 channel-planar rows (the
scratch, a ring), zero-point padding around (the bias folds input_offset * sum(w), so
padding must read the zero point). Per 2 pixels x 4 channels the copy costs 2 LDR, 2 PKH,
4 SXTB16 and 2 STRD halves.

- stride 1: ring slot j holds input rows (2j - pad_top, 2j - pad_top + 1) as vertical pairs,
  one word (r_a[x], r_b[x]) per channel and column. Band b (output rows 2b, 2b + 1) reads
  slots b and b + 1, P = (r0, r1), Q = (r2, r3) per column: the upper row takes
  SMLAD(P, (w0, w1)) + SMLABT(Q, (w1, w2)), the lower SMLATB(P, (w0, w1)) + SMLAD(Q, (w1, w2)):
  6 MAC instructions per 9 MACs, 2 x 2 outputs per block (54 instructions with the stage).
- stride 2: ring slot j % 3 holds input row j - pad_top as plain int16, read as horizontal
  pair words H[x] = (x[2x], x[2x + 1]): output x of kernel row ky takes SMLAD(H[x],
  (w_ky0, w_ky1)) + SMLABB(H[x + 1], w_ky2); 1 x 3 outputs per block (47 instructions).
The blocks of a band's channels run in assembly (`_rows`; GCC 12 spilled the weights and
pointers of the C loop, ~100 instructions a block), with exact C twins on the host; layers
whose stage needs ties or clamps use the C loop on the core too, and exact channels go
through it in runs between the assembly's runs of scaled ones (`_runs`).

Output stage: requant.py's scaled stage (SMMLAR, ASR, SSAT; weights and bias pre-multiplied
by 2^(left+1)). A channel whose reachable accumulators all give one output (a tiny scale:
right shifts past the scaled stage's range) runs the same stage on zero weights and q, its k
giving the value. Channels left keep unscaled weights and the portable mcugen_requantize
(their table row has right = -1).

Order: channel groups of `group` channels, within a group bands of output rows top to
bottom (stride 1: a band is 2 output rows, stride 2: 1), each band copying the input rows it
is first to need, then writing its outputs from the ring only. With one group (`in_place`:
when a ring of all channels costs less arena than a separate output would), a band's writes
follow every read of the input rows below the next band's copy, so the output may overlap the
input (`overlap_limits`: units = bands, lag 1); with several groups a later group re-reads
every input row and nothing overlaps.

`--optimize size`, stride 2 (`recopies`): bands outermost, channel groups inside, each group
copying all three rows its band reads into a one-group ring (the shared row is copied twice,
~1.5x the copying), so the ring stays small and the output still overlaps the input: a band
writes group by group while later groups still read its rows (lag 0). Arena on M7: VWW
41,680 -> 38,464 B (its peak is the first strided layer), MobileNetV2 0.5 216,240 -> 199,824,
for ~25% more time on those layers (VWW 6.10 -> 6.19 M instructions). Those layers, fed by
a pointwise one, now run as depthwise_fed_dsp (no copy, no intermediate: 25,728 B on VWW);
re-copying serves strided layers whose input comes from anything else.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from .. import NO_READ, raster_limit
from ..conv2d import ConvGeometry, geometry, lowered_params
from .common import KernelSource, acc_range, effective_weights, folded_bias, scalable, spec_name, wrap_int32
from .requant import constant_channels, needs_ties, scaled_stage

OP = "depthwise_conv2d"
NAME = "depthwise_dsp"
SCRATCH = True
CHANNEL_AXIS = 3
GROUP = 4  # channels per input word
TAPS = 9
ROW = 10  # table words per channel: (w0, w1) and (w1, w2) per kernel column, bias, q, k, right
PLANES_BYTES = 2048  # the ring of a channel group stays within this (when 4 channels fit): arena, not speed


@dataclass(frozen=True)
class DepthwiseSpec:
    fn: str
    stride: int
    exact: bool  # some channels need the portable output stage
    clamps: bool  # the activation narrows the int8 range
    ties: bool  # negative ties need the sign correction
    recopy: bool  # bands outermost, each group re-copying its band's rows (module docstring)
    feed_fn: str = ""  # depthwise_fed_dsp: the pointwise function writing the ring rows, instead of the copy
    feed_params: str = ""  # its params struct type
    shapes: tuple[tuple[int, int, int], ...] = ()  # fed, stride 2: per shape its full blocks get as immediates

    @property
    def fed(self) -> bool:
        return bool(self.feed_fn)

    @property
    def params(self) -> str:
        kind = '_exact' if self.exact else '_clamp' if self.clamps else ''
        return f"mcugen_dw_dsp{kind}{'_fed' if self.fed else ''}{'_shaped' if self.shapes else ''}_params"


def applies(node: Node, graph: Graph, target: Target) -> bool:
    if node.op != OP or not target.has_dsp:
        return False
    g = geometry(node, graph)
    return ((g.kernel_h, g.kernel_w) == (3, 3) and g.stride_h == g.stride_w and g.stride_h in (1, 2)
            and g.in_c == g.out_c and g.in_c % GROUP == 0)


def plane_width(g: ConvGeometry) -> int:
    """Words per channel row of a ring slot, covering the padded input and the columns the
    output blocks read (a last partial block reads phantom columns further):
    stride 1: one word per column (a vertical pair), 2-column blocks read 4 columns;
    stride 2: one word per two columns (a horizontal pair), 3-output blocks read 4 words."""
    if g.stride_w == 1:
        return max(g.pad_left + g.in_w, 2 * -(-g.out_w // 2) + 2)
    return max(-(-(g.pad_left + g.in_w) // 2), 3 * -(-g.out_w // 3) + 1)


def slots(g: ConvGeometry) -> int:
    """Ring slots: stride 1 keeps two pair planes, stride 2 three rows."""
    return 2 if g.stride_w == 1 else 3


def _capped_group(g: ConvGeometry) -> int:
    """The most channels (a multiple of 4 dividing C) whose ring fits PLANES_BYTES."""
    ring = slots(g) * plane_width(g) * 4
    fits = [k for k in range(GROUP, g.in_c + 1, GROUP) if g.in_c % k == 0 and k * ring <= PLANES_BYTES]
    return max(fits, default=GROUP)


def in_place(g: ConvGeometry) -> bool:
    """Whether to run one group of all channels, whose output may overlap the input: when its
    ring costs no more arena than a separate output plus the capped ring would."""
    channel_ring = slots(g) * plane_width(g) * 4
    return g.in_c * channel_ring <= g.out_h * g.out_w * g.out_c + _capped_group(g) * channel_ring


def group_size(g: ConvGeometry) -> int:
    """Channels per group: all of them when `in_place`, else the capped group."""
    return g.in_c if in_place(g) else _capped_group(g)


def recopies(node: Node, graph: Graph) -> bool:
    """Whether the layer runs bands outermost with a capped ring (module docstring)."""
    return graph.meta.get("optimize") == "size" and geometry(node, graph).stride_h == 2


def _group(node: Node, graph: Graph) -> int:
    g = geometry(node, graph)
    return _capped_group(g) if recopies(node, graph) else group_size(g)


def classes(node: Node, graph: Graph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per channel: whether its output is one value over its reachable accumulators (then
    that value), and whether the scaled output stage is exact for it (when not constant)."""
    stage = lowered_params(node).stage
    constant, values = constant_channels(stage, *acc_range(node, graph, CHANNEL_AXIS))
    return constant, values, scalable(node, graph, CHANNEL_AXIS) & ~constant


def spec(node: Node, graph: Graph) -> DepthwiseSpec:
    g, stage = geometry(node, graph), lowered_params(node).stage
    constant, _, ok = classes(node, graph)
    exact = bool((~ok & ~constant).any())
    clamps, ties = stage.act_min > -128 or stage.act_max < 127, needs_ties(stage)
    recopy = recopies(node, graph)
    values = (g.stride_h, int(exact), int(clamps), int(ties), *(("r",) if recopy else ()))
    return DepthwiseSpec(spec_name("mcugen_dw_dsp", values), g.stride_h, exact, clamps, ties, recopy)


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    s = spec(node, graph)
    return KernelSource(s.fn, "kernels/arm/depthwise_dsp.c.j2", s, ("mcugen_dsp.h",), s.params)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    g, stage, s = geometry(node, graph), lowered_params(node).stage, spec(node, graph)
    fields = {"channels": g.in_c, "group": _group(node, graph), "in_h": g.in_h, "in_w": g.in_w, "out_h": g.out_h,
              "out_w": g.out_w, "pad_top": g.pad_top, "pad_left": g.pad_left, "plane_w": plane_width(g),
              "zero_point": -stage.input_offset}
    if s.exact or s.clamps:
        fields.update(act_min=stage.act_min, act_max=stage.act_max)
    if s.exact:
        fields.update(output_offset=stage.output_offset)
    return fields


def packed_weights(weights: np.ndarray, stride: int) -> np.ndarray:
    """(9, C) int16 (tap = 3 * ky + kx, channel) -> (C, 6) int32 words, low half first:
    stride 1 (vertical pairs): per kernel column kx, (w[0][kx], w[1][kx]) and (w[1][kx], w[2][kx]);
    stride 2 (horizontal pairs): per kernel row ky, (w[ky][0], w[ky][1]) and (w[ky][2], 0)."""
    w = weights.astype(np.int64).reshape(3, 3, -1)  # (ky, kx, channel)
    assert np.abs(w).max(initial=0) < 1 << 15

    def word(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return (lo & 0xFFFF) | ((hi & 0xFFFF) << 16)

    if stride == 1:
        words = [v for kx in range(3) for v in (word(w[0, kx], w[1, kx]), word(w[1, kx], w[2, kx]))]
    else:
        words = [v for ky in range(3) for v in (word(w[ky, 0], w[ky, 1]), w[ky, 2] & 0xFFFF)]
    return np.stack(words, axis=1).astype(np.uint32).view(np.int32)


def channel_table(node: Node, graph: Graph, biases: np.ndarray,
                  pack: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(C, n + 9) int32 rows: the n `biases` columns (int64, wrapped to int32 here), the 6 words
    `pack` makes of the (9, C) weights (`packed_weights`), q, k, right. Scaled channels: weights and biases
    times 2^(left+1), right >= 0; constant ones the same stage on zero weights, biases and q
    (k = 2 * value, right = 1 give the value); exact ones unscaled, q, shift, -1."""
    stage = lowered_params(node).stage
    w = effective_weights(node, graph, CHANNEL_AXIS).T  # (taps, channel)
    constant, values, ok = classes(node, graph)
    channels = np.arange(w.shape[1])
    ss = scaled_stage(stage, np.zeros(w.shape[1], np.int64), channels[ok])
    scale = np.ones(w.shape[1], np.int64)
    scale[ok] = ss.scale
    scale[constant] = 0
    tail = np.stack([stage.multiplier, stage.shift, np.full(w.shape[1], -1)], axis=1).astype(np.int64)
    tail[ok] = np.stack([ss.multiplier, ss.k, ss.right], axis=1)
    tail[constant] = np.stack([0 * values[constant], 2 * values[constant], np.ones_like(values[constant])], axis=1)
    scaled = wrap_int32(wrap_int32(biases) * scale[:, None])
    packed = pack(w * scale).astype(np.int64)
    return np.concatenate([scaled, packed, tail], axis=1).astype(np.int32)


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    """One table: per channel ROW words, `channel_table`'s with the folded bias."""
    bias = folded_bias(node, graph, lowered_params(node).stage, CHANNEL_AXIS)
    stride = geometry(node, graph).stride_w
    return [("table", channel_table(node, graph, bias[:, None], lambda w: packed_weights(w, stride)).ravel())]


def scratch_bytes(node: Node, graph: Graph) -> int:
    """A pixel of zero-point bytes (the padding rows), then the ring of a channel group."""
    g = geometry(node, graph)
    return g.in_c + slots(g) * _group(node, graph) * plane_width(g) * 4


def band_first_reads(g: ConvGeometry, row_bytes: int | None = None) -> np.ndarray:
    """Per band: the lowest input byte its copies read (the rows it is first to need), input rows
    `row_bytes` apart (default: this layer's own NHWC input's)."""
    row_bytes = g.in_w * g.in_c if row_bytes is None else row_bytes
    bands = -(-g.out_h // 2) if g.stride_h == 1 else g.out_h
    first = np.full(bands, NO_READ, np.int64)
    for band in range(bands):
        if g.stride_h == 1:
            rows = [2 * band + 2 - g.pad_top, 2 * band + 3 - g.pad_top]
        else:
            rows = [2 * band + 1 - g.pad_top, 2 * band + 2 - g.pad_top] if band else [2 - g.pad_top]
        inside = [r for r in rows if 0 <= r < g.in_h]
        if inside:
            first[band] = min(inside) * row_bytes
    return first


def _recopy_first_reads(g: ConvGeometry) -> np.ndarray:
    """Per band (an output row) of the recopying order: the lowest input byte its three rows hold."""
    top = np.arange(g.out_h) * 2 - g.pad_top
    rows = np.maximum(top, 0)
    return np.where(rows < np.minimum(top + 3, g.in_h), rows * g.in_w * g.in_c, NO_READ)


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    """One group: units are bands (module docstring), each reading only the ring once its copies
    are done (lag 1). Recopying: bands whose groups write before later groups read (lag 0).
    Several groups otherwise: none."""
    g = geometry(node, graph)
    band_bytes = (2 if g.stride_h == 1 else 1) * g.out_w * g.out_c
    input_bytes = g.in_h * g.in_w * g.in_c
    if recopies(node, graph):
        return (raster_limit(_recopy_first_reads(g), band_bytes, input_bytes, lag=0),)
    if not in_place(g):
        return (None,)
    return (raster_limit(band_first_reads(g), band_bytes, input_bytes, lag=1),)
