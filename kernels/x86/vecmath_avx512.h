/* Vector math for the AVX-512 kernels: 16 floats at a time.
 *
 * The same algorithms, constants and operation order as vecmath_avx2.h
 * (Cephes-style exp with a Cody-Waite reduction, Cephes log by Estrin's
 * scheme, compensated division for the sigmoids, exact reduction of the
 * Box-Muller angle in u), so the ISAs agree lane for lane up to the rough
 * reciprocal in that division (rcp14 here, rcp there). Measured against
 * double precision (a sweep of 708 million float bit patterns spread over
 * the whole range, native AVX-512; errors in ulp of the correctly rounded
 * float result, denormals in units of 2^-149):
 *   exp 1.01 ulp, log 0.81 ulp, sigmoid 1.47 ulp, log-sigmoid 1.94 ulp,
 *   sincos(2 pi u) 8.2e-8 absolute (1.38 * 2^-24) on the Philox uniforms;
 * the SIMDe build gives the same bounds (16.8 million inputs).
 * Special values as C99 Annex F: exp(-inf) = 0, exp(x > 88.72) = +inf,
 * log(0) = -inf, log(x < 0) = NaN, denormal inputs exact-scaled, NaN
 * propagates. Only the blends differ from AVX2: opmasks instead of sign-bit
 * blends. No scalef: SIMDe emulates it through an approximate exp2, and
 * native and emulated results must match. */
#ifndef BALM_VECMATH_AVX512_H
#define BALM_VECMATH_AVX512_H

#include <math.h>
#include "x86/intrin_avx512.h"

static inline __m512 balm512_neg(__m512 x)
{
    return _mm512_xor_ps(x, BALM_V16(-0.0f));
}
static inline __m512 balm512_abs(__m512 x)
{
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
}
/* Lanes whose sign bit is set (negative numbers, -0, negative NaNs). */
static inline __mmask16 balm512_signmask(__m512 x)
{
    return _mm512_test_epi32_mask(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN));
}

/* exp(x) = 2^n exp(r), n = round(x log2 e), r = x - n ln2 (Cody-Waite,
 * exact), exp(r) by the Cephes degree-7 expansion; 2^n applied as two
 * factors so denormal results round once and n = 128 overflows to inf. */
static inline __m512 balm512_exp(__m512 x)
{
    /* max/min return the second operand for NaN: NaN stays NaN. */
    x = _mm512_min_ps(BALM_V16(89.0f), _mm512_max_ps(BALM_V16(-104.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, BALM_V16(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, BALM_V16(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, BALM_V16(-2.12194440e-4f), r);
    __m512 p = BALM_V16(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, BALM_V16(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, BALM_V16(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, BALM_V16(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, BALM_V16(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, BALM_V16(5.0000001201E-1f));
    __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, r);
    p = _mm512_add_ps(p, BALM_V16(1.0f));
    __m512i ni = balm512_cvtps_epi32(n); /* NaN lanes: any value, p is NaN */
    __m512i n1 = balm512_srai_epi32(ni, 1);
    __m512i n2 = _mm512_sub_epi32(ni, n1);
    __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, _mm512_set1_epi32(127)), 23));
    __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, _mm512_set1_epi32(127)), 23));
    return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
}

/* log(x) = e ln2 + log(m), m in [sqrt(1/2), sqrt(2)), Cephes logf
 * polynomial by Estrin's scheme (as vecmath_avx2.h). balm512_log_core takes
 * x > 0 normal and finite and subtracts ebias from its exponent;
 * balm512_log scales denormals by 2^23 first and patches the specials. */
static inline __m512 balm512_log_core(__m512 xs, __m512 ebias)
{
    __m512i xi = _mm512_castps_si512(xs);
    __m512i ei = _mm512_sub_epi32(_mm512_srli_epi32(xi, 23), _mm512_set1_epi32(126));
    __m512 m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(xi, _mm512_set1_epi32(0x007FFFFF)),
                                                   _mm512_set1_epi32(0x3F000000)));
    __m512 e = _mm512_sub_ps(balm512_cvtepi32_ps(ei), ebias);
    /* m < sqrt(1/2): use 2m - 1 and e - 1 (both exact). */
    __mmask16 small = _mm512_cmp_ps_mask(m, BALM_V16(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm512_mask_sub_ps(e, small, e, BALM_V16(1.0f));
    __m512 f = _mm512_sub_ps(_mm512_mask_add_ps(m, small, m, m), BALM_V16(1.0f));
    __m512 z = _mm512_mul_ps(f, f), z2 = _mm512_mul_ps(z, z);
    __m512 q0 = _mm512_fmadd_ps(BALM_V16(-2.4999993993E-1f), f, BALM_V16(3.3333331174E-1f));
    __m512 q1 = _mm512_fmadd_ps(BALM_V16(-1.6668057665E-1f), f, BALM_V16(2.0000714765E-1f));
    __m512 q2 = _mm512_fmadd_ps(BALM_V16(-1.2420140846E-1f), f, BALM_V16(1.4249322787E-1f));
    __m512 q3 = _mm512_fmadd_ps(BALM_V16(-1.1514610310E-1f), f, BALM_V16(1.1676998740E-1f));
    __m512 r0 = _mm512_fmadd_ps(q1, z, q0);
    __m512 r1 = _mm512_fmadd_ps(BALM_V16(7.0376836292E-2f), z, q3);
    r1 = _mm512_fmadd_ps(r1, z, q2);
    __m512 y = _mm512_fmadd_ps(r1, z2, r0);
    y = _mm512_mul_ps(_mm512_mul_ps(y, f), z);
    y = _mm512_fmadd_ps(e, BALM_V16(-2.12194440e-4f), y);
    y = _mm512_fmadd_ps(z, BALM_V16(-0.5f), y);
    __m512 r = _mm512_add_ps(f, y);
    return _mm512_fmadd_ps(e, BALM_V16(0.693359375f), r);
}

static inline __m512 balm512_log(__m512 x)
{
    __mmask16 isden = _mm512_cmp_ps_mask(x, BALM_V16(1.17549435e-38f), _CMP_LT_OQ);
    __m512 xs = _mm512_mask_mul_ps(x, isden, x, BALM_V16(8388608.0f));
    __m512 r = balm512_log_core(xs, _mm512_maskz_mov_ps(isden, BALM_V16(23.0f)));
    /* x = 0 -> -inf; x < 0 or NaN -> NaN; x = +inf -> +inf. */
    const __m512 zero = _mm512_setzero_ps(), inf = BALM_V16(INFINITY);
    r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_EQ_OQ), r, BALM_V16(-INFINITY));
    r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_NGE_UQ), r, BALM_V16(NAN));
    r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, inf, _CMP_EQ_OQ), r, inf);
    return r;
}

/* log1p(y) for y in [0, 1] or NaN: log(1+y) + ((y - ((1+y) - 1)) / (1+y));
 * 1+y is in [1, 2], so the core suffices (NaN y gives a NaN correction). */
static inline __m512 balm512_log1p_pos(__m512 y)
{
    __m512 u = _mm512_add_ps(BALM_V16(1.0f), y);
    __m512 corr = _mm512_div_ps(_mm512_sub_ps(y, _mm512_sub_ps(u, BALM_V16(1.0f))), u);
    return _mm512_add_ps(balm512_log_core(u, _mm512_setzero_ps()), corr);
}

/* num / (1 + t) for t in [0, 1] with the roundings of 1 + t and of the
 * quotient corrected (as vecmath_avx2.h): 1 + t = den + lo exactly
 * (Fast2Sum), the remainder num - q (den + lo) from two FMAs, its quotient
 * through a rough reciprocal. Leaves about the error of t plus half an ulp. */
static inline __m512 balm512_div1p(__m512 num, __m512 t)
{
    __m512 den = _mm512_add_ps(BALM_V16(1.0f), t);
    __m512 lo = _mm512_sub_ps(t, _mm512_sub_ps(den, BALM_V16(1.0f)));
    __m512 q = _mm512_div_ps(num, den);
    __m512 rem = _mm512_fnmadd_ps(q, lo, _mm512_fnmadd_ps(q, den, num));
    return _mm512_fmadd_ps(rem, balm512_rcp(den), q);
}

/* sigmoid(x) and sigmoid(-x) from one t = exp(-|x|): 1/(1+t) and t/(1+t),
 * swapped where x is negative; no overflow, +-inf give exactly 1 and 0. */
static inline void balm512_sigmoid2(__m512 x, __m512 *sp, __m512 *sn)
{
    __m512 t = balm512_exp(balm512_neg(balm512_abs(x)));
    __m512 big = balm512_div1p(BALM_V16(1.0f), t), small = balm512_div1p(t, t);
    __mmask16 neg = balm512_signmask(x);
    *sp = _mm512_mask_blend_ps(neg, big, small);
    *sn = _mm512_mask_blend_ps(neg, small, big);
}

static inline __m512 balm512_sigmoid(__m512 x)
{
    __m512 t = balm512_exp(balm512_neg(balm512_abs(x)));
    __m512 num = _mm512_mask_blend_ps(balm512_signmask(x), BALM_V16(1.0f), t);
    return balm512_div1p(num, t);
}

/* For v: sigmoid(v), sigmoid(-v), logsigmoid(v), logsigmoid(-v) from one exp
 * and one log1p of t = exp(-|v|) (logsigmoid(x) = min(x,0) - log1p(t)). */
static inline void balm512_two_class(__m512 v, __m512 *sp, __m512 *sn, __m512 *lp, __m512 *ln)
{
    __m512 av = balm512_abs(v);
    __m512 t = balm512_exp(balm512_neg(av));
    __m512 big = balm512_div1p(BALM_V16(1.0f), t), small = balm512_div1p(t, t);
    __m512 lbig = balm512_neg(balm512_log1p_pos(t)); /* logsigmoid(|v|) */
    __m512 lsmall = _mm512_sub_ps(lbig, av);        /* logsigmoid(-|v|) */
    __mmask16 neg = balm512_signmask(v);
    *sp = _mm512_mask_blend_ps(neg, big, small);
    *sn = _mm512_mask_blend_ps(neg, small, big);
    *lp = _mm512_mask_blend_ps(neg, lbig, lsmall);
    *ln = _mm512_mask_blend_ps(neg, lsmall, lbig);
}

/* sin and cos of 2 pi u, u in [0, 1]: q = round(4u), r = u - q/4 exact in
 * [-1/8, 1/8], a = 2 pi r; Taylor to a^11 / a^12; quadrant swap and signs. */
static inline void balm512_sincos2pi(__m512 u, __m512 *s, __m512 *c)
{
    __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(u, BALM_V16(4.0f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(q, BALM_V16(0.25f), u);
    __m512 a = _mm512_mul_ps(r, BALM_V16(6.28318530717958648f));
    __m512 a2 = _mm512_mul_ps(a, a);
    __m512 ps = BALM_V16(-2.5052108385e-8f);
    ps = _mm512_fmadd_ps(ps, a2, BALM_V16(2.7557319224e-6f));
    ps = _mm512_fmadd_ps(ps, a2, BALM_V16(-1.9841269841e-4f));
    ps = _mm512_fmadd_ps(ps, a2, BALM_V16(8.3333333333e-3f));
    ps = _mm512_fmadd_ps(ps, a2, BALM_V16(-1.6666666667e-1f));
    ps = _mm512_mul_ps(ps, a2);
    __m512 sn = _mm512_fmadd_ps(ps, a, a);
    __m512 pc = BALM_V16(2.0876756988e-9f);
    pc = _mm512_fmadd_ps(pc, a2, BALM_V16(-2.7557319224e-7f));
    pc = _mm512_fmadd_ps(pc, a2, BALM_V16(2.4801587302e-5f));
    pc = _mm512_fmadd_ps(pc, a2, BALM_V16(-1.3888888889e-3f));
    pc = _mm512_fmadd_ps(pc, a2, BALM_V16(4.1666666667e-2f));
    pc = _mm512_fmadd_ps(pc, a2, BALM_V16(-0.5f));
    __m512 cs = _mm512_fmadd_ps(pc, a2, BALM_V16(1.0f));
    __m512i qi = balm512_cvtps_epi32(q);
    const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2);
    /* Odd quadrant: swap; sin negated for q mod 4 in {2, 3}, cos for {1, 2}. */
    __mmask16 odd = _mm512_test_epi32_mask(qi, one);
    __mmask16 sneg = _mm512_test_epi32_mask(qi, two);
    __mmask16 cneg = _mm512_test_epi32_mask(_mm512_xor_si512(qi, _mm512_srli_epi32(qi, 1)), one);
    __m512 s0 = _mm512_mask_blend_ps(odd, sn, cs), c0 = _mm512_mask_blend_ps(odd, cs, sn);
    *s = _mm512_mask_blend_ps(sneg, s0, balm512_neg(s0));
    *c = _mm512_mask_blend_ps(cneg, c0, balm512_neg(c0));
}

#endif
