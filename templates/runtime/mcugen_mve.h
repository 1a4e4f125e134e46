/* Produced by mcugen: what the Helium (MVE) kernels share. On a core with MVE the helpers
 * are single instructions (or short fixed sequences); elsewhere mcugen_mve_emul.h gives their
 * exact C twins, so the kernels also build (and are tested) on a host. */
#ifndef MCUGEN_MVE_H
#define MCUGEN_MVE_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

typedef int8x16_t mcugen_i8x16;
typedef int16x8_t mcugen_i16x8;
typedef int32x4_t mcugen_i32x4;

static inline mcugen_i8x16 mcugen_mve_ld8(const int8_t *p)
{
    return vldrbq_s8(p);
}

static inline mcugen_i32x4 mcugen_mve_ld32(const int32_t *p)
{
    return vldrwq_s32(p);
}

static inline mcugen_i32x4 mcugen_mve_dup32(int32_t v)
{
    return vdupq_n_s32(v);
}

/* VADD.I32: modulo 2^32 */
static inline mcugen_i32x4 mcugen_mve_add32(mcugen_i32x4 a, mcugen_i32x4 b)
{
    return vaddq_s32(a, b);
}

/* VMLADAVA.S8: acc + the sum of the 16 lanes' products, modulo 2^32 */
static inline int32_t mcugen_mve_mladava8(int32_t acc, mcugen_i8x16 a, mcugen_i8x16 b)
{
    return vmladavaq_s8(acc, a, b);
}

/* VMLADAV.S8: the sum of the 16 lanes' products */
static inline int32_t mcugen_mve_mladav8(mcugen_i8x16 a, mcugen_i8x16 b)
{
    return vmladavq_s8(a, b);
}

/* TFLite's MultiplyByQuantizedMultiplier lane by lane, exact for every int32 acc, when every
 * lane shifts right (shift < 0; nr = shift): VQRDMULH is SaturatingRoundingDoublingHighMul;
 * VRSHL rounds ties up where RoundingDivideByPOT rounds them away from zero, so negative
 * values are lowered by one first (q >= 0 keeps VQRDMULH above INT32_MIN: no wrap). */
static inline mcugen_i32x4 mcugen_mve_mbqm(mcugen_i32x4 acc, mcugen_i32x4 q, mcugen_i32x4 nr)
{
    const mcugen_i32x4 y = vqrdmulhq_s32(acc, q);
    return vrshlq_s32(vaddq_s32(y, vshrq_n_s32(y, 31)), nr);
}

/* The same for any shift: left = max(shift, 0), nr = min(shift, 0), fix = -1 where shift < 0, else 0 */
static inline mcugen_i32x4 mcugen_mve_mbqm_any(mcugen_i32x4 acc, mcugen_i32x4 q, mcugen_i32x4 left, mcugen_i32x4 nr,
                                              mcugen_i32x4 fix)
{
    const mcugen_i32x4 y = vqrdmulhq_s32(vshlq_s32(acc, left), q);
    return vrshlq_s32(vaddq_s32(y, vandq_s32(vshrq_n_s32(y, 31), fix)), nr);
}

/* even, odd: MultiplyByQuantizedMultiplier of 8 channels' even and odd lanes -> the 8 outputs in
 * channel order as int16 lanes: saturating narrow, saturating zero point, clamp (saturation
 * never changes a clamped result: the clamp bounds lie in int8) */
static inline mcugen_i16x8 mcugen_mve_out16(mcugen_i32x4 even, mcugen_i32x4 odd, int32_t zp, int32_t lo, int32_t hi)
{
    mcugen_i16x8 h = vqmovnbq_s32(vuninitializedq_s16(), even);
    h = vqmovntq_s32(h, odd);
    h = vqaddq_n_s16(h, (int16_t)zp);
    return vminq_s16(vmaxq_s16(h, vdupq_n_s16((int16_t)lo)), vdupq_n_s16((int16_t)hi));
}

/* VSTRB.16: the low byte of each int16 lane */
static inline void mcugen_mve_st8_s16(int8_t *p, mcugen_i16x8 v)
{
    vstrbq_s16(p, v);
}
{# depthwise_mve's tap loops, once per weight type: int8 weights (VLDRB.S16 widens them), or
    int16 ones (VLDRH.S16) for a layer whose weights carry a zero point (w + offset needs 9 bits) #}
{% macro product(e, o) %}
        "vmullb.s16 %q[p], %q[x], %q[w]\n\t"
        "vadd.i32 %q[{{ e }}], %q[{{ e }}], %q[p]\n\t"
        "vmullt.s16 %q[p], %q[x], %q[w]\n\t"
        "vadd.i32 %q[{{ o }}], %q[{{ o }}], %q[p]\n\t"
{%- endmacro %}
{% macro weights(load, k, size) %}
        "{{ load }} %q[w], [%[wp]{{ ", #%d" % (k * 8 * size) if k else "" }}]\n\t"
{%- endmacro %}
{% for suffix, wtype, load, size in (("", "int8_t", "vldrb.s16", 1), ("_w16", "int16_t", "vldrh.s16", 2)) %}
{% if not suffix %}
/* depthwise_mve's 9 taps for 8 channels of two output pixels, the second's window `step` bytes after
 * the first's: the first's window rows at *r0, *r1, *r2 (each pointer then moves on 8 channels),
 * columns `c` bytes apart, weights w[tap * 8 + lane] (each weight vector serves both pixels);
 * VMULLB / VMULLT products added to acc[0] / acc[1] (the first pixel's even / odd channels) and
 * acc[2] / acc[3]. Written in assembly: GCC 12 gives widening loads (low registers only) a MOV
 * and an ADD each and hoists all loads, spilling Q registers. Always inlined: with a second
 * depthwise function in the file (a fed one) GCC 12 stopped inlining them (VWW M55 layer 1:
 * 0.56 -> 0.48 MAC/instruction). */
{% else %}
/* The same two with int16 weights */
{% endif %}
__attribute__((always_inline)) static inline void mcugen_mve_dw_taps2{{ suffix }}(mcugen_i32x4 acc[4], const int8_t **r0, const int8_t **r1, const int8_t **r2,
                                       int32_t c, int32_t step, const {{ wtype }} *w)
{
    mcugen_i16x8 x, wv;
    mcugen_i32x4 prod;
    const int8_t *a;
    __asm__ volatile(
{% for ky in range(3) %}
{% for kx in range(3) %}
{{ weights(load, 3 * ky + kx, size) }}
{% if kx == 0 %}
        "vldrb.s16 %q[x], [%[r{{ ky }}]]\n\t"
{% else %}
        "add %[a], %[r{{ ky }}], %[c{{ kx }}]\n\t"
        "vldrb.s16 %q[x], [%[a]]\n\t"
{% endif %}
{{ product("ea", "oa") }}
        "add %[a], %[{{ "r%d" % ky if kx == 0 else "a" }}], %[step]\n\t"
        "vldrb.s16 %q[x], [%[a]]\n\t"
{{ product("eb", "ob") }}
{% endfor %}
        "add %[r{{ ky }}], %[r{{ ky }}], #8\n\t"
{% endfor %}
        : [ea] "+w"(acc[0]), [oa] "+w"(acc[1]), [eb] "+w"(acc[2]), [ob] "+w"(acc[3]), [x] "=&w"(x), [w] "=&w"(wv),
          [p] "=&w"(prod), [a] "=&l"(a), [r0] "+l"(*r0), [r1] "+l"(*r1), [r2] "+l"(*r2)
        : [c1] "r"(c), [c2] "r"(2 * c), [step] "r"(step), [wp] "l"(w)
        : "memory");
}

{% if not suffix %}
/* depthwise_mve's 9 taps for 8 channels of one output pixel: tap k's at tap[k] + c */
{% endif %}
__attribute__((always_inline)) static inline void mcugen_mve_dw_taps9{{ suffix }}(mcugen_i32x4 *even, mcugen_i32x4 *odd, const int8_t *const *tap, int32_t c,
                                       const {{ wtype }} *w)
{
    mcugen_i16x8 x, wv;
    mcugen_i32x4 prod;
    const int8_t *a;
    __asm__ volatile(
{% for k in range(9) %}
        "ldr %[a], [%[tap], #{{ 4 * k }}]\n\t"
        "add %[a], %[a], %[c]\n\t"
        "vldrb.s16 %q[x], [%[a]]\n\t"
{{ weights(load, k, size) }}
{{ product("e", "o") }}
{% endfor %}
        : [e] "+w"(*even), [o] "+w"(*odd), [x] "=&w"(x), [w] "=&w"(wv), [p] "=&w"(prod), [a] "=&l"(a)
        : [tap] "r"(tap), [c] "r"(c), [wp] "l"(w)
        : "memory");
}
{% if not loop.last %}

{% endif %}
{% endfor %}

/* conv_mve, one output channel of a pixel pair: sa = sum over the 3 kernel rows of the lanes of
 * a_k * w_k, sb the same for b_k, the weight vectors w_0..w_2 at *w (which moves on 48 bytes).
 * In assembly: VMLADAVA accumulates in place and GCC 12 copied most sums to another register
 * ("Te": VMLADAV takes an even register). */
static inline void mcugen_mve_mladav3x2(mcugen_i8x16 a0, mcugen_i8x16 a1, mcugen_i8x16 a2, mcugen_i8x16 b0,
                                        mcugen_i8x16 b1, mcugen_i8x16 b2, const int8_t **w, int32_t *sa, int32_t *sb)
{
    mcugen_i8x16 wv;
    int32_t x, y;
    __asm__ volatile(
        "vldrb.8 %q[wv], [%[w]], #16\n\t"
        "vmladav.s8 %[x], %q[a0], %q[wv]\n\t"
        "vmladav.s8 %[y], %q[b0], %q[wv]\n\t"
        "vldrb.8 %q[wv], [%[w]], #16\n\t"
        "vmladava.s8 %[x], %q[a1], %q[wv]\n\t"
        "vmladava.s8 %[y], %q[b1], %q[wv]\n\t"
        "vldrb.8 %q[wv], [%[w]], #16\n\t"
        "vmladava.s8 %[x], %q[a2], %q[wv]\n\t"
        "vmladava.s8 %[y], %q[b2], %q[wv]\n\t"
        : [wv] "=&w"(wv), [x] "=&Te"(x), [y] "=&Te"(y), [w] "+r"(*w)
        : [a0] "w"(a0), [a1] "w"(a1), [a2] "w"(a2), [b0] "w"(b0), [b1] "w"(b1), [b2] "w"(b2)
        : "memory");
    *sa = x;
    *sb = y;
}

/* pointwise_mve's sums for input pixels x0, x1 (n >= 1 bytes each) and an output channel pair, as
 * lanes (x0.c0, x0.c1, x1.c0, x1.c1), each starting from bias[0] or bias[1]; the weights at *w,
 * per 16-byte chunk c0's then c1's (a partial last chunk padded to 16), *w moves on past them. A
 * chunk is 4 loads and 4 VMLADAVA.S8 (64 MACs) in a tail-predicated low-overhead loop (DLSTP.8 /
 * LETP): the last chunk's lanes past n are neither loaded nor summed. In assembly: GCC 12 copies
 * VMLADAVA sums between registers ("Te": sums take even registers).
 * VMOV Qd[2], Qd[0], Rt, Rt2 puts Rt in lane 0 and Rt2 in lane 2. */
static inline mcugen_i32x4 mcugen_mve_pw2x2(const int8_t *x0, const int8_t *x1, const int8_t **w, const int32_t *bias,
                                            int32_t n)
{
    mcugen_i32x4 r;
    mcugen_i8x16 a, b, u, v;
    int32_t s00, s01, s10, s11;
    __asm__ volatile(
        "ldrd %[s00], %[s01], [%[bias]]\n\t"
        "ldrd %[s10], %[s11], [%[bias]]\n\t"
        "dlstp.8 lr, %[n]\n"
        "1:\n\t"
        "vldrb.8 %q[a], [%[x0]], #16\n\t"
        "vldrb.8 %q[b], [%[x1]], #16\n\t"
        "vldrb.8 %q[u], [%[w]], #16\n\t"
        "vldrb.8 %q[v], [%[w]], #16\n\t"
        "vmladava.s8 %[s00], %q[a], %q[u]\n\t"
        "vmladava.s8 %[s10], %q[b], %q[u]\n\t"
        "vmladava.s8 %[s01], %q[a], %q[v]\n\t"
        "vmladava.s8 %[s11], %q[b], %q[v]\n\t"
        "letp lr, 1b\n\t"
        "vmov %q[r][2], %q[r][0], %[s00], %[s10]\n\t"
        "vmov %q[r][3], %q[r][1], %[s01], %[s11]\n\t"
        : [r] "=&w"(r), [a] "=&w"(a), [b] "=&w"(b), [u] "=&w"(u), [v] "=&w"(v), [s00] "=&Te"(s00),
          [s01] "=&Te"(s01), [s10] "=&Te"(s10), [s11] "=&Te"(s11), [x0] "+r"(x0), [x1] "+r"(x1), [w] "+r"(*w)
        : [bias] "r"(bias), [n] "r"(n)
        : "lr", "memory");
    return r;
}

/* mcugen_mve_pw2x2 for two pixel pairs sharing a channel pair: pixels x, x + n, x + 2n, x + 3n
 * (n bytes each) -> *r0 (the first two), *r1 (the other two); *w moves on once. One asm block
 * keeps the eight pointers and sums out of the caller's registers (GCC 12 spilled them). */
static inline void mcugen_mve_pw4x2(const int8_t *x, const int8_t **w, const int32_t *bias, int32_t n,
                                    mcugen_i32x4 *r0, mcugen_i32x4 *r1)
{
    mcugen_i32x4 y0, y1;
    mcugen_i8x16 a, b, u, v;
    int32_t s00, s01, s10, s11;
    const int8_t *p0, *p1, *wt;
    __asm__ volatile(
        "ldrd %[s00], %[s01], [%[bias]]\n\t"
        "ldrd %[s10], %[s11], [%[bias]]\n\t"
        "mov %[p0], %[x]\n\t"
        "add %[p1], %[x], %[n]\n\t"
        "mov %[wt], %[w]\n\t"
        "dlstp.8 lr, %[n]\n"
        "1:\n\t"
        "vldrb.8 %q[a], [%[p0]], #16\n\t"
        "vldrb.8 %q[b], [%[p1]], #16\n\t"
        "vldrb.8 %q[u], [%[w]], #16\n\t"
        "vldrb.8 %q[v], [%[w]], #16\n\t"
        "vmladava.s8 %[s00], %q[a], %q[u]\n\t"
        "vmladava.s8 %[s10], %q[b], %q[u]\n\t"
        "vmladava.s8 %[s01], %q[a], %q[v]\n\t"
        "vmladava.s8 %[s11], %q[b], %q[v]\n\t"
        "letp lr, 1b\n\t"
        "vmov %q[y0][2], %q[y0][0], %[s00], %[s10]\n\t"
        "vmov %q[y0][3], %q[y0][1], %[s01], %[s11]\n\t"
        "ldrd %[s00], %[s01], [%[bias]]\n\t"
        "ldrd %[s10], %[s11], [%[bias]]\n\t"
        "add %[p0], %[x], %[n], lsl #1\n\t"
        "add %[p1], %[p0], %[n]\n\t"
        "dlstp.8 lr, %[n]\n"
        "1:\n\t"
        "vldrb.8 %q[a], [%[p0]], #16\n\t"
        "vldrb.8 %q[b], [%[p1]], #16\n\t"
        "vldrb.8 %q[u], [%[wt]], #16\n\t"
        "vldrb.8 %q[v], [%[wt]], #16\n\t"
        "vmladava.s8 %[s00], %q[a], %q[u]\n\t"
        "vmladava.s8 %[s10], %q[b], %q[u]\n\t"
        "vmladava.s8 %[s01], %q[a], %q[v]\n\t"
        "vmladava.s8 %[s11], %q[b], %q[v]\n\t"
        "letp lr, 1b\n\t"
        "vmov %q[y1][2], %q[y1][0], %[s00], %[s10]\n\t"
        "vmov %q[y1][3], %q[y1][1], %[s01], %[s11]\n\t"
        : [y0] "=&w"(y0), [y1] "=&w"(y1), [a] "=&w"(a), [b] "=&w"(b), [u] "=&w"(u), [v] "=&w"(v),
          [s00] "=&Te"(s00), [s01] "=&Te"(s01), [s10] "=&Te"(s10), [s11] "=&Te"(s11), [p0] "=&r"(p0),
          [p1] "=&r"(p1), [wt] "=&r"(wt), [w] "+r"(*w)
        : [x] "r"(x), [bias] "r"(bias), [n] "r"(n)
        : "lr", "memory");
    *r0 = y0;
    *r1 = y1;
}

/* VSHL.S32 by lanes (left shifts only here: 0..30) */
static inline mcugen_i32x4 mcugen_mve_shl32(mcugen_i32x4 a, mcugen_i32x4 n)
{
    return vshlq_s32(a, n);
}

/* VQRDMULH then VRSHL without the ties correction: ties of the divide round up, not away from
 * zero, which changes no output when a negative value clamps to act_min anyway (requant.needs_ties) */
static inline mcugen_i32x4 mcugen_mve_mbqm_up(mcugen_i32x4 acc, mcugen_i32x4 q, mcugen_i32x4 nr)
{
    return vrshlq_s32(vqrdmulhq_s32(acc, q), nr);
}

/* VQADD of the zero point, then the activation clamp: equals clamping the exact sum */
static inline mcugen_i32x4 mcugen_mve_clamp32(mcugen_i32x4 v, int32_t zp, int32_t lo, int32_t hi)
{
    return vminq_s32(vmaxq_s32(vqaddq_n_s32(v, zp), vdupq_n_s32(lo)), vdupq_n_s32(hi));
}

/* VSTRB.32 scatter: the low byte of lane i to base[offs[i]] */
static inline void mcugen_mve_scatter8(int8_t *base, mcugen_i32x4 offs, mcugen_i32x4 v)
{
    vstrbq_scatter_offset_s32(base, vreinterpretq_u32_s32(offs), v);
}

/* the same for lanes 0 and 1 only (VCTP.32 2) */
static inline void mcugen_mve_scatter8_lo2(int8_t *base, mcugen_i32x4 offs, mcugen_i32x4 v)
{
    vstrbq_scatter_offset_p_s32(base, vreinterpretq_u32_s32(offs), v, vctp32q(2));
}
#else
#include "mcugen_mve_emul.h"
#endif

#endif
