"""conv2d with a k x k kernel (k > 1) and few input channels (MobileNets' first layer) on
the Arm DSP extension (Cortex-M4/M7/M33/M55).

One shared C function per structure (kernel size, input channels, unroll, output-stage
kinds and, for the uniform-shift stage, its shift); the sizes are fields of the params
struct, so first convs of that structure call the same code.

Per pair of output pixels, both windows are gathered into int16 rows in the scratch,
interleaved word by word (pixel 0's word j, pixel 1's word j): every kernel row's
KW*C_in bytes are contiguous in NHWC, so its whole words go through SXTB16 / SXTB16 ROR 8
(taps (0, 2), (1, 3) of each word) and its leftover bytes are paired into words as soon
as two wait (a lone last one meets a zero weight); Layout.program is that order, and the
weights are repacked to it at compile time. A pair in one row with both windows inside
the input reads it directly; any other window is first copied into a small buffer in the
scratch with the input zero point in the padding (so folding input_offset * sum(w) into
the bias stays exact). A per-tensor weight zero point is added into the weights.

Then per group of 4 output channels, 2 pixels x 4 channels in mcugen_mac2x4's assembly:
per row word 1 LDRD of the rows, 2 LDRD of weights and 8 SMLAD (16 MACs). Output channels
come in groups of one kind, scaled ones first, then exact ones (the portable
mcugen_requantize); an incomplete group repeats its last channel, which stores the same
byte twice. Scaled groups use the uniform-shift stage (SMMLA, SSAT with a constant ASR;
uniform_shift) when every channel allows it, else requant.py's scaled stage (SMMLAR, ASR,
SSAT); either way the weights and bias carry the stage's factor.

No overlap is declared: the rows of a pair read a window anywhere above the pair.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import Graph, Node
from ...targets import Target
from ..common import io_qparams
from ..conv2d import ConvGeometry, geometry, lowered_params
from .common import KernelSource, acc_bounds, effective_weights, folded_bias, scalable, spec_name
from .requant import ScaledStage, needs_ties, scaled_stage

OP = "conv2d"
NAME = "conv_dsp"
SCRATCH = True
CHANNEL_AXIS = 0
MAX_IN_C = 4
GROUP = 4  # output channels per block
ROW = 8 + 4 * GROUP  # table words per group: the 4 biases twice (one copy per pixel: no register moves), then per channel c, q, k, right
UNROLL_WORDS = 32  # speed: fully unroll rows up to this many words


@dataclass(frozen=True)
class Layout:
    """Where each tap of a window lands in its int16 row, as the gather program that builds
    it: per kernel row, its `full` words of 4 bytes (SXTB16 order), and its leftover bytes,
    paired into a word as soon as two wait (a lone last one meets a zero weight)."""

    kernel_h: int
    row_bytes: int  # KW * C_in, contiguous in NHWC

    @property
    def full(self) -> int:
        return self.row_bytes // 4

    def program(self) -> tuple[tuple[str, int, int], ...]:
        """("word", offset, 0): a whole word of the current kernel row (two row words);
        ("load", i, offset): leftover byte i of the current row into a register; ("pair", i, j)
        and ("single", i, -1): row words of leftovers; ("next", 0, 0): on to the next kernel row."""
        ops: list[tuple[str, int, int]] = []
        pending: list[int] = []
        count = 0
        for ky in range(self.kernel_h):
            ops += [("word", 4 * i, 0) for i in range(self.full)]
            for offset in range(4 * self.full, self.row_bytes):
                ops.append(("load", count, offset))
                pending.append(count)
                count += 1
                if len(pending) == 2:
                    ops.append(("pair", pending[0], pending[1]))
                    pending = []
            if ky + 1 < self.kernel_h:
                ops.append(("next", 0, 0))
        if pending:
            ops.append(("single", pending[0], -1))
        return tuple(ops)

    def taps(self) -> np.ndarray:
        """(words, 2): the window tap (ky * row_bytes + offset) in each int16 half, -1 for none."""
        out: list[tuple[int, int]] = []
        ky, loaded = 0, {}
        for op, a, b in self.program():
            base = ky * self.row_bytes
            if op == "word":
                out += [(base + a, base + a + 2), (base + a + 1, base + a + 3)]
            elif op == "load":
                loaded[a] = base + b
            elif op == "pair":
                out.append((loaded[a], loaded[b]))
            elif op == "single":
                out.append((loaded[a], -1))
            else:
                ky += 1
        return np.array(out, np.int64).reshape(-1, 2)

    @property
    def words(self) -> int:
        return len(self.taps())


@dataclass(frozen=True)
class ConvSpec:
    fn: str
    kernel_h: int
    kernel_w: int
    in_c: int
    layout: Layout
    unrolled: bool
    exact: bool  # some groups need the portable output stage
    clamps: bool  # the activation narrows the int8 range
    ties: bool  # negative ties need the sign correction
    shift: int | None  # the uniform-shift stage's right shift (module docstring), else None

    @property
    def params(self) -> str:
        """The params struct type: its fields are those this structure reads."""
        return f"mcugen_conv_dsp{'_exact' if self.exact else '_clamp' if self.clamps else ''}_params"

    @property
    def row(self) -> int:
        return ROW

    @property
    def scaled_row(self) -> int:
        """Table words per scaled group: the uniform-shift stage reads no right shift, so per
        channel pair c0, q0, c1, q1, k0, k1 (three LDRD for two channels)."""
        return ROW - GROUP if self.shift else ROW


@dataclass(frozen=True, eq=False)
class Channels:
    """Output channel groups by kind, in compute order."""

    scaled: np.ndarray  # (groups, GROUP)
    exact: np.ndarray  # (groups, GROUP)
    stage: ScaledStage  # of scaled.ravel()
    bias: np.ndarray  # folded, per channel
    shift: int | None  # see uniform_shift
    factor: np.ndarray  # per scaled channel, what its weights and bias are multiplied by
    k: np.ndarray  # per scaled channel, the k word its stage adds


def uniform_stage(stage: ScaledStage, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Per channel of the uniform-shift stage with right shift `shift`: the factor on the
    weights and bias (scale * s), and k' = s*k + s/2 (uniform_shift's docstring)."""
    s = np.int64(1) << (shift - stage.right.astype(np.int64))
    return stage.scale * s, s * stage.k.astype(np.int64) + s // 2


def uniform_shift(stage: ScaledStage, bound: np.ndarray, w_max: np.ndarray) -> int | None:
    """R such that every scaled channel can take the uniform-shift stage, else None.

    With s = 2^(R - right) (even: R > right), the scaled stage's
    floor((floor((a*q + 2^31) / 2^32) + k) / 2^right) equals
    floor((s*a*q + (s*k + s/2) * 2^32) / 2^(32 + R)): SMMLA of s*a with k' = s*k + s/2,
    then an ASR by the constant R that SSAT takes for free. The factor s rides on the
    weights and bias, which must still fit (int16 halves, int32 sums); no ties correction."""
    if stage.ties or not stage.right.size:
        return None
    shift = int(stage.right.max()) + 1
    factor, k = uniform_stage(stage, shift)
    fits = (bound * factor < 1 << 31) & (w_max * factor < 1 << 15) & (np.abs(k) < 1 << 30)
    return shift if bool(np.all(fits)) else None


def _groups(channels: np.ndarray) -> np.ndarray:
    if channels.size % GROUP:
        channels = np.append(channels, np.full(GROUP - channels.size % GROUP, channels[-1]))
    return channels.reshape(-1, GROUP)


def channels(node: Node, graph: Graph) -> Channels:
    stage = lowered_params(node).stage
    bound, bias = acc_bounds(node, graph, CHANNEL_AXIS), folded_bias(node, graph, stage, CHANNEL_AXIS)
    w_max = np.abs(effective_weights(node, graph, CHANNEL_AXIS)).max(axis=1)
    scaled = scalable(node, graph, CHANNEL_AXIS)
    groups = _groups(np.flatnonzero(scaled))
    ss = scaled_stage(stage, bias, groups.ravel())
    shift = uniform_shift(ss, bound[groups.ravel()], w_max[groups.ravel()])
    factor, k = (ss.scale, ss.k.astype(np.int64)) if shift is None else uniform_stage(ss, shift)
    return Channels(groups, _groups(np.flatnonzero(~scaled)), ss, bias, shift, factor, k)


def applies(node: Node, graph: Graph, target: Target) -> bool:
    if node.op != OP or not target.has_dsp:
        return False
    g = geometry(node, graph)
    return g.kernel_h * g.kernel_w > 1 and g.in_c <= MAX_IN_C


def layout(g: ConvGeometry) -> Layout:
    return Layout(g.kernel_h, g.kernel_w * g.in_c)


def packed_weights(weights: np.ndarray, groups: np.ndarray, scale: np.ndarray, lay: Layout) -> np.ndarray:
    """(C_out, KH*KW*C_in) int8 -> int16 pairs in the rows' tap order (times each channel's
    `scale`) as int32 words: per group, per row word, the group's channels in order."""
    taps = lay.taps()
    w = np.concatenate([weights.astype(np.int64), np.zeros((weights.shape[0], 1), np.int64)], axis=1)
    scaled = w[groups.ravel()][:, taps] * scale.reshape(-1, 1, 1)  # (channels, words, 2); tap -1: the zero column
    assert np.abs(scaled).max(initial=0) < 1 << 15
    per_group = scaled.astype(np.int16).reshape(len(groups), GROUP, lay.words, 2).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(per_group).ravel().view("<i4").astype(np.int32)


def spec(node: Node, graph: Graph, optimize: str) -> ConvSpec:
    g, ch, stage = geometry(node, graph), channels(node, graph), lowered_params(node).stage
    lay = layout(g)
    unrolled = optimize == "speed" and lay.words <= UNROLL_WORDS
    exact, clamps, ties = bool(ch.exact.size), stage.act_min > -128 or stage.act_max < 127, needs_ties(stage)
    values = (g.kernel_h, g.kernel_w, g.in_c, int(unrolled), int(exact), int(clamps), int(ties), ch.shift or 0)
    return ConvSpec(spec_name("mcugen_conv_dsp", values), g.kernel_h, g.kernel_w, g.in_c, lay, unrolled, exact,
                    clamps, ties, ch.shift)


def c_kernel(node: Node, graph: Graph, optimize: str) -> KernelSource:
    s = spec(node, graph, optimize)
    return KernelSource(s.fn, "kernels/arm/conv_dsp.c.j2", s, ("mcugen_dsp.h",), s.params)


def _inside(size: int, kernel: int, stride: int, pad: int, out: int) -> tuple[int, int]:
    """The first output index whose window lies inside the input along one axis, and how many
    consecutive ones do (c_params gives ox_n as the count of pairs (ox, ox + 1) both inside)."""
    lo = -(-pad // stride)
    hi = min((size - kernel + pad) // stride, out - 1)
    return lo, max(hi - lo + 1, 0)


def c_params(node: Node, graph: Graph) -> dict[str, int]:
    g, ch, stage = geometry(node, graph), channels(node, graph), lowered_params(node).stage
    s = spec(node, graph, "speed")
    oy_lo, oy_n = _inside(g.in_h, g.kernel_h, g.stride_h, g.pad_top, g.out_h)
    ox_lo, ox_n = _inside(g.in_w, g.kernel_w, g.stride_w, g.pad_left, g.out_w)
    fields = {"in_h": g.in_h, "in_w": g.in_w, "out_w": g.out_w, "pixels": g.out_h * g.out_w, "out_c": g.out_c,
              "stride_h": g.stride_h, "stride_w": g.stride_w, "pad_top": g.pad_top, "pad_left": g.pad_left,
              "pad_value": io_qparams(node, graph)[0].scalar_zero_point, "scaled_groups": len(ch.scaled),
              "oy_lo": oy_lo, "oy_n": oy_n, "ox_lo": ox_lo, "ox_n": max(ox_n - 1, 0)}
    if s.exact or s.clamps:
        fields.update(act_min=stage.act_min, act_max=stage.act_max)
    if s.exact:
        fields.update(exact_groups=len(ch.exact), output_offset=stage.output_offset)
    return fields


def _table(ch: Channels, node: Node) -> np.ndarray:
    """Per group, ROW words: its 4 biases twice, then per channel c, q, k, right (for exact groups:
    the bias unscaled and the shift in the k word); with the uniform-shift stage, scaled groups
    have ConvSpec.scaled_row words: per channel pair c0, q0, c1, q1, k0, k1."""
    stage = lowered_params(node).stage
    rows = []
    if ch.scaled.size:
        bias = ch.bias[ch.scaled.ravel()].astype(np.int64) * ch.factor
        c, q, k = (v.reshape(-1, GROUP // 2, 2) for v in (ch.scaled.ravel(), ch.stage.multiplier, ch.k))
        if ch.shift is None:
            per = np.stack([v.reshape(-1, GROUP) for v in (c, q, k, ch.stage.right)], axis=2).reshape(len(c), -1)
        else:
            per = np.concatenate([np.stack([c, q], axis=3).reshape(len(c), GROUP // 2, 4), k], axis=2).reshape(len(c), -1)
        rows.append(np.concatenate([np.tile(bias.reshape(-1, GROUP), 2), per], axis=1))
    if ch.exact.size:
        e = ch.exact
        per = [e, stage.multiplier[e], stage.shift[e], np.zeros_like(e)]
        rows.append(np.concatenate([np.tile(ch.bias[e], 2), np.stack(per, axis=2).reshape(-1, 4 * GROUP)], axis=1))
    return np.concatenate([r.astype(np.int32).ravel() for r in rows])  # the two kinds' rows may differ in length


def c_constants(node: Node, graph: Graph) -> list[tuple[str, np.ndarray]]:
    ch = channels(node, graph)
    w = effective_weights(node, graph, CHANNEL_AXIS)
    groups = np.concatenate([ch.scaled, ch.exact])
    scale = np.concatenate([ch.factor, np.ones(ch.exact.size, np.int64)])
    return [("weights", packed_weights(w, groups, scale, layout(geometry(node, graph)))), ("table", _table(ch, node))]


def scratch_bytes(node: Node, graph: Graph) -> int:
    g = geometry(node, graph)
    window = g.kernel_h * g.kernel_w * g.in_c
    return 4 * 2 * layout(g).words + 2 * window  # two pixels' int16 rows, then two border windows' bytes
