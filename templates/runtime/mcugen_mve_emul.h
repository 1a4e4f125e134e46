/* Produced by mcugen: portable C99 twins of the Helium (MVE) helpers in mcugen_mve.h, so the
 * same kernel source runs (and is tested) on any host. Each computes exactly what its
 * instructions compute on the whole input range: sums wrap modulo 2^32 like the hardware
 * (through uint32_t, never signed overflow), saturations and roundings as the Arm ARM says. */
#ifndef MCUGEN_MVE_EMUL_H
#define MCUGEN_MVE_EMUL_H

#include <stdint.h>

typedef struct {
    int8_t v[16];
} mcugen_i8x16;

typedef struct {
    int16_t v[8];
} mcugen_i16x8;

typedef struct {
    int32_t v[4];
} mcugen_i32x4;

static inline mcugen_i8x16 mcugen_mve_ld8(const int8_t *p)
{
    mcugen_i8x16 r;
    int32_t i;
    for (i = 0; i < 16; ++i) {
        r.v[i] = p[i];
    }
    return r;
}

static inline mcugen_i32x4 mcugen_mve_dup32(int32_t x)
{
    mcugen_i32x4 r;
    int32_t i;
    for (i = 0; i < 4; ++i) {
        r.v[i] = x;
    }
    return r;
}

/* VMLADAVA.S8 */
static inline int32_t mcugen_mve_mladava8(int32_t acc, mcugen_i8x16 a, mcugen_i8x16 b)
{
    uint32_t s = (uint32_t)acc;
    int32_t i;
    for (i = 0; i < 16; ++i) {
        s += (uint32_t)((int32_t)a.v[i] * (int32_t)b.v[i]);
    }
    return (int32_t)s;
}
static inline int32_t mcugen_emul_sat(int64_t v, int32_t bits)
{
    const int64_t hi = ((int64_t)1 << (bits - 1)) - 1;
    return (int32_t)(v > hi ? hi : (v < -hi - 1 ? -hi - 1 : v));
}

/* VMLADAV.S8 */
static inline int32_t mcugen_mve_mladav8(mcugen_i8x16 a, mcugen_i8x16 b)
{
    return mcugen_mve_mladava8(0, a, b);
}

static inline mcugen_i32x4 mcugen_mve_ld32(const int32_t *p)
{
    mcugen_i32x4 r;
    int32_t i;
    for (i = 0; i < 4; ++i) {
        r.v[i] = p[i];
    }
    return r;
}

static inline mcugen_i16x8 mcugen_emul_ld8_s16(const int8_t *p)
{
    mcugen_i16x8 r;
    int32_t i;
    for (i = 0; i < 8; ++i) {
        r.v[i] = (int16_t)p[i];
    }
    return r;
}

static inline mcugen_i32x4 mcugen_emul_mullb16(mcugen_i16x8 a, mcugen_i16x8 b)
{
    mcugen_i32x4 r;
    int32_t i;
    for (i = 0; i < 4; ++i) {
        r.v[i] = (int32_t)a.v[2 * i] * (int32_t)b.v[2 * i];
    }
    return r;
}

static inline mcugen_i32x4 mcugen_emul_mullt16(mcugen_i16x8 a, mcugen_i16x8 b)
{
    mcugen_i32x4 r;
    int32_t i;
    for (i = 0; i < 4; ++i) {
        r.v[i] = (int32_t)a.v[2 * i + 1] * (int32_t)b.v[2 * i + 1];
    }
    return r;
}

/* VADD.I32: modulo 2^32 */
static inline mcugen_i32x4 mcugen_mve_add32(mcugen_i32x4 a, mcugen_i32x4 b)
{
    mcugen_i32x4 r;
    int32_t i;
    for (i = 0; i < 4; ++i) {
        r.v[i] = (int32_t)((uint32_t)a.v[i] + (uint32_t)b.v[i]);
    }
    return r;
}

/* VQRDMULH.S32 lane: saturate((2*a*b + 2^31) >> 32) */
static inline int32_t mcugen_emul_qrdmulh(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    {
        const int64_t v = 2 * (int64_t)a * (int64_t)b + ((int64_t)1 << 31);
        return (int32_t)(v >= 0 ? v >> 32 : ~(~v >> 32));
    }
}

/* VRSHL.S32 lane by a shift in -32..31 (the low byte of n, signed): a right shift rounds ties up,
 * exactly (the hardware adds the rounding constant in a wider register) */
static inline int32_t mcugen_emul_rshl(int32_t a, int32_t n)
{
    if (n >= 0) {
        return (int32_t)((uint32_t)a << n);
    }
    {
        const int64_t v = (int64_t)a + ((int64_t)1 << (-n - 1));
        return (int32_t)(v >= 0 ? v >> -n : ~(~v >> -n));
    }
}

/* VSHL.S32 by vector lane: left shifts wrap, right shifts are arithmetic */
static inline int32_t mcugen_emul_shl(int32_t a, int32_t n)
{
    if (n >= 0) {
        return (int32_t)((uint32_t)a << n);
    }
    return a >= 0 ? a >> -n : ~(~a >> -n);
}

static inline mcugen_i32x4 mcugen_mve_mbqm(mcugen_i32x4 acc, mcugen_i32x4 q, mcugen_i32x4 nr)
{
    mcugen_i32x4 r;
    int32_t i;
    for (i = 0; i < 4; ++i) {
        const int32_t y = mcugen_emul_qrdmulh(acc.v[i], q.v[i]);
        r.v[i] = mcugen_emul_rshl((int32_t)((uint32_t)y + (uint32_t)(y < 0 ? -1 : 0)), nr.v[i]);
    }
    return r;
}

static inline mcugen_i32x4 mcugen_mve_mbqm_any(mcugen_i32x4 acc, mcugen_i32x4 q, mcugen_i32x4 left, mcugen_i32x4 nr,
                                              mcugen_i32x4 fix)
{
    mcugen_i32x4 r;
    int32_t i;
    for (i = 0; i < 4; ++i) {
        const int32_t y = mcugen_emul_qrdmulh(mcugen_emul_shl(acc.v[i], left.v[i]), q.v[i]);
        r.v[i] = mcugen_emul_rshl((int32_t)((uint32_t)y + (uint32_t)((y < 0 ? -1 : 0) & fix.v[i])), nr.v[i]);
    }
    return r;
}

static inline mcugen_i16x8 mcugen_mve_out16(mcugen_i32x4 even, mcugen_i32x4 odd, int32_t zp, int32_t lo, int32_t hi)
{
    mcugen_i16x8 h;
    int32_t i;
    for (i = 0; i < 8; ++i) {
        const int32_t v = mcugen_emul_sat((int64_t)mcugen_emul_sat(i % 2 ? odd.v[i / 2] : even.v[i / 2], 16) + zp, 16);
        h.v[i] = (int16_t)(v < lo ? lo : (v > hi ? hi : v));
    }
    return h;
}

static inline void mcugen_mve_st8_s16(int8_t *p, mcugen_i16x8 v)
{
    int32_t i;
    for (i = 0; i < 8; ++i) {
        p[i] = (int8_t)v.v[i];
    }
}
/* The 9 taps' weight vectors of depthwise_mve, from its int8 or int16 (weight zero point) table */
static inline void mcugen_emul_dw_weights8(mcugen_i16x8 wv[9], const int8_t *w)
{
    int32_t k;
    for (k = 0; k < 9; ++k) {
        wv[k] = mcugen_emul_ld8_s16(w + 8 * k);
    }
}

static inline void mcugen_emul_dw_weights16(mcugen_i16x8 wv[9], const int16_t *w)
{
    int32_t k, i;
    for (k = 0; k < 9; ++k) {
        for (i = 0; i < 8; ++i) {
            wv[k].v[i] = w[8 * k + i];
        }
    }
}

static inline void mcugen_emul_dw_taps(mcugen_i32x4 *even, mcugen_i32x4 *odd, const int8_t **r0, const int8_t **r1,
                                      const int8_t **r2, int32_t c, const mcugen_i16x8 wv[9])
{
    const int8_t **rows[3];
    int32_t ky, kx;
    rows[0] = r0;
    rows[1] = r1;
    rows[2] = r2;
    for (ky = 0; ky < 3; ++ky) {
        for (kx = 0; kx < 3; ++kx) {
            const mcugen_i16x8 x = mcugen_emul_ld8_s16(*rows[ky] + kx * c);
            *even = mcugen_mve_add32(*even, mcugen_emul_mullb16(x, wv[3 * ky + kx]));
            *odd = mcugen_mve_add32(*odd, mcugen_emul_mullt16(x, wv[3 * ky + kx]));
        }
        *rows[ky] += 8;
    }
}
{% for suffix, wtype, bits in (("", "int8_t", 8), ("_w16", "int16_t", 16)) %}

static inline void mcugen_mve_dw_taps2{{ suffix }}(mcugen_i32x4 acc[4], const int8_t **r0, const int8_t **r1, const int8_t **r2,
                                       int32_t c, int32_t step, const {{ wtype }} *w)
{
    const int8_t *b0 = *r0 + step, *b1 = *r1 + step, *b2 = *r2 + step;
    mcugen_i16x8 wv[9];
    mcugen_emul_dw_weights{{ bits }}(wv, w);
    mcugen_emul_dw_taps(&acc[0], &acc[1], r0, r1, r2, c, wv);
    mcugen_emul_dw_taps(&acc[2], &acc[3], &b0, &b1, &b2, c, wv);
}

static inline void mcugen_mve_dw_taps9{{ suffix }}(mcugen_i32x4 *even, mcugen_i32x4 *odd, const int8_t *const *tap, int32_t c,
                                       const {{ wtype }} *w)
{
    mcugen_i16x8 wv[9];
    int32_t k;
    mcugen_emul_dw_weights{{ bits }}(wv, w);
    for (k = 0; k < 9; ++k) {
        const mcugen_i16x8 x = mcugen_emul_ld8_s16(tap[k] + c);
        *even = mcugen_mve_add32(*even, mcugen_emul_mullb16(x, wv[k]));
        *odd = mcugen_mve_add32(*odd, mcugen_emul_mullt16(x, wv[k]));
    }
}
{% endfor %}

static inline void mcugen_mve_mladav3x2(mcugen_i8x16 a0, mcugen_i8x16 a1, mcugen_i8x16 a2, mcugen_i8x16 b0,
                                        mcugen_i8x16 b1, mcugen_i8x16 b2, const int8_t **w, int32_t *sa, int32_t *sb)
{
    const mcugen_i8x16 w0 = mcugen_mve_ld8(*w), w1 = mcugen_mve_ld8(*w + 16), w2 = mcugen_mve_ld8(*w + 32);
    *sa = mcugen_mve_mladava8(mcugen_mve_mladava8(mcugen_mve_mladav8(a0, w0), a1, w1), a2, w2);
    *sb = mcugen_mve_mladava8(mcugen_mve_mladava8(mcugen_mve_mladav8(b0, w0), b1, w1), b2, w2);
    *w += 48;
}

static inline mcugen_i32x4 mcugen_mve_pw2x2(const int8_t *x0, const int8_t *x1, const int8_t **w, const int32_t *bias,
                                            int32_t n)
{
    mcugen_i32x4 r;
    int32_t k, i;
    r.v[0] = r.v[2] = bias[0];
    r.v[1] = r.v[3] = bias[1];
    for (k = 0; k < n; k += 16, *w += 32) {
        mcugen_i8x16 a, b, u, v;
        for (i = 0; i < 16; ++i) { /* tail predication: lanes past n take no part */
            const int32_t on = k + i < n;
            a.v[i] = on ? x0[k + i] : 0;
            b.v[i] = on ? x1[k + i] : 0;
            u.v[i] = on ? (*w)[i] : 0;
            v.v[i] = on ? (*w)[16 + i] : 0;
        }
        r.v[0] = mcugen_mve_mladava8(r.v[0], a, u);
        r.v[1] = mcugen_mve_mladava8(r.v[1], a, v);
        r.v[2] = mcugen_mve_mladava8(r.v[2], b, u);
        r.v[3] = mcugen_mve_mladava8(r.v[3], b, v);
    }
    return r;
}

static inline void mcugen_mve_pw4x2(const int8_t *x, const int8_t **w, const int32_t *bias, int32_t n,
                                    mcugen_i32x4 *r0, mcugen_i32x4 *r1)
{
    const int8_t *w2 = *w;
    *r0 = mcugen_mve_pw2x2(x, x + n, w, bias, n);
    *r1 = mcugen_mve_pw2x2(x + 2 * n, x + 3 * n, &w2, bias, n);
}

static inline mcugen_i32x4 mcugen_mve_shl32(mcugen_i32x4 a, mcugen_i32x4 n)
{
    mcugen_i32x4 r;
    int32_t i;
    for (i = 0; i < 4; ++i) {
        r.v[i] = mcugen_emul_shl(a.v[i], n.v[i]);
    }
    return r;
}

static inline mcugen_i32x4 mcugen_mve_mbqm_up(mcugen_i32x4 acc, mcugen_i32x4 q, mcugen_i32x4 nr)
{
    mcugen_i32x4 r;
    int32_t i;
    for (i = 0; i < 4; ++i) {
        r.v[i] = mcugen_emul_rshl(mcugen_emul_qrdmulh(acc.v[i], q.v[i]), nr.v[i]);
    }
    return r;
}

static inline mcugen_i32x4 mcugen_mve_clamp32(mcugen_i32x4 v, int32_t zp, int32_t lo, int32_t hi)
{
    mcugen_i32x4 r;
    int32_t i;
    for (i = 0; i < 4; ++i) {
        const int32_t s = mcugen_emul_sat((int64_t)v.v[i] + zp, 32);
        r.v[i] = s < lo ? lo : (s > hi ? hi : s);
    }
    return r;
}

static inline void mcugen_mve_scatter8(int8_t *base, mcugen_i32x4 offs, mcugen_i32x4 v)
{
    int32_t i;
    for (i = 0; i < 4; ++i) {
        base[offs.v[i]] = (int8_t)v.v[i];
    }
}

static inline void mcugen_mve_scatter8_lo2(int8_t *base, mcugen_i32x4 offs, mcugen_i32x4 v)
{
    base[offs.v[0]] = (int8_t)v.v[0];
    base[offs.v[1]] = (int8_t)v.v[1];
}

#endif
