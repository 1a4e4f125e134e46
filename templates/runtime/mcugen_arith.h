/* Produced by mcugen: int8 kernel arithmetic, twin of mcugen/quant/arith.py (docs/arithmetic.md). */
#ifndef MCUGEN_ARITH_H
#define MCUGEN_ARITH_H

#include <stdint.h>

#define MCUGEN_ARITH_VERSION 1

/*
 * Bit-exact with TensorFlow Lite Micro's int8 reference kernels in their
 * default double-rounding mode, built on gemmlowp's fixed-point primitives.
 * Every function has a Python twin of the same name without the prefix, in the
 * same order, with the same input ranges; outside them the result is
 * unspecified. Integer arithmetic only: this header never uses floating point.
 *
 * Beyond the references, nothing here has undefined behaviour on its
 * documented ranges: shifts that may wrap go through uint32_t, and right
 * shifts of negative values are written as ~(~x >> n), the portable form of
 * an arithmetic shift (compilers emit one asr for it). Converting an
 * out-of-range uint32_t to int32_t is implementation-defined in C99; every
 * supported compiler (gcc, clang, arm-none-eabi-gcc) wraps modulo 2^32.
 */

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a*b / 2^31), ties toward
 * +infinity; a, b: any int32; only INT32_MIN*INT32_MIN saturates (to INT32_MAX). */
static inline int32_t mcugen_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    /* the nudge plus C's truncating division is what makes ties go toward +infinity */
    return (int32_t)((ab + (ab >= 0 ? (1 << 30) : 1 - (1 << 30))) / ((int64_t)1 << 31));
}

/* gemmlowp RoundingDivideByPOT: round(x / 2^exponent), ties away from zero;
 * x: any int32; exponent: 0..31. */
static inline int32_t mcugen_rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    const int32_t floor_quotient = x >= 0 ? x >> exponent : ~(~x >> exponent);
    return floor_quotient + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier (double rounding): x * q * 2^(shift-31).
 * x: any int32; q: any int32 (0 or 2^30..2^31-1 from quantize_multiplier);
 * shift: -31..31. x * 2^max(shift, 0) wraps modulo 2^32 (TFLite: undefined). */
static inline int32_t mcugen_mbqm(int32_t x, int32_t q, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return mcugen_rdbpot(mcugen_srdhm((int32_t)((uint32_t)x << left), q), right);
}

/* The conv / fully-connected output stage: clamp(mbqm(acc, q, shift) + out_zp,
 * act_min, act_max). acc, q, shift: as mbqm; out_zp, act_min <= act_max:
 * -128..127. The sum is exact (int64) where TFLite's int32 sum could overflow. */
static inline int8_t mcugen_requantize(int32_t acc, int32_t q, int32_t shift, int32_t out_zp,
                                       int32_t act_min, int32_t act_max)
{
    int64_t v = (int64_t)mcugen_mbqm(acc, q, shift) + out_zp;
    v = v < act_min ? act_min : v;
    v = v > act_max ? act_max : v;
    return (int8_t)v;
}

/* TFLite Micro average-pool rounding: sum / count rounded half away from zero,
 * via C's truncating division. count: 1..INT32_MAX; |sum| + count/2 <= INT32_MAX. */
static inline int32_t mcugen_rounded_div(int32_t sum, int32_t count)
{
    return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

/* gemmlowp SaturatingRoundingMultiplyByPOT with a run-time exponent: x * 2^exponent,
 * saturating for exponent > 0, rounding (as rdbpot) for exponent < 0;
 * x: any int32; exponent: -31..31. */
static inline int32_t mcugen_srmbpot(int32_t x, int32_t exponent)
{
    int32_t threshold;
    if (exponent <= 0) {
        return mcugen_rdbpot(x, -exponent);
    }
    threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* gemmlowp Rescale: the raw value of fixed-point x re-expressed from Q(src).(31-src)
 * to Q(dst).(31-dst); x: any int32; src_integer_bits - dst_integer_bits: -31..31. */
static inline int32_t mcugen_rescale(int32_t x, int32_t src_integer_bits, int32_t dst_integer_bits)
{
    return mcugen_srmbpot(x, src_integer_bits - dst_integer_bits);
}

/* gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl: exp(a) in Q0.31
 * for a in Q0.31, a: -2^29..-1 (that is [-1/4, 0)); 4th-order Taylor around -1/8. */
static inline int32_t mcugen_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + ((int32_t)1 << 28);
    const int32_t x2 = mcugen_srdhm(x, x);
    const int32_t x3 = mcugen_srdhm(x2, x);
    const int32_t x4 = mcugen_srdhm(x2, x2);
    const int32_t x4_over_4 = mcugen_srmbpot(x4, -2);
    const int32_t x4_over_24_plus_x3_over_6_plus_x2_over_2 =
        mcugen_srmbpot(mcugen_srdhm(x4_over_4 + x3, one_third) + x2, -1);
    return exp_minus_one_eighth +
           mcugen_srdhm(exp_minus_one_eighth, x + x4_over_24_plus_x3_over_6_plus_x2_over_2);
}

/* gemmlowp exp_on_negative_values for a Q5.26 input (the softmax's
 * kScaledDiffIntegerBits = 5): exp(a) in Q0.31; a: INT32_MIN..0 (that is [-32, 0]). */
static inline int32_t mcugen_exp_on_negative_values(int32_t a)
{
    /* exp(-2^k) in Q0.31 for k = -2..4, applied for bit 26+k of the remainder */
    static const int32_t exp_of_minus_pot[7] = {1672461947, 1302514674, 790015084, 290630308,
                                                 39332535,   720401,     242};
    const int32_t one_quarter = (int32_t)1 << 24;
    const int32_t a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter;
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    int32_t result = mcugen_exp_on_interval_between_negative_one_quarter_and_0_excl(
        mcugen_rescale(a_mod_quarter_minus_one_quarter, 5, 0));
    int32_t k;
    for (k = 0; k < 7; ++k) {
        if ((remainder & ((int32_t)1 << (24 + k))) != 0) {
            result = mcugen_srdhm(result, exp_of_minus_pot[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: 1/(1+a) in Q0.31 for a in Q0.31,
 * a: 0..INT32_MAX; Newton-Raphson, 3 steps, on the half denominator in Q2.29. */
static inline int32_t mcugen_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = (int32_t)(((int64_t)a + INT32_MAX + 1) / 2);
    int32_t x = 1515870810 + mcugen_srdhm(half_denominator, -1010580540); /* 48/17 - 32/17 d */
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus_half_denominator_times_x =
            ((int32_t)1 << 29) - mcugen_srdhm(half_denominator, x);
        x = x + mcugen_srmbpot(mcugen_srdhm(x, one_minus_half_denominator_times_x), 2);
    }
    return mcugen_srmbpot(x, 1);
}

/* TFLite CountLeadingZeros for uint32: x: any uint32; 32 for 0. */
static inline int32_t mcugen_count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0u) {
        return 32;
    }
    while ((x & 0x80000000u) == 0u) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* TFLite GetReciprocal: for x in Q(x_integer_digits).(31-x_integer_digits), returns
 * 1/x as a Q0.31 value times 2^*num_bits_over_unit; x: 1..INT32_MAX. */
static inline int32_t mcugen_get_reciprocal(int32_t x, int32_t x_integer_digits, int32_t *num_bits_over_unit)
{
    const int32_t headroom_plus_one = mcugen_count_leading_zeros((uint32_t)x);
    const int32_t shifted_sum_minus_one =
        (int32_t)(((uint32_t)x << headroom_plus_one) - ((uint32_t)1 << 31));
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    return mcugen_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

/* TFLite reference_ops::Softmax, int8 in -> int8 out (scale 1/256, zero point -128),
 * one row of depth 1..4095; parameters from softmax_params() at compile time.
 * Where TFLite aborts (sum of exps >= 512, only for depth >= 512: the rounding
 * shift would exceed 31) every exact quotient rounds to 0 and the row is -128. */
static inline void mcugen_softmax_s8_row(const int8_t *in, int8_t *out, int32_t depth, int32_t input_multiplier,
                                         int32_t input_left_shift, int32_t diff_min)
{
    int32_t max_in_row = INT8_MIN;
    int32_t sum_of_exps = 0; /* Q12.19 */
    int32_t num_bits_over_unit, exponent, shifted_scale, c;
    for (c = 0; c < depth; ++c) {
        max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
    }
    for (c = 0; c < depth; ++c) {
        const int32_t diff = (int32_t)in[c] - max_in_row;
        if (diff >= diff_min) {
            const int32_t scaled_diff = mcugen_mbqm(diff, input_multiplier, input_left_shift); /* Q5.26 */
            sum_of_exps += mcugen_rescale(mcugen_exp_on_negative_values(scaled_diff), 0, 12);
        }
    }
    shifted_scale = mcugen_get_reciprocal(sum_of_exps, 12, &num_bits_over_unit);
    exponent = num_bits_over_unit + 31 - 8;
    for (c = 0; c < depth; ++c) {
        const int32_t diff = (int32_t)in[c] - max_in_row;
        int32_t v = INT8_MIN;
        if (diff >= diff_min && exponent <= 31) {
            const int32_t scaled_diff = mcugen_mbqm(diff, input_multiplier, input_left_shift);
            const int32_t exp_in_0 = mcugen_exp_on_negative_values(scaled_diff);
            v = mcugen_rdbpot(mcugen_srdhm(shifted_scale, exp_in_0), exponent) + INT8_MIN;
            v = v > INT8_MAX ? INT8_MAX : v; /* never below INT8_MIN: both factors are >= 0 */
        }
        out[c] = (int8_t)v;
    }
}

#endif /* MCUGEN_ARITH_H */
