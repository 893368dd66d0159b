/* Vector math for the AVX2+FMA kernels: 8 floats at a time.
 *
 * Measured accuracy (tools/ulp_sweep --step 13: every 13th float bit
 * pattern, 330 million inputs per function spread over the whole float
 * range, against a double-precision reference; errors in ulp of the
 * correctly rounded float result, denormal results in units of 2^-149):
 *   exp          1.004 ulp  (bound 2)
 *   log          0.809 ulp  (bound 4)
 *   sigmoid      1.461 ulp  (bound 2)
 *   log_sigmoid  1.911 ulp  (bound 4)
 *   sincos_2pi   8.3e-8 absolute over all 2^23 Philox uniforms
 * `ulp_sweep --full` checks all 2^32 inputs (about 2.5 hours on one core);
 * `ulp_sweep` alone (every 97th) runs in a minute, CI every 997th.
 * Special values follow C99 Annex F: exp(-inf) = 0, exp(+inf) = +inf,
 * exp(x > 88.7228) = +inf, exp(x < -103.97) = 0 (denormal results in
 * between are rounded once); log(0) = -inf, log(x < 0) = NaN, log(+inf) =
 * +inf, denormal inputs are scaled exactly; NaN propagates everywhere.
 * sigmoid(+-100) = 1 / 3.7e-44 and log_sigmoid(+-100) = -3.7e-44 / -100,
 * all finite and as exact as float allows.
 *
 * The inline functions need -mavx2 -mfma; the array entry points below
 * (vecmath_avx2.c) are callable from any translation unit once
 * balm_isa_supported(BALM_ISA_AVX2) says so. */
#ifndef BALM_VECMATH_AVX2_H
#define BALM_VECMATH_AVX2_H

#include <stddef.h>
#include <stdint.h>

/* y[i] = f(x[i]) for i < n, over the vector functions below; any n, any
 * alignment, no access past x[n-1] / y[n-1]. For tests and tools/ulp_sweep. */
void balm_vexp_f32_avx2(size_t n, const float *x, float *y);
void balm_vlog_f32_avx2(size_t n, const float *x, float *y);
void balm_vsigmoid_f32_avx2(size_t n, const float *x, float *y);
void balm_vlogsigmoid_f32_avx2(size_t n, const float *x, float *y);
/* c[i] = cos(2 pi u[i]), s[i] = sin(2 pi u[i]) for u in [0, 1]. */
void balm_vsincos2pi_f32_avx2(size_t n, const float *u, float *s, float *c);
/* out[i] = the Philox uniform of element offset + i (grad_avx2.c's vector
 * generator; must equal balm_uniform bit for bit). */
void balm_vuniform_f32_avx2(uint64_t seed, uint64_t offset, size_t n, float *out);

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#define BALM_V8(x) _mm256_set1_ps(x)

/* ------------------------------------------------------------- tails */
/* A lane mask with the first `rem` (0..8) lanes on, for maskload/store. */
static inline __m256i balm_tail_mask(size_t rem)
{
    static const int32_t tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(tab + 8 - rem));
}

/* Horizontal sum of 4 doubles. */
static inline double balm_hsum_pd(__m256d v)
{
    __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
    lo = _mm_add_pd(lo, hi);
    return _mm_cvtsd_f64(_mm_add_sd(lo, _mm_unpackhi_pd(lo, lo)));
}

/* Add the 8 floats of v, widened without rounding, to two double sums. */
static inline void balm_acc_pd(__m256 v, __m256d *lo, __m256d *hi)
{
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

/* --------------------------------------------------------------- exp */
/* exp(x) = 2^n exp(r), n = round(x log2 e), r = x - n ln2 with a Cody-Waite
 * split (ln2_hi has 9 significant bits, so n*ln2_hi and the subtraction are
 * exact), exp(r) by the Cephes degree-7 expansion on |r| <= ln2/2. 2^n is
 * applied as two factors so that results between 2^-149 and 2^-126 round
 * only once and n up to 128 overflows to +inf correctly. */
static inline __m256 balm_exp8(__m256 x)
{
    /* max(lo, x)/min(hi, .) keep NaN: the second operand is returned when
     * either is NaN. Outside [-104, 89] the result is 0 or inf anyway. */
    x = _mm256_min_ps(BALM_V8(89.0f), _mm256_max_ps(BALM_V8(-104.0f), x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, BALM_V8(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, BALM_V8(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, BALM_V8(-2.12194440e-4f), r);
    __m256 p = BALM_V8(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, BALM_V8(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, BALM_V8(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, BALM_V8(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, BALM_V8(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, BALM_V8(5.0000001201E-1f));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, r);
    p = _mm256_add_ps(p, BALM_V8(1.0f));
    __m256i ni = _mm256_cvtps_epi32(n); /* NaN lanes: any value, p is NaN */
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* --------------------------------------------------------------- log */
/* log(2^e (1 + f)) for f in [sqrt(1/2) - 1, sqrt(2) - 1): the Cephes
 * polynomial by Estrin's scheme (a 4-FMA-deep chain instead of Horner's 8,
 * which is what bounds the throughput of the kernels using it) and the
 * two-part ln 2. Shared by the full log and KL's log of normal p. */
static inline __m256 balm_log_core_avx2(__m256 f, __m256 e)
{
    __m256 z = _mm256_mul_ps(f, f);
    __m256 z2 = _mm256_mul_ps(z, z);
    __m256 q0 = _mm256_fmadd_ps(BALM_V8(-2.4999993993E-1f), f, BALM_V8(3.3333331174E-1f));
    __m256 q1 = _mm256_fmadd_ps(BALM_V8(-1.6668057665E-1f), f, BALM_V8(2.0000714765E-1f));
    __m256 q2 = _mm256_fmadd_ps(BALM_V8(-1.2420140846E-1f), f, BALM_V8(1.4249322787E-1f));
    __m256 q3 = _mm256_fmadd_ps(BALM_V8(-1.1514610310E-1f), f, BALM_V8(1.1676998740E-1f));
    __m256 r0 = _mm256_fmadd_ps(q1, z, q0);
    __m256 r1 = _mm256_fmadd_ps(BALM_V8(7.0376836292E-2f), z, q3);
    r1 = _mm256_fmadd_ps(r1, z, q2);
    __m256 y = _mm256_fmadd_ps(r1, z2, r0);
    y = _mm256_mul_ps(_mm256_mul_ps(y, f), z);
    y = _mm256_fmadd_ps(e, BALM_V8(-2.12194440e-4f), y);
    y = _mm256_fmadd_ps(z, BALM_V8(-0.5f), y);
    __m256 r = _mm256_add_ps(f, y);
    return _mm256_fmadd_ps(e, BALM_V8(0.693359375f), r);
}

/* log(x) = e ln2 + log(m), m in [sqrt(1/2), sqrt(2)), log(1+f) = f - f^2/2 +
 * f^3 P(f) (Cephes logf), e ln2 split hi/lo. balm_log8_core takes x > 0
 * normal and finite and subtracts `ebias` from its exponent; balm_log8_pos also
 * takes denormals (scaled by 2^23 first) and 0 (a finite garbage value: the
 * caller masks it); balm_log8 handles every input. */
static inline __m256 balm_log8_core(__m256 xs, __m256 ebias)
{
    __m256i xi = _mm256_castps_si256(xs);
    /* Exponent and mantissa in [0.5, 1). */
    __m256i ei = _mm256_sub_epi32(_mm256_srli_epi32(xi, 23), _mm256_set1_epi32(126));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(xi, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F000000)));
    __m256 e = _mm256_sub_ps(_mm256_cvtepi32_ps(ei), ebias);
    /* m < sqrt(1/2): use 2m - 1 and e - 1 (both exact). */
    __m256 small = _mm256_cmp_ps(m, BALM_V8(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm256_sub_ps(e, _mm256_and_ps(small, BALM_V8(1.0f)));
    __m256 f = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), BALM_V8(1.0f));
    return balm_log_core_avx2(f, e);
}

static inline __m256 balm_log8_pos(__m256 x)
{
    __m256 isden = _mm256_cmp_ps(x, BALM_V8(1.17549435e-38f), _CMP_LT_OQ);
    __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, BALM_V8(8388608.0f)), isden);
    return balm_log8_core(xs, _mm256_and_ps(isden, BALM_V8(23.0f)));
}

static inline __m256 balm_log8(__m256 x)
{
    __m256 r = balm_log8_pos(x);
    /* x = 0 -> -inf; x < 0 or NaN -> NaN; x = +inf -> +inf. */
    const __m256 inf = BALM_V8(INFINITY);
    r = _mm256_blendv_ps(r, _mm256_sub_ps(_mm256_setzero_ps(), inf), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ));
    r = _mm256_blendv_ps(r, BALM_V8(NAN), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NGE_UQ));
    r = _mm256_blendv_ps(r, inf, _mm256_cmp_ps(x, inf, _CMP_EQ_OQ));
    return r;
}

/* log1p(y) for y >= 0 (or NaN): log(1+y) plus the rounding of 1+y divided
 * by 1+y (Goldberg's correction); exact y for tiny y. */
static inline __m256 balm_log1p8_pos(__m256 y)
{
    __m256 u = _mm256_add_ps(BALM_V8(1.0f), y); /* in [1, 2]: the core suffices */
    __m256 corr = _mm256_div_ps(_mm256_sub_ps(y, _mm256_sub_ps(u, BALM_V8(1.0f))), u);
    return _mm256_add_ps(balm_log8_core(u, _mm256_setzero_ps()), corr); /* NaN y: NaN corr */
}

/* ----------------------------------------------------------- sigmoid */
/* num / (1 + t) for t in [0, 1] with the rounding of 1 + t and of the
 * quotient corrected: 1 + t = den + lo exactly (Fast2Sum), the remainder
 * num - q (den + lo) comes from one FMA, and its quotient needs only a
 * rough reciprocal. Leaves about the error of t plus half an ulp. */
static inline __m256 balm_div1p8(__m256 num, __m256 t)
{
    __m256 den = _mm256_add_ps(BALM_V8(1.0f), t);
    __m256 lo = _mm256_sub_ps(t, _mm256_sub_ps(den, BALM_V8(1.0f)));
    __m256 q = _mm256_div_ps(num, den);
    __m256 rem = _mm256_fnmadd_ps(q, lo, _mm256_fnmadd_ps(q, den, num));
    return _mm256_fmadd_ps(rem, _mm256_rcp_ps(den), q);
}

/* With t = exp(-|x|) in (0, 1]: sigmoid = 1/(1+t) for x >= 0 and t/(1+t)
 * for x < 0, so no large quotient is ever formed; +-inf give 1 and 0. */
static inline __m256 balm_sigmoid8(__m256 x)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 t = balm_exp8(_mm256_xor_ps(_mm256_and_ps(x, absmask), _mm256_set1_ps(-0.0f)));
    __m256 num = _mm256_blendv_ps(BALM_V8(1.0f), t, x); /* sign bit of x picks t */
    return balm_div1p8(num, t);
}

/* log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)). */
static inline __m256 balm_logsigmoid8(__m256 x)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 t = balm_exp8(_mm256_xor_ps(_mm256_and_ps(x, absmask), _mm256_set1_ps(-0.0f)));
    /* min(0, x) returns x for NaN x (second operand). */
    return _mm256_sub_ps(_mm256_min_ps(_mm256_setzero_ps(), x), balm_log1p8_pos(t));
}

/* ------------------------------------------------------------ sincos */
/* sin and cos of 2 pi u for u in [0, 1] (the Box-Muller angle). The
 * reduction is exact in u: q = round(4u), r = u - q/4 in [-1/8, 1/8], so
 * a = 2 pi r in [-pi/4, pi/4]; Taylor series to a^11 / a^12 (truncation
 * below 3e-10), then the quadrant q mod 4 swaps and negates. */
static inline void balm_sincos2pi8(__m256 u, __m256 *s, __m256 *c)
{
    __m256 q = _mm256_round_ps(_mm256_mul_ps(u, BALM_V8(4.0f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(q, BALM_V8(0.25f), u);
    __m256 a = _mm256_mul_ps(r, BALM_V8(6.28318530717958648f));
    __m256 a2 = _mm256_mul_ps(a, a);
    __m256 ps = BALM_V8(-2.5052108385e-8f);
    ps = _mm256_fmadd_ps(ps, a2, BALM_V8(2.7557319224e-6f));
    ps = _mm256_fmadd_ps(ps, a2, BALM_V8(-1.9841269841e-4f));
    ps = _mm256_fmadd_ps(ps, a2, BALM_V8(8.3333333333e-3f));
    ps = _mm256_fmadd_ps(ps, a2, BALM_V8(-1.6666666667e-1f));
    ps = _mm256_mul_ps(ps, a2);
    __m256 sn = _mm256_fmadd_ps(ps, a, a);
    __m256 pc = BALM_V8(2.0876756988e-9f);
    pc = _mm256_fmadd_ps(pc, a2, BALM_V8(-2.7557319224e-7f));
    pc = _mm256_fmadd_ps(pc, a2, BALM_V8(2.4801587302e-5f));
    pc = _mm256_fmadd_ps(pc, a2, BALM_V8(-1.3888888889e-3f));
    pc = _mm256_fmadd_ps(pc, a2, BALM_V8(4.1666666667e-2f));
    pc = _mm256_fmadd_ps(pc, a2, BALM_V8(-0.5f));
    __m256 cs = _mm256_fmadd_ps(pc, a2, BALM_V8(1.0f));
    __m256i qi = _mm256_cvtps_epi32(q);
    /* Odd quadrant: swap sin and cos. */
    __m256 swap = _mm256_castsi256_ps(_mm256_slli_epi32(qi, 31));
    __m256 s0 = _mm256_blendv_ps(sn, cs, swap);
    __m256 c0 = _mm256_blendv_ps(cs, sn, swap);
    /* sin negated for q mod 4 in {2, 3}; cos for {1, 2}. */
    __m256 sneg = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_srli_epi32(qi, 1), 31));
    __m256 cneg = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_xor_si256(qi, _mm256_srli_epi32(qi, 1)), 31));
    *s = _mm256_xor_ps(s0, sneg);
    *c = _mm256_xor_ps(c0, cneg);
}

#endif /* __AVX2__ && __FMA__ */
#endif
