"""The output stage of the fast kernels (the scaled stage): TFLite's double-rounding
requantization, re-derived so that a Cortex-M computes it in three instructions per output
(SMMLAR, ASR, SSAT), bit for bit.

For the portable `requantize(acc, q, shift, zp, lo, hi)` (quant/arith.py), with
left = max(shift, 0) and right = max(-shift, 0):

- srdhm(a', q) = floor((a'*q + 2^30) / 2^31) for a' = acc * 2^left (ties toward +inf, no
  saturation since q >= 0); for a = 2a' = acc * 2^(left+1) with |a| < 2^31 it is
  floor((a*q + 2^31) / 2^32), the rounded high word of a*q. The kernels take a straight out
  of the accumulator: weights and bias are pre-multiplied by 2^(left+1) (`scale`), which
  the int16 weight halves hold while left <= MAX_SCALED_LEFT.
- rdbpot(y, right) = floor((y + 2^(right-1) - [y < 0]) / 2^right) for right >= 1 (ties
  away from zero); adding zp * 2^right first adds zp afterwards exactly:
  out = (y + k - [y < 0]) >> right with k = 2^(right-1) + zp * 2^right, inside int32 while
  |y| <= 2^30 and right <= MAX_RIGHT.
- for right >= 1 and q >= 0, y < 0 only if a < 0, and a < 0 gives y <= 0 where y = 0 is no
  tie, so the correction may test a instead of y; then k and the correction ride in
  SMMLAR's accumulator: out = smmlar(a, q, k - [a < 0]) >> right. When the output's zero
  point is at or below the lower clamp (every ReLU layer), a negative y clamps to act_min
  with or without the correction, which is then dropped (`needs_ties`).
- right == 0 (a channel whose scale is at least 1/2) has no rounding to correct:
  rdbpot(y, 0) = y and out = smmlar(a, q, zp), ASR by 0; exact in layers without the ties
  correction only, which would otherwise subtract [a < 0] there too.

`scaled_channels` checks these conditions per channel from a bound on |acc|; the kernels
give the channels that fail them the portable output stage. `scaled_requantize` is the
NumPy twin of the kernels' C.

A channel whose every reachable accumulator requantizes to one value (`constant_channels`,
e.g. a ReLU channel with a large negative bias) needs no arithmetic at all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...quant.arith import requantize
from ..weights import OutputStage

MAX_RIGHT = 22  # |y| + |k| <= 2^30 + 128.5 * 2^right < 2^31
MAX_SCALED_LEFT = 7  # 127 * 2^(left+1) still fits the int16 weight halves
_LIMIT = 1 << 31


def _floor_shift(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.floor_divide(x, np.int64(1) << n)


@dataclass(frozen=True, eq=False)
class ScaledStage:
    """Per output channel: the scaled stage's constants (see the module docstring)."""

    scale: np.ndarray  # int64: 2^(left+1), the factor weights and bias are pre-multiplied by
    bias: np.ndarray  # int32: folded bias * scale
    multiplier: np.ndarray  # int32 q
    k: np.ndarray  # int32: 2^(right-1) + zp * 2^right (zp when right == 0)
    right: np.ndarray  # int32, >= 1 (or 0 in a layer without the ties correction)
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
    rounds = (right >= 1) | ((right == 0) & (not needs_ties(stage)))
    return rounds & (right <= MAX_RIGHT) & (left <= MAX_SCALED_LEFT) & fits


def scaled_stage(stage: OutputStage, folded_bias: np.ndarray, channels: np.ndarray) -> ScaledStage:
    """The scaled stage of the `channels` (indices), all of which `scaled_channels` accepts."""
    shift = stage.shift.astype(np.int64)[channels]
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    scale = np.int64(1) << (left + 1)
    half = np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), 0)
    k = half + stage.output_offset * (np.int64(1) << right)
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
