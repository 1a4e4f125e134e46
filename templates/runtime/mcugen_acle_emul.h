/* Produced by mcugen: portable C99 twins of the Arm DSP instructions the fast kernels use,
 * so the same kernel source runs (and is tested) on any host. Each function computes
 * exactly what the instruction computes on its whole input range: sums wrap modulo 2^32
 * like the hardware (through uint32_t, never signed overflow). */
#ifndef MCUGEN_ACLE_EMUL_H
#define MCUGEN_ACLE_EMUL_H

#include <stdint.h>

/* int8 at bit 8*byte of x, sign-extended */
static inline int32_t mcugen_emul_byte(uint32_t x, int32_t byte)
{
    const int32_t b = (int32_t)((x >> (8 * byte)) & 0xffu);
    return b >= 128 ? b - 256 : b;
}

/* SXTB16: bytes 0 and 2 of x sign-extended into the two halfwords */
static inline int32_t mcugen_sxtb16(int32_t x)
{
    const uint32_t u = (uint32_t)x;
    return (int32_t)(((uint32_t)mcugen_emul_byte(u, 0) & 0xffffu) | ((uint32_t)mcugen_emul_byte(u, 2) << 16));
}

/* SXTB16 x, ROR #8: bytes 1 and 3 */
static inline int32_t mcugen_sxtb16_ror8(int32_t x)
{
    const uint32_t u = (uint32_t)x;
    return (int32_t)(((uint32_t)mcugen_emul_byte(u, 1) & 0xffffu) | ((uint32_t)mcugen_emul_byte(u, 3) << 16));
}

static inline int32_t mcugen_emul_half(int32_t x, int32_t half)
{
    const int32_t h = (int32_t)(((uint32_t)x >> (16 * half)) & 0xffffu);
    return h >= 32768 ? h - 65536 : h;
}

/* SMLAD: acc + lo(a)*lo(b) + hi(a)*hi(b), modulo 2^32 */
static inline int32_t mcugen_smlad(int32_t a, int32_t b, int32_t acc)
{
    const uint32_t lo = (uint32_t)(mcugen_emul_half(a, 0) * mcugen_emul_half(b, 0));
    const uint32_t hi = (uint32_t)(mcugen_emul_half(a, 1) * mcugen_emul_half(b, 1));
    return (int32_t)((uint32_t)acc + lo + hi);
}

/* SMLABB: acc + lo(a)*lo(b), modulo 2^32 */
static inline int32_t mcugen_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mcugen_emul_half(a, 0) * mcugen_emul_half(b, 0)));
}

/* SMLATT: acc + hi(a)*hi(b), modulo 2^32 */
static inline int32_t mcugen_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mcugen_emul_half(a, 1) * mcugen_emul_half(b, 1)));
}

/* SMLABT: acc + lo(a)*hi(b), modulo 2^32 */
static inline int32_t mcugen_smlabt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mcugen_emul_half(a, 0) * mcugen_emul_half(b, 1)));
}

/* SMLATB: acc + hi(a)*lo(b), modulo 2^32 */
static inline int32_t mcugen_smlatb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(mcugen_emul_half(a, 1) * mcugen_emul_half(b, 0)));
}

/* SMMLAR: the high word of acc*2^32 + a*b + 2^31, modulo 2^64 like the hardware */
static inline int32_t mcugen_smmlar(int32_t a, int32_t b, int32_t acc)
{
    const uint64_t v = ((uint64_t)(uint32_t)acc << 32) + (uint64_t)((int64_t)a * (int64_t)b) + ((uint64_t)1 << 31);
    return (int32_t)(uint32_t)(v >> 32);
}

/* SMMLA: the high word of acc*2^32 + a*b, modulo 2^64 like the hardware */
static inline int32_t mcugen_smmla(int32_t a, int32_t b, int32_t acc)
{
    const uint64_t v = ((uint64_t)(uint32_t)acc << 32) + (uint64_t)((int64_t)a * (int64_t)b);
    return (int32_t)(uint32_t)(v >> 32);
}

/* PKHBT a, b, LSL #16: the low halfword of a under the low halfword of b */
static inline int32_t mcugen_pkhbt(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xffffu) | ((uint32_t)b << 16));
}

/* PKHTB a, b, ASR #16: the high halfword of b under the high halfword of a */
static inline int32_t mcugen_pkhtb(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xffff0000u) | ((uint32_t)b >> 16));
}

/* SSAT #8 */
static inline int32_t mcugen_ssat8(int32_t x)
{
    return x < -128 ? -128 : (x > 127 ? 127 : x);
}

#endif
