"""The integer arithmetic of mcugen: rounding, multiplier/shift, saturation, int8 softmax.

Bit-exact with TensorFlow Lite Micro's int8 reference kernels (double rounding)
and gemmlowp's fixed point; the spec is docs/arithmetic.md. The C twin is
templates/runtime/mcugen_arith.h: `srdhm` here is `mcugen_srdhm` there, and so
on, in the same order with the same input ranges. The simulator and the
generated C use nothing else.

Compile-time functions (floats allowed, no C twin) come first. The run-time
functions after them take ints or integer arrays (broadcast together, e.g.
per-channel q/shift), compute in int64 so nothing wraps unnoticed, check their
documented ranges and return int64 arrays (0-d for scalar inputs) whose values
fit int32, or int8 arrays where C returns int8.
"""
from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Ints = npt.ArrayLike

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT8_MIN, INT8_MAX = -128, 127
UINT32_MAX = (1 << 32) - 1

# TFLite softmax: the scaled input difference is Q5.26, the sum of exps Q12.19.
SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12

# exp(-2^k) in Q0.31 for k = -2..4 (gemmlowp's barrel-shifter constants).
_EXP_OF_MINUS_POT = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: (q, shift) with real ~= q * 2^(shift - 31).

    q is 0 or in [2^30, 2^31 - 1]; reals below 2^-32 flush to (0, 0). Pass the
    double TFLite would compute, e.g. double(in_scale) * double(w_scale) / double(out_scale).
    """
    if not (math.isfinite(real) and real >= 0.0):
        raise ValueError(f"multiplier must be finite and >= 0, got {real!r}")
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    # std::round. floor(x + 0.5) is exact here: x >= 2^30, so x + 0.5 is representable.
    q = math.floor(fraction * (1 << 31) + 0.5)
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplierGreaterThanOne: quantize_multiplier for real > 1, shift >= 0."""
    if not real > 1.0:
        raise ValueError(f"multiplier must be > 1, got {real!r}")
    return quantize_multiplier(real)


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """TFLite PreprocessSoftmaxScaling + CalculateInputRadius for int8 softmax.

    Returns (input_multiplier, input_left_shift, diff_min). beta and input_scale
    are float32 fields in TFLite, so they are rounded to float32 first.
    """
    beta32, scale32 = float(np.float32(beta)), float(np.float32(input_scale))
    real = min(beta32 * scale32 * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier_greater_than_one(real)
    # floor(31 * 2^26 / 2^left_shift), exactly what TFLite's double computation gives
    radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) << (31 - SCALED_DIFF_INTEGER_BITS) >> left_shift
    return multiplier, left_shift, -radius


def _ints(x: Ints, name: str, lo: int = INT32_MIN, hi: int = INT32_MAX) -> np.ndarray:
    """x as int64, refusing non-integers and values outside the documented [lo, hi]."""
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < lo or a.max() > hi):
        raise ValueError(f"{name} outside its range [{lo}, {hi}]")
    return a


def _wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to int32, as C's (int32_t)(uint32_t) conversion."""
    return ((x - INT32_MIN) & UINT32_MAX) + INT32_MIN


def srdhm(a: Ints, b: Ints) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul: round(a*b / 2^31), ties toward +inf.

    a, b: any int32; only INT32_MIN * INT32_MIN saturates (to INT32_MAX).
    """
    a, b = _ints(a, "a"), _ints(b, "b")
    ab = a * b
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    truncated = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))  # C's division
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, truncated)


def rdbpot(x: Ints, exponent: Ints) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: round(x / 2^exponent), ties away from zero.

    x: any int32; exponent: 0..31.
    """
    x, exponent = _ints(x, "x"), _ints(exponent, "exponent", 0, 31)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def mbqm(x: Ints, q: Ints, shift: Ints) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (double rounding): x * q * 2^(shift - 31).

    x, q: any int32; shift: -31..31. x * 2^max(shift, 0) wraps to int32.
    """
    x, shift = _ints(x, "x"), _ints(shift, "shift", -31, 31)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    return rdbpot(srdhm(_wrap_int32(x << left), q), right)


def requantize(acc: Ints, q: Ints, shift: Ints, out_zp: Ints, act_min: Ints, act_max: Ints) -> np.ndarray:
    """The conv / FC output stage: clamp(mbqm(acc, q, shift) + out_zp, act_min, act_max) as int8.

    acc, q, shift: as mbqm; out_zp, act_min <= act_max: -128..127.
    """
    out_zp = _ints(out_zp, "out_zp", INT8_MIN, INT8_MAX)
    act_min, act_max = _ints(act_min, "act_min", INT8_MIN, INT8_MAX), _ints(act_max, "act_max", INT8_MIN, INT8_MAX)
    if np.any(act_min > act_max):
        raise ValueError("act_min > act_max")
    return np.clip(mbqm(acc, q, shift) + out_zp, act_min, act_max).astype(np.int8)


def rounded_div(sum: Ints, count: Ints) -> np.ndarray:  # noqa: A002 - TFLite's name
    """TFLite Micro average-pool rounding: sum / count, ties away from zero.

    count: 1..INT32_MAX; |sum| + count // 2 <= INT32_MAX.
    """
    sum, count = _ints(sum, "sum"), _ints(count, "count", 1, INT32_MAX)
    numerator = _ints(np.where(sum > 0, sum + count // 2, sum - count // 2), "|sum| + count // 2")
    return np.sign(numerator) * (np.abs(numerator) // count)  # C's truncating division


def srmbpot(x: Ints, exponent: Ints) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT: x * 2^exponent, saturating up, rounding down.

    x: any int32; exponent: -31..31.
    """
    x, exponent = _ints(x, "x"), _ints(exponent, "exponent", -31, 31)
    up = np.maximum(exponent, 0)
    threshold = (np.int64(1) << (31 - up)) - 1
    shifted = np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << up))
    return np.where(exponent > 0, shifted, rdbpot(x, np.maximum(-exponent, 0)))


def rescale(x: Ints, src_integer_bits: Ints, dst_integer_bits: Ints) -> np.ndarray:
    """gemmlowp Rescale: raw x from Q(src).(31-src) to Q(dst).(31-dst); src - dst: -31..31."""
    return srmbpot(x, _ints(src_integer_bits, "src_integer_bits") - _ints(dst_integer_bits, "dst_integer_bits"))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: Ints) -> np.ndarray:
    """gemmlowp's exp(a) in Q0.31 for a in Q0.31, a: -2^29..-1 ([-1/4, 0)); Taylor around -1/8."""
    a = _ints(a, "a", -(1 << 29), -1)
    exp_minus_one_eighth, one_third = 1895147668, 715827883
    x = a + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = srmbpot(x4, -2)
    x4_over_24_plus_x3_over_6_plus_x2_over_2 = srmbpot(srdhm(x4_over_4 + x3, one_third) + x2, -1)
    return exp_minus_one_eighth + srdhm(exp_minus_one_eighth, x + x4_over_24_plus_x3_over_6_plus_x2_over_2)


def exp_on_negative_values(a: Ints) -> np.ndarray:
    """gemmlowp exp_on_negative_values for Q5.26 input: exp(a) in Q0.31; a: INT32_MIN..0 ([-32, 0])."""
    a = _ints(a, "a", INT32_MIN, 0)
    one_quarter = 1 << 24
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    remainder = a_mod_quarter_minus_one_quarter - a
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, SCALED_DIFF_INTEGER_BITS, 0)
    )
    for bit, multiplier in enumerate(_EXP_OF_MINUS_POT, start=24):
        result = np.where(remainder & (1 << bit), srdhm(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a: Ints) -> np.ndarray:
    """gemmlowp's 1/(1+a) in Q0.31 for a in Q0.31, a: 0..INT32_MAX; 3 Newton-Raphson steps."""
    a = _ints(a, "a", 0, INT32_MAX)
    half_denominator = (a + INT32_MAX + 1) // 2  # RoundingHalfSum(a, One), the sum is >= 0
    x = 1515870810 + srdhm(half_denominator, -1010580540)  # 48/17 - 32/17 d in Q2.29
    for _ in range(3):
        one_minus_half_denominator_times_x = (1 << 29) - srdhm(half_denominator, x)
        x = x + srmbpot(srdhm(x, one_minus_half_denominator_times_x), 2)
    return srmbpot(x, 1)


def count_leading_zeros(x: Ints) -> np.ndarray:
    """TFLite CountLeadingZeros for uint32: x: 0..2^32-1; 32 for 0."""
    x = _ints(x, "x", 0, UINT32_MAX)
    _, bit_length = np.frexp(x.astype(np.float64))  # exact: x < 2^53
    return 32 - bit_length.astype(np.int64)


def get_reciprocal(x: Ints, x_integer_digits: Ints) -> tuple[np.ndarray, np.ndarray]:
    """TFLite GetReciprocal: (1/x in Q0.31 scaled by 2^num_bits_over_unit, num_bits_over_unit).

    x: 1..INT32_MAX, a Q(x_integer_digits).(31 - x_integer_digits) value.
    """
    x = _ints(x, "x", 1, INT32_MAX)
    headroom_plus_one = count_leading_zeros(x)
    shifted_sum_minus_one = (x << headroom_plus_one) - (1 << 31)
    digits = _ints(x_integer_digits, "x_integer_digits")
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), digits - headroom_plus_one


def softmax_s8(
    x: npt.NDArray[np.int8], input_multiplier: int, input_left_shift: int, diff_min: int, axis: int = -1
) -> npt.NDArray[np.int8]:
    """TFLite reference_ops::Softmax int8 -> int8 (scale 1/256, zero point -128) along axis.

    Parameters from softmax_params(); depth 1..4095. Where TFLite aborts (sum of
    exps >= 512, so the final rounding shift exceeds 31) the row is all -128,
    the exact rounding of every quotient (see docs/arithmetic.md).
    """
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise TypeError(f"softmax_s8 takes int8, got {x.dtype}")
    rows = np.moveaxis(x, axis, -1).astype(np.int64)
    if not 1 <= rows.shape[-1] <= 4095:
        raise ValueError(f"softmax depth must be 1..4095, got {rows.shape[-1]}")
    diff = rows - rows.max(axis=-1, keepdims=True)
    kept = diff >= diff_min
    # skipped differences are zeroed so mbqm never sees a product TFLite would not compute
    exps = exp_on_negative_values(mbqm(np.where(kept, diff, 0), input_multiplier, input_left_shift))
    sum_of_exps = np.where(kept, rescale(exps, 0, ACCUMULATION_INTEGER_BITS), 0).sum(axis=-1, keepdims=True)
    shifted_scale, num_bits_over_unit = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    unsat = rdbpot(srdhm(shifted_scale, exps), np.minimum(exponent, 31))
    out = np.where(kept & (exponent <= 31), np.minimum(unsat + INT8_MIN, INT8_MAX), INT8_MIN)
    return np.moveaxis(out.astype(np.int8), -1, axis)
