/* Produced by mcugen: what the fast (DSP) kernels share. On a core with the DSP extension
 * the helpers are single instructions; elsewhere mcugen_acle_emul.h gives their exact C
 * twins, so the kernels also build (and are tested) on a host. */
#ifndef MCUGEN_DSP_H
#define MCUGEN_DSP_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>

static inline int32_t mcugen_sxtb16(int32_t x)
{
    return __sxtb16(x);
}

static inline int32_t mcugen_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline int32_t mcugen_smlad(int32_t a, int32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

static inline int32_t mcugen_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return __smlabb(a, b, acc);
}

static inline int32_t mcugen_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return __smlatt(a, b, acc);
}

static inline int32_t mcugen_smlabt(int32_t a, int32_t b, int32_t acc)
{
    return __smlabt(a, b, acc);
}

static inline int32_t mcugen_smlatb(int32_t a, int32_t b, int32_t acc)
{
    return __smlatb(a, b, acc);
}

/* SMMLAR: acc + the high word of a*b + 2^31 (the scaled output stage) */
static inline int32_t mcugen_smmlar(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

/* SMMLA: acc + the high word of a*b, truncated (conv_dsp's uniform-shift stage puts the
 * rounding in acc) */
static inline int32_t mcugen_smmla(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smmla %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

/* PKHBT a, b, LSL #16: the low halfword of a under the low halfword of b (GCC 12 builds the
 * plain C form from UXTH and ORR) */
static inline int32_t mcugen_pkhbt(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* PKHTB a, b, ASR #16: the high halfword of b under the high halfword of a */
static inline int32_t mcugen_pkhtb(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline int32_t mcugen_ssat8(int32_t x)
{
    /* The builtin behind __ssat: GCC's macro assigns its unsigned result to an int32_t, which -Wconversion flags */
    return (int32_t)__builtin_arm_ssat(x, 8);
}
#else
#include "mcugen_acle_emul.h"
#endif

/* Four bytes from any address as one word (a single LDR on Armv7E-M and Armv8-M) */
static inline int32_t mcugen_read32(const void *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Two words of a word-aligned array, lo = (*p)[0] and hi = (*p)[1], advancing *p past them:
 * one LDRD with writeback (GCC splits 64-bit loads into two LDRs when tuning for Cortex-M) */
typedef struct {
    int32_t lo;
    int32_t hi;
} mcugen_pair;

static inline mcugen_pair mcugen_next_pair(const int32_t **p)
{
    mcugen_pair r;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    __asm__("ldrd %0, %1, [%2], #8" : "=&r"(r.lo), "=&r"(r.hi), "+r"(*p) : "m"(*(const int32_t(*)[2]) * p));
#else
    r.lo = (*p)[0];
    r.hi = (*p)[1];
    *p += 2;
#endif
    return r;
}

/* Stores lo, hi at (*p)[0], (*p)[1] and advances *p past them: one STRD with writeback */
static inline void mcugen_put_pair(int32_t **p, int32_t lo, int32_t hi)
{
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    __asm__("strd %2, %3, [%0], #8" : "+r"(*p), "=m"(*(int32_t(*)[2]) * p) : "r"(lo), "r"(hi));
#else
    (*p)[0] = lo;
    (*p)[1] = hi;
    *p += 2;
#endif
}

/* 2 pixels x 4 channels of SMLAD (conv_dsp's GEMM): a[p][c] += x[p] . w[c] on int16 pairs, for
 * `words` words of each pixel (*x: pixel 0's word, pixel 1's word, ...) and of each channel
 * (*w: 4 words per word of x), both pointers advanced past them. `words` must be a constant:
 * one assembly block of 3 LDRD and 8 SMLAD per word, as GCC 12 otherwise shuffles the 8
 * sums between registers at every word (in C when not optimizing, which leaves too few
 * registers for it). */
typedef struct {
    int32_t a00, a01, a02, a03;
    int32_t a10, a11, a12, a13;
} mcugen_acc2x4;

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__OPTIMIZE__)
__attribute__((always_inline)) static inline void mcugen_mac2x4(mcugen_acc2x4 *a, const int32_t **x,
                                                                const int32_t **w, int32_t words)
{
    /* 14 registers: the 13 operands pinned to all but r7, and r7 saved around the block
     * (left to its allocator, GCC 12 sometimes found no 14th: 'impossible constraints') */
    register int32_t a00 __asm__("r0"), a01 __asm__("r1"), a02 __asm__("r2"), a03 __asm__("r3");
    register int32_t a10 __asm__("r4"), a11 __asm__("r5"), a12 __asm__("r6"), a13 __asm__("r8");
    register const int32_t *px __asm__("r9");
    register const int32_t *pw __asm__("r10");
    register int32_t x0 __asm__("r11"), x1 __asm__("r12"), wa __asm__("lr");
    a00 = a->a00;
    a01 = a->a01;
    a02 = a->a02;
    a03 = a->a03;
    a10 = a->a10;
    a11 = a->a11;
    a12 = a->a12;
    a13 = a->a13;
    px = *x;
    pw = *w;
    __asm__("push {r7}\n\t"
            ".rept %c[n]\n\t"
            "ldrd %[x0], %[x1], [%[x]], #8\n\t"
            "ldrd %[wa], r7, [%[w]], #8\n\t"
            "smlad %[a00], %[x0], %[wa], %[a00]\n\t"
            "smlad %[a10], %[x1], %[wa], %[a10]\n\t"
            "smlad %[a01], %[x0], r7, %[a01]\n\t"
            "smlad %[a11], %[x1], r7, %[a11]\n\t"
            "ldrd %[wa], r7, [%[w]], #8\n\t"
            "smlad %[a02], %[x0], %[wa], %[a02]\n\t"
            "smlad %[a12], %[x1], %[wa], %[a12]\n\t"
            "smlad %[a03], %[x0], r7, %[a03]\n\t"
            "smlad %[a13], %[x1], r7, %[a13]\n\t"
            ".endr\n\t"
            "pop {r7}"
            : [a00] "+r"(a00), [a01] "+r"(a01), [a02] "+r"(a02), [a03] "+r"(a03), [a10] "+r"(a10),
              [a11] "+r"(a11), [a12] "+r"(a12), [a13] "+r"(a13), [x] "+r"(px), [w] "+r"(pw), [x0] "=&r"(x0),
              [x1] "=&r"(x1), [wa] "=&r"(wa)
            : [n] "i"(words)
            : "memory");
    a->a00 = a00;
    a->a01 = a01;
    a->a02 = a02;
    a->a03 = a03;
    a->a10 = a10;
    a->a11 = a11;
    a->a12 = a12;
    a->a13 = a13;
    *x = px;
    *w = pw;
}
#else
static inline void mcugen_mac2x4(mcugen_acc2x4 *a, const int32_t **x, const int32_t **w, int32_t words)
{
    int32_t j;
    for (j = 0; j < words; ++j) {
        const int32_t x0 = (*x)[0], x1 = (*x)[1];
        const int32_t *const v = *w;
        a->a00 = mcugen_smlad(x0, v[0], a->a00);
        a->a01 = mcugen_smlad(x0, v[1], a->a01);
        a->a02 = mcugen_smlad(x0, v[2], a->a02);
        a->a03 = mcugen_smlad(x0, v[3], a->a03);
        a->a10 = mcugen_smlad(x1, v[0], a->a10);
        a->a11 = mcugen_smlad(x1, v[1], a->a11);
        a->a12 = mcugen_smlad(x1, v[2], a->a12);
        a->a13 = mcugen_smlad(x1, v[3], a->a13);
        *x += 2;
        *w += 4;
    }
}
#endif

/* Arithmetic shift right (the portable form; compilers emit one ASR) */
static inline int32_t mcugen_asr(int32_t x, int32_t n)
{
    return x >= 0 ? x >> n : ~(~x >> n);
}

static inline int32_t mcugen_max(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

static inline int32_t mcugen_min(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

#endif
