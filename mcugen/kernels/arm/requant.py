"""The output stage of the fast kernels: TFLite's double-rounding requantization, re-derived
so that a Cortex-M computes it in about six instructions per output, bit for bit.

For the portable `requantize(acc, q, shift, zp, lo, hi)` (quant/arith.py), with
left = max(shift, 0) and right = max(-shift, 0):

- srdhm(a, q) = floor((a*q + 2^30) / 2^31) (ties toward +inf, no saturation since
  q >= 0); when |a| < 2^30 this is floor((2a*q + 2^31) / 2^32), one SMMULR of 2a.
  So y = smmulr(acc << (left + 1), q), exact when |acc| * 2^(left+1) < 2^31.
- rdbpot(y, right) = floor((y + 2^(right-1) - [y < 0]) / 2^right) for right > 0
  (ties away from zero), y itself for right == 0; adding zp * 2^right first adds zp
  afterwards exactly: out = (y + (mask & (y >> 31)) + k) >> right with
  k = 2^(right-1) + zp * 2^right (k = zp when right == 0) and mask = -1 if right > 0
  else 0. Everything stays inside int32 when |y| <= 2^30 and right <= MAX_RIGHT.

`fast_channels` checks both conditions per channel from a bound on |acc|; the
kernels give the channels that fail them (degenerate ones: a bias near 2^30 with
tiny weights) the portable output stage. `fast_requantize` is the NumPy twin of the C in templates/runtime/mcugen_dsp.h.

The scaled stage (pointwise_dsp) takes this further: a = acc * 2^(left+1) comes straight
out of the accumulator (weights and bias are pre-multiplied by 2^(left+1)), and the rounding
correction and k ride in SMMLAR's accumulator: for right >= 1 and q > 0,
y < 0 only if a < 0, and a < 0 gives y <= 0 where y = 0 is no tie, so
out = (smmlar(a, q, k - [a < 0])) >> right. When the output's zero point is at or below the
lower clamp (every ReLU layer), a negative y clamps to act_min with or without the
correction, which is then dropped: SMMLAR, ASR, SSAT.

A channel whose every reachable accumulator requantizes to one value (`constant_channels`,
e.g. a ReLU channel with a large negative bias) needs no arithmetic at all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...quant.arith import requantize
from ..weights import OutputStage

MAX_RIGHT = 22  # |y| + |k| <= 2^30 + 128.5 * 2^right < 2^31
_LIMIT = 1 << 31


@dataclass(frozen=True, eq=False)
class FastStage:
    """Per output channel: the folded bias and the constants of the six-instruction output stage."""

    bias: np.ndarray  # int32: bias + input_offset * sum(weights), the accumulator's start value
    multiplier: np.ndarray  # int32 q
    left: np.ndarray  # int32: left shift + 1 (the doubling SMMULR needs)
    right: np.ndarray  # int32
    k: np.ndarray  # int32: rounding half plus zero point, both times 2^right
    act_min: int
    act_max: int

    @property
    def uniform_left(self) -> int | None:
        """The left shift every channel shares, if they all share one (then it is a C constant)."""
        return int(self.left[0]) if self.left.size and np.all(self.left == self.left[0]) else None

    @property
    def all_right(self) -> bool:
        """Every channel shifts right (no rdbpot by 0), so the sign correction needs no mask."""
        return bool(np.all(self.right > 0))

    @property
    def clamps(self) -> bool:
        """The fused activation narrows the int8 range (else saturating to int8 is the clamp)."""
        return self.act_min > -128 or self.act_max < 127

    def table(self) -> np.ndarray:
        """The per-channel words the C reads, in its order: bias, q, k, right[, left][, mask]."""
        columns = [self.bias, self.multiplier, self.k, self.right]
        if self.uniform_left is None:
            columns.append(self.left)
        if not self.all_right:
            columns.append(np.where(self.right > 0, -1, 0))
        return np.stack(columns, axis=1).astype(np.int32)

    @property
    def table_stride(self) -> int:
        return 4 + (self.uniform_left is None) + (not self.all_right)

    def c_out(self, acc: str, row: str) -> str:
        """The C expression of one output: `acc` requantized with the table row at pointer `row`."""
        left = f"{row}[4]" if self.uniform_left is None else str(self.uniform_left)
        mask = "-1" if self.all_right else f"{row}[{self.table_stride - 1}]"
        value = f"mcugen_ssat8(mcugen_fast_out({acc}, {row}[1], {left}, {row}[2], {row}[3], {mask}))"
        if self.act_min > -128:
            value = f"mcugen_max({value}, {self.act_min})"
        if self.act_max < 127:
            value = f"mcugen_min({value}, {self.act_max})"
        return f"(int8_t){value}"


def fast_channels(stage: OutputStage, acc_bound: np.ndarray) -> np.ndarray:
    """Per output channel: whether its shifts and accumulator bound allow the fast output stage."""
    shift = stage.shift.astype(np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    return (right <= MAX_RIGHT) & (np.asarray(acc_bound, np.int64) * (np.int64(1) << (left + 1)) < _LIMIT)


def fast_stage(stage: OutputStage, folded_bias: np.ndarray, channels: np.ndarray) -> FastStage:
    """The fast output stage of the `channels` (indices), all of which `fast_channels` accepts."""
    shift = stage.shift.astype(np.int64)[channels]
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    zp = stage.output_offset
    k = np.where(right > 0, (np.int64(1) << np.maximum(right - 1, 0)) + zp * (np.int64(1) << right), zp)
    return FastStage(
        bias=np.asarray(folded_bias, np.int64)[channels].astype(np.int32),
        multiplier=stage.multiplier.astype(np.int32)[channels],
        left=(left + 1).astype(np.int32),
        right=right.astype(np.int32),
        k=k.astype(np.int32),
        act_min=stage.act_min,
        act_max=stage.act_max,
    )


def _floor_shift(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.floor_divide(x, np.int64(1) << n)


def fast_requantize(acc: np.ndarray, fs: FastStage) -> np.ndarray:
    """The C fast output stage on int32 accumulators (last axis: channel), as int8."""
    acc = np.asarray(acc, np.int64)
    doubled = acc << fs.left.astype(np.int64)
    y = _floor_shift(doubled * fs.multiplier.astype(np.int64) + (np.int64(1) << 31), np.int64(32))  # SMMULR
    mask = np.where(fs.right > 0, -1, 0)
    y = y + (mask & np.where(y < 0, -1, 0)) + fs.k
    out = _floor_shift(y, fs.right.astype(np.int64))
    return np.clip(out, fs.act_min, fs.act_max).astype(np.int8)


MAX_SCALED_LEFT = 7  # 127 * 2^(left+1) still fits the int16 weight halves


@dataclass(frozen=True, eq=False)
class ScaledStage:
    """Per output channel: the scaled stage's constants (see the module docstring)."""

    scale: np.ndarray  # int64: 2^(left+1), the factor weights and bias are pre-multiplied by
    bias: np.ndarray  # int32: folded bias * scale
    multiplier: np.ndarray  # int32 q
    k: np.ndarray  # int32: 2^(right-1) + zp * 2^right
    right: np.ndarray  # int32, >= 1
    act_min: int
    act_max: int
    ties: bool  # negative ties need the sign correction (zp above the lower clamp)


def needs_ties(stage: OutputStage) -> bool:
    """Whether a negative y can reach an output above the lower clamp (else the correction is moot)."""
    return stage.output_offset > max(stage.act_min, -128)


def scaled_channels(stage: OutputStage, acc_bound: np.ndarray) -> np.ndarray:
    """Per output channel: whether the scaled stage is exact for accumulators within `acc_bound`."""
    shift = stage.shift.astype(np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    fits = np.asarray(acc_bound, np.int64) * (np.int64(1) << (np.minimum(left, MAX_SCALED_LEFT) + 1)) < _LIMIT
    return (right >= 1) & (right <= MAX_RIGHT) & (left <= MAX_SCALED_LEFT) & fits


def scaled_stage(stage: OutputStage, folded_bias: np.ndarray, channels: np.ndarray) -> ScaledStage:
    """The scaled stage of the `channels` (indices), all of which `scaled_channels` accepts."""
    shift = stage.shift.astype(np.int64)[channels]
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    scale = np.int64(1) << (left + 1)
    k = (np.int64(1) << (right - 1)) + stage.output_offset * (np.int64(1) << right)
    return ScaledStage(scale, (np.asarray(folded_bias, np.int64)[channels] * scale).astype(np.int32),
                       stage.multiplier.astype(np.int32)[channels], k.astype(np.int32), right.astype(np.int32),
                       stage.act_min, stage.act_max, needs_ties(stage))


def scaled_requantize(acc: np.ndarray, ss: ScaledStage) -> np.ndarray:
    """The C scaled stage on int32 accumulators (last axis: channel), as int8."""
    a = np.asarray(acc, np.int64) * ss.scale
    correction = np.where(a < 0, -1, 0) if ss.ties else 0
    z = _floor_shift(a * ss.multiplier.astype(np.int64) + (np.int64(1) << 31), np.int64(32)) + ss.k + correction
    out = _floor_shift(z, ss.right.astype(np.int64))  # SMMLAR, then ASR
    return np.clip(out, ss.act_min, ss.act_max).astype(np.int8)


def constant_channels(stage: OutputStage, acc_lo: np.ndarray, acc_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel: whether every accumulator in [acc_lo, acc_hi] (the reachable range)
    gives one output, and that output. requantize is monotone in acc while acc << left does
    not wrap, so the two ends decide."""
    lo, hi = np.asarray(acc_lo, np.int64), np.asarray(acc_hi, np.int64)
    left = np.maximum(stage.shift.astype(np.int64), 0)
    inside = (lo << left >= -_LIMIT) & (hi << left < _LIMIT)
    safe_lo, safe_hi = np.where(inside, lo, 0), np.where(inside, hi, 0)
    ends = [requantize(v, stage.multiplier, stage.shift, stage.output_offset, stage.act_min, stage.act_max)
            for v in (safe_lo, safe_hi)]
    return inside & (ends[0] == ends[1]), ends[0].astype(np.int32)
