/* KL divergence sums of GRM, AVX-512. Terms in float with the vector log /
 * sigmoid / log-sigmoid, accumulated in double; the scalar twin does
 * everything in double, so the sums agree to about 1e-7 of the sum of the
 * terms' magnitudes. Tails use masked loads: the masked-off lanes load zeros
 * whose terms are exactly 0 (p = 0 is blended out; f = u = 0 gives p = q). */
#include "kernels.h"
#include "x86/vecmath_avx512.h"

/* p (log p - logq), exactly 0 where p = 0 whatever logq is (0 * inf = NaN).
 * The careful path: blocks holding a zero or denormal p, and the tail. */
static inline __m512 cls_terms(__m512 p, __m512 lq)
{
    __mmask16 nz = _mm512_cmp_ps_mask(p, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    return _mm512_maskz_mul_ps(nz, p, _mm512_sub_ps(balm512_log(p), lq));
}

/* log(p) for normal p in (0, 1]. Reduction without compares: subtracting
 * the bits of sqrt(1/2) makes the exponent field e = floor(log2(p /
 * sqrt(1/2))), the mantissa put back over sqrt(1/2) is m in [sqrt(1/2),
 * sqrt(2)); its top 4 bits pick one of 16 intervals with centre c (c = 1 for
 * the two intervals around 1, [0.957, 1.039), so log(1) = 0 exactly and
 * values near 1 keep their relative accuracy), r = m/c - 1 by one FMA
 * (|r| < 0.044), log(m) = log(c) + log1p(r) by the Taylor series to r^5
 * (truncation < r^6/6, 0.4 ulp). Worst error 1.6 ulp (every 3rd float in
 * [2^-126, 1] against double) where the Cephes core has 0.81.
 * invc are float(1/c), logc = -log(invc) rounded to float (numpy, double).
 * Zero, denormal or non-finite p give garbage: the caller checks. */
static inline __m512 log16_normal(__m512 p)
{
    static const float invc[16] = {
        1.383639216e+00f, 1.326292038e+00f, 1.273509383e+00f, 1.224767089e+00f,
        1.179618478e+00f, 1.137680054e+00f, 1.098621368e+00f, 1.062155485e+00f,
        1.000000000e+00f, 1.000000000e+00f, 9.341747761e-01f, 8.826409578e-01f,
        8.364956379e-01f, 7.949356437e-01f, 7.573098540e-01f, 7.230848670e-01f};
    static const float logc[16] = {
        -3.247171342e-01f, -2.823871076e-01f, -2.417763770e-01f, -2.027506977e-01f,
        -1.651910692e-01f, -1.289911419e-01f, -9.405609220e-02f, -6.030032039e-02f,
        0.0f, 0.0f, 6.809173524e-02f, 1.248367801e-01f,
        1.785339713e-01f, 2.294941247e-01f, 2.779828012e-01f, 3.242286742e-01f};
    const __m512i off = _mm512_set1_epi32(0x3f3504f3); /* bits of 0.70710677f */
    __m512i t = _mm512_sub_epi32(_mm512_castps_si512(p), off);
    __m512 e = balm512_cvtepi32_ps(balm512_srai_epi32(t, 23));
    __m512 m = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_and_si512(t, _mm512_set1_epi32(0x007FFFFF)), off));
    __m512i idx = _mm512_and_si512(_mm512_srli_epi32(t, 19), _mm512_set1_epi32(15));
    __m512 ic = _mm512_permutexvar_ps(idx, _mm512_loadu_ps(invc));
    __m512 lc = _mm512_permutexvar_ps(idx, _mm512_loadu_ps(logc));
    __m512 r = _mm512_fmadd_ps(m, ic, BALM_V16(-1.0f));
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 a = _mm512_fmadd_ps(BALM_V16(1.0f / 3.0f), r, BALM_V16(-0.5f));
    __m512 b = _mm512_fmadd_ps(BALM_V16(0.2f), r, BALM_V16(-0.25f));
    __m512 y = _mm512_fmadd_ps(_mm512_fmadd_ps(b, r2, a), r2, r); /* log1p(r) */
    /* e ln2 + log(c) + y, ln2 split (e * 0.693359375 is exact). */
    __m512 hi = _mm512_fmadd_ps(e, BALM_V16(0.693359375f), lc);
    return _mm512_add_ps(hi, _mm512_fmadd_ps(e, BALM_V16(-2.12194440e-4f), y));
}

/* Elements per block: terms are summed in float within a block (8 per lane
 * and accumulator, <= 8 * 2^-24 of the block's magnitude) and widened to
 * double once per block. */
#define KL_BLOCK 256

/* Adds the block's sum to *a and returns 1, or returns 0 (adding nothing)
 * if some p in it is 0 or denormal: the fast log cannot take those. */
static inline int cls_block_fast(const float *p, const float *lq, __m512d *a)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, pmin = BALM_V16(1.0f);
    for (size_t j = 0; j < KL_BLOCK; j += 32) {
        __m512 p0 = _mm512_loadu_ps(p + j), p1 = _mm512_loadu_ps(p + j + 16);
        pmin = _mm512_min_ps(pmin, _mm512_min_ps(p0, p1));
        s0 = _mm512_fmadd_ps(p0, _mm512_sub_ps(log16_normal(p0), _mm512_loadu_ps(lq + j)), s0);
        s1 = _mm512_fmadd_ps(p1, _mm512_sub_ps(log16_normal(p1), _mm512_loadu_ps(lq + j + 16)), s1);
    }
    if (_mm512_cmp_ps_mask(pmin, BALM_V16(1.17549435e-38f), _CMP_LT_OQ))
        return 0;
    *a = balm512_acc_pd(balm512_acc_pd(*a, s0), s1);
    return 1;
}

double balm_kl_cls_sum_f32_avx512(size_t N, size_t C, const float *p, const float *logq)
{
    const size_t n = N * C;
    __m512d a0 = _mm512_setzero_pd(), a1 = a0;
    size_t i = 0;
    for (; i + KL_BLOCK <= n; i += KL_BLOCK)
        if (!cls_block_fast(p + i, logq + i, &a0))
            for (size_t j = i; j < i + KL_BLOCK; j += 16)
                a1 = balm512_acc_pd(a1, cls_terms(_mm512_loadu_ps(p + j), _mm512_loadu_ps(logq + j)));
    for (; i < n; i += 16) {
        __mmask16 k = balm512_tail(n - i);
        a1 = balm512_acc_pd(a1, cls_terms(balm512_maskz_loadu_ps(k, p + i), balm512_maskz_loadu_ps(k, logq + i)));
    }
    return balm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

/* p = [sigmoid(-f), sigmoid(f)], logq = [logsigmoid(-u), logsigmoid(u)];
 * term = sum_j p_j (log p_j - logq_j). */
static inline __m512 reg_terms(__m512 f, __m512 u)
{
    __m512 p1, p0, lp1, lp0, q1, q0, lq1, lq0;
    balm512_two_class(f, &p1, &p0, &lp1, &lp0);
    balm512_two_class(u, &q1, &q0, &lq1, &lq0);
    (void)q1;
    (void)q0;
    return _mm512_add_ps(_mm512_mul_ps(p0, _mm512_sub_ps(lp0, lq0)),
                         _mm512_mul_ps(p1, _mm512_sub_ps(lp1, lq1)));
}

double balm_kl_reg_sum_f32_avx512(size_t N, const float *f, const float *u)
{
    __m512d a0 = _mm512_setzero_pd();
    for (size_t i = 0; i < N; i += 16) {
        __mmask16 k = balm512_tail(N - i);
        a0 = balm512_acc_pd(a0, reg_terms(balm512_maskz_loadu_ps(k, f + i), balm512_maskz_loadu_ps(k, u + i)));
    }
    return balm512_reduce_add_pd(a0);
}
