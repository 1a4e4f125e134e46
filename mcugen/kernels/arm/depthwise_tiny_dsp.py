"""depthwise_conv2d 3x3, stride 1 or 2, depth multiplier 1, on the Arm DSP extension, for
layers of at most MAX_OUTPUTS output pixels (the last layers of a MobileNet: 3x3, 4x4).

depthwise_dsp's 2 x 2 (stride 1) and 1 x 3 (stride 2) blocks compute phantom rows and
columns there, its int16 ring copy costs as much as the arithmetic, and at 3x3 with padding
1 40% of the taps read padding. Here every size is a C constant (one function per layer):
per channel the body is unrolled over the output pixels and lists only the taps inside the
input (`program`), reading the int8 input directly:

- a horizontal pair of taps (columns ix, ix + 1 of a row) is one word packed (PKHBT) from two
  byte loads (lo + (hi << 16) would borrow from hi when lo < 0);
- a window row of three columns takes SMLAD on a pair and SMLAxy on a half of a neighbouring
  pair (the next output's, stride 2) or on a lone value; two columns SMLAD; one SMLAxy;
- per output row, kernel row by kernel row: a row's accumulators, that kernel row's two
  weight words and its input words are live at once; each word is built once per channel
  (stride 2 keeps the shared input row's words from one output row to the next). An empty
  asm with a memory clobber between kernel rows stops GCC 12 from loading every weight word
  at the channel's start and spilling them (VWW's 6x6 -> 3x3 layer: 197 instructions a
  channel without, 153 with); q, k and right stay in registers for the channel.

VWW on M7: the 6x6x128 -> 3x3 stride-2 layer 40,722 -> 19,615 instructions (0.25 -> 0.53
MAC/instr), the 3x3x256 stride-1 layer 83,229 -> 29,472 (0.25 -> 0.70).

Padding taps are skipped, so a tap's input carries input_offset itself (an ADD per loaded
value), or, `folded`, the bias does: one bias per padding pattern (which window rows and
columns lie inside), bias + input_offset * sum(inside weights), and raw values. Folding costs
a table word per extra pattern and channel and saves an instruction per value: it is chosen
when a channel's values outnumber FOLD_VALUES_PER_BIAS times its extra biases (VWW's 6x6 -> 3x3
layer: 4 patterns, 36 values, 1.5 KB more flash; its 3x3 -> 3x3 layer: 9 patterns for 9 values
would cost 8 KB, and keeps the offset).

Weights, output stage and channel classes are depthwise_dsp's (`channel_table`, the weight
words pairing a kernel row's taps, `row_pairs`): requant.py's scaled stage with weights and biases pre-multiplied by
2^(left+1), constant channels on zero weights, exact ones through mcugen_requantize.

Order: channel by channel, each writing all its output pixels, so the output may not overlap
the input (no `overlap_limits` beyond (None,)); no scratch.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from ..conv2d import ConvGeometry, geometry, lowered_params
from ..weights import constants
from .common import KernelSource, effective_weights, spec_name
from .depthwise_dsp import CHANNEL_AXIS, channel_table, classes, packed_weights
from .requant import needs_ties

OP = "depthwise_conv2d"
NAME = "depthwise_tiny_dsp"
SCRATCH = False
# Output pixels: up to here (1x16 to 4x4, stride 1 or 2, C 8 to 256) every layer measured on M7 ran in
# 13-65% fewer instructions than depthwise_dsp but `_tiles_exactly`'s; past it the unrolled body grows
MAX_OUTPUTS = 16
FOLD_VALUES_PER_BIAS = 2


@dataclass(frozen=True)
class Tap:
    acc: int  # the output of the row it adds to
    op: str  # the mcugen_ intrinsic: smlad, or smla<x><y> with the halves of source and weight word
    source: str  # the C name of the input word
    weight: str  # w01 or w12: (w[ky][0], w[ky][1]) or (w[ky][1], w[ky][2])


@dataclass(frozen=True)
class Word:
    name: str
    lo: int  # input byte offset of the low half (from the channel's first byte)
    hi: int | None  # of the high half; None for a lone value
    scope: str = "segment"  # where its C variable lives: the narrowest of segment, row, channel that holds its uses


@dataclass(frozen=True)
class Segment:
    """A kernel row ky's taps over a row of outputs, between compiler barriers."""

    ky: int
    words: tuple[Word, ...]  # the input words first used here
    taps: tuple[Tap, ...]

    @property
    def weights(self) -> tuple[str, ...]:
        """The weight words its taps read, w01 before w12."""
        return tuple(sorted({t.weight for t in self.taps}))


@dataclass(frozen=True)
class Row:
    offsets: tuple[int, ...]  # per output of the row: its byte offset from the channel's first byte
    biases: tuple[int, ...]  # and its bias word's index in the table row
    segments: tuple[Segment, ...]

    @property
    def words(self) -> tuple[str, ...]:
        """The C names of the words that live in this row's scope."""
        return tuple(w.name for seg in self.segments for w in seg.words if w.scope == "row")


@dataclass(frozen=True)
class TinySpec:
    fn: str
    channels: int
    row: int  # table words per channel
    offset: int  # input_offset, added to every word (0 when folded)
    folded: bool
    exact: bool
    clamps: bool
    ties: bool
    act_min: int
    act_max: int
    output_offset: int
    rows: tuple[Row, ...]

    @property
    def words(self) -> tuple[str, ...]:
        """The C names of the words that live in the channel's scope."""
        return tuple(w.name for r in self.rows for seg in r.segments for w in seg.words if w.scope == "channel")


def applies(node: Node, graph: Graph, target: Target) -> bool:
    if node.op != OP or not target.has_dsp or graph.meta.get("optimize") == "size":
        return False  # size mode: one shared depthwise_dsp function, not a function per layer
    g = geometry(node, graph)
    return ((g.kernel_h, g.kernel_w) == (3, 3) and g.stride_h == g.stride_w and g.stride_h in (1, 2)
            and g.in_c == g.out_c and g.out_h * g.out_w <= MAX_OUTPUTS and not _tiles_exactly(g))


def _tiles_exactly(g: ConvGeometry) -> bool:
    """Stride 1 without padding on an even output: depthwise_dsp's 2 x 2 blocks have no phantom
    and no padding tap there, and win (6x6x256 -> 4x4 on M7: 80,754 instructions against 84,264)."""
    bottom = (g.out_h - 1) * g.stride_h + 3 - g.in_h - g.pad_top
    right = (g.out_w - 1) * g.stride_w + 3 - g.in_w - g.pad_left
    return (g.stride_h == 1 and g.pad_top == g.pad_left == bottom == right == 0
            and g.out_h % 2 == 0 and g.out_w % 2 == 0)


def _inside(start: int, size: int) -> tuple[int, ...]:
    """The kernel offsets (0..2) of a window starting at `start` that fall inside 0..size-1."""
    return tuple(k for k in range(3) if 0 <= start + k < size)


def patterns(g: ConvGeometry) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The distinct (inside rows, inside columns) of the windows, in raster order of first use."""
    rows = [_inside(oy * g.stride_h - g.pad_top, g.in_h) for oy in range(g.out_h)]
    cols = [_inside(ox * g.stride_w - g.pad_left, g.in_w) for ox in range(g.out_w)]
    return list(dict.fromkeys((r, c) for r in rows for c in cols))


def _pairs(g: ConvGeometry) -> set[tuple[int, int]]:
    """(iy, ix) of every horizontal pair word (columns ix, ix + 1 of row iy) the windows multiply by SMLAD."""
    pairs = set()
    for oy in range(g.out_h):
        for ky in _inside(oy * g.stride_h - g.pad_top, g.in_h):
            for ox in range(g.out_w):
                x0 = ox * g.stride_w - g.pad_left
                cols = _inside(x0, g.in_w)
                if len(cols) >= 2:
                    pairs.add((oy * g.stride_h - g.pad_top + ky, x0 + cols[0]))
    return pairs


def _values_per_channel(g: ConvGeometry) -> int:
    """The input values a channel loads (each adds the offset when not folded)."""
    return len({v for r in program(g, 1)[0] for seg in r.segments for w in seg.words for v in (w.lo, w.hi)
                if v is not None})


def folded(g: ConvGeometry) -> bool:
    """Whether the padding patterns get their own biases (module docstring)."""
    return _values_per_channel(g) > FOLD_VALUES_PER_BIAS * (len(patterns(g)) - 1)


def program(g: ConvGeometry, biases: int) -> tuple[tuple[Row, ...], int]:
    """Per output row, per kernel row ky inside the input: the input words first used there and
    the taps of the row's outputs; and the table row's length. The table row is `biases` bias
    words (one, or one per pattern), then (w0, w1) and (w1, w2) of kernel row ky at biases + 2 ky,
    biases + 2 ky + 1 (`row_pairs`), then q, k, right."""
    c = g.in_c
    pairs = _pairs(g)
    order = patterns(g)
    defined: set[str] = set()

    def word(iy: int, ix: int, pair: bool) -> Word:
        hi = (iy * g.in_w + ix + 1) * c if pair else None
        return Word(f"{'h' if pair else 'v'}{iy}_{ix}", (iy * g.in_w + ix) * c, hi)

    def single(iy: int, ix: int) -> tuple[str, Word]:
        """The word holding input (iy, ix) and its half: a pair's when the windows build one, else a lone value."""
        if (iy, ix) in pairs:
            return "b", word(iy, ix, True)
        if (iy, ix - 1) in pairs:
            return "t", word(iy, ix - 1, True)
        return "b", word(iy, ix, False)

    rows = []
    for oy in range(g.out_h):
        y0 = oy * g.stride_h - g.pad_top
        starts = [ox * g.stride_w - g.pad_left for ox in range(g.out_w)]
        segments = []
        for ky in _inside(y0, g.in_h):
            iy = y0 + ky
            words, taps = [], []
            for ox, x0 in enumerate(starts):
                cols = _inside(x0, g.in_w)
                uses = []
                if len(cols) >= 2:
                    uses.append(("smlad", word(iy, x0 + cols[0], True), "w01" if cols[0] == 0 else "w12"))
                if len(cols) != 2:
                    kx = cols[-1]
                    half, w = single(iy, x0 + kx)
                    # w[ky][kx]: kx 0 the low half of (w0, w1), kx 1 its high half, kx 2 the high half of (w1, w2)
                    uses.append((f"smla{half}{'b' if kx == 0 else 't'}", w, "w01" if kx < 2 else "w12"))
                for op, w, weight in uses:
                    if w.name not in defined:
                        defined.add(w.name)
                        words.append(w)
                    taps.append(Tap(ox, op, w.name, weight))
            segments.append(Segment(ky, tuple(words), tuple(taps)))
        ky_in = _inside(y0, g.in_h)
        bias = [order.index((ky_in, _inside(x0, g.in_w))) if biases > 1 else 0 for x0 in starts]
        rows.append(Row(tuple((oy * g.out_w + ox) * c for ox in range(g.out_w)), tuple(bias), tuple(segments)))
    return _scoped(rows), biases + 9


def _scoped(rows: list[Row]) -> tuple[Row, ...]:
    """The rows with each word's `scope`, from where its taps are."""
    uses: dict[str, set[tuple[int, int]]] = {}
    for i, r in enumerate(rows):
        for j, seg in enumerate(r.segments):
            for t in seg.taps:
                uses.setdefault(t.source, set()).add((i, j))

    def scope(name: str) -> str:
        places = uses[name]
        return "segment" if len(places) == 1 else "row" if len({i for i, _ in places}) == 1 else "channel"

    return tuple(replace(r, segments=tuple(replace(seg, words=tuple(replace(w, scope=scope(w.name)) for w in seg.words))
                                           for seg in r.segments)) for r in rows)


def row_pairs(weights: np.ndarray) -> np.ndarray:
    """(9, C) (tap = 3 * ky + kx, channel) -> (C, 6) words: per kernel row ky, (w[ky][0], w[ky][1])
    and (w[ky][1], w[ky][2]), low half first (depthwise_dsp's column pairs of the transposed kernel)."""
    return packed_weights(weights.reshape(3, 3, -1).transpose(1, 0, 2).reshape(9, -1), 1)


def spec(node: Node, graph: Graph) -> TinySpec:
    g, stage = geometry(node, graph), lowered_params(node).stage
    constant, _, ok = classes(node, graph)
    exact = bool((~ok & ~constant).any())
    clamps, ties = stage.act_min > -128 or stage.act_max < 127, needs_ties(stage)
    fold = folded(g)
    rows, row = program(g, len(patterns(g)) if fold else 1)
    offset = 0 if fold else stage.input_offset
    values = (g.stride_h, g.in_h, g.in_w, g.pad_top, g.pad_left, g.out_h, g.out_w, g.in_c, int(fold), offset,
              int(exact), int(ties), stage.act_min, stage.act_max, *((stage.output_offset,) if exact else ()))
    return TinySpec(spec_name("mcugen_dw_tiny", values), g.in_c, row, offset, fold, exact, clamps, ties,
                    stage.act_min, stage.act_max, stage.output_offset, rows)


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    s = spec(node, graph)
    return KernelSource(s.fn, "kernels/arm/depthwise_tiny_dsp.c.j2", s, ("mcugen_dsp.h",))


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    return {}


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    """One table of `program`'s rows: the biases (the raw bias, or one folded per pattern),
    depthwise_dsp's stride-1 weight words, q, k, right."""
    g, stage = geometry(node, graph), lowered_params(node).stage
    _, bias = constants(node, graph)
    raw = bias.data.astype(np.int64)
    if not folded(g):
        return [("table", channel_table(node, graph, raw[:, None], row_pairs).ravel())]
    w = effective_weights(node, graph, CHANNEL_AXIS).reshape(-1, 3, 3)  # (channel, ky, kx)
    columns = [raw + stage.input_offset * w[:, list(rows)][:, :, list(cols)].sum(axis=(1, 2))
               for rows, cols in patterns(g)]
    return [("table", channel_table(node, graph, np.stack(columns, axis=1), row_pairs).ravel())]


def scratch_bytes(node: Node, graph: Graph) -> int:
    return 0


def overlap_limits(node: Node, graph: Graph) -> tuple[int | None, ...]:
    """Channel by channel over every output pixel: no overlap is safe."""
    return (None,)
