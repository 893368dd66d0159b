/* KL divergence sums of GRM, AVX2. Terms in float with the vector log /
 * sigmoid / log-sigmoid, accumulated in double; the scalar twin does
 * everything in double, so the sums agree to about 1e-7 of the magnitude
 * sum of the terms. */
#include "kernels.h"
#include "x86/vecmath_avx2.h"

/* p (log p - logq), exactly 0 where p = 0 whatever logq is (0 * inf is
 * NaN). p is in [0, 1] (the wrapper checks), so log needs no special cases
 * beyond denormals; its value at p = 0 is masked. The careful path: blocks
 * holding a zero or denormal p, and the tail. */
static inline __m256 cls_terms(__m256 p, __m256 lq)
{
    __m256 t = _mm256_mul_ps(p, _mm256_sub_ps(balm_log8_pos(p), lq));
    return _mm256_andnot_ps(_mm256_cmp_ps(p, _mm256_setzero_ps(), _CMP_EQ_OQ), t);
}

/* log(p) for normal p in (0, 1]: the Cephes polynomial of balm_log8_core
 * on the same reduced argument, reduced without compares: subtracting the
 * bits of sqrt(1/2) makes the exponent field floor(log2(p / sqrt(1/2))),
 * and the mantissa put back over sqrt(1/2) lies in [sqrt(1/2), sqrt(2)).
 * Zero, denormal or non-finite p give garbage: the caller checks. */
static inline __m256 log8_normal(__m256 p)
{
    const __m256i off = _mm256_set1_epi32(0x3f3504f3); /* bits of 0.70710677f */
    __m256i t = _mm256_sub_epi32(_mm256_castps_si256(p), off);
    __m256 e = _mm256_cvtepi32_ps(_mm256_srai_epi32(t, 23));
    __m256 m = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_and_si256(t, _mm256_set1_epi32(0x007FFFFF)), off));
    __m256 f = _mm256_sub_ps(m, BALM_V8(1.0f));
    return balm_log_core_avx2(f, e);
}

/* Elements per block: terms are summed in float within a block (8 per lane
 * and accumulator, <= 8 * 2^-24 of the block's magnitude) and widened to
 * double once per block. */
#define KL_BLOCK 128

/* Adds the block's sum to a0/a1 and returns 1, or returns 0 (adding
 * nothing) if some p in it is 0 or denormal: the fast log cannot take those. */
static inline int cls_block_fast(const float *p, const float *lq, __m256d *a0, __m256d *a1)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, pmin = BALM_V8(1.0f);
    for (size_t j = 0; j < KL_BLOCK; j += 16) {
        __m256 p0 = _mm256_loadu_ps(p + j), p1 = _mm256_loadu_ps(p + j + 8);
        pmin = _mm256_min_ps(pmin, _mm256_min_ps(p0, p1));
        s0 = _mm256_fmadd_ps(p0, _mm256_sub_ps(log8_normal(p0), _mm256_loadu_ps(lq + j)), s0);
        s1 = _mm256_fmadd_ps(p1, _mm256_sub_ps(log8_normal(p1), _mm256_loadu_ps(lq + j + 8)), s1);
    }
    if (_mm256_movemask_ps(_mm256_cmp_ps(pmin, BALM_V8(1.17549435e-38f), _CMP_LT_OQ)))
        return 0;
    balm_acc_pd(s0, a0, a1);
    balm_acc_pd(s1, a0, a1);
    return 1;
}

double balm_kl_cls_sum_f32_avx2(size_t N, size_t C, const float *p, const float *logq)
{
    const size_t n = N * C;
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + KL_BLOCK <= n; i += KL_BLOCK)
        if (!cls_block_fast(p + i, logq + i, &a0, &a1))
            for (size_t j = i; j < i + KL_BLOCK; j += 8)
                balm_acc_pd(cls_terms(_mm256_loadu_ps(p + j), _mm256_loadu_ps(logq + j)), &a0, &a1);
    for (; i < n; i += 8) {
        /* Masked-off lanes load p = 0 and so add exact zeros. */
        __m256i msk = balm_tail_mask(n - i < 8 ? n - i : 8);
        balm_acc_pd(cls_terms(_mm256_maskload_ps(p + i, msk), _mm256_maskload_ps(logq + i, msk)), &a0, &a1);
    }
    return balm_hsum_pd(_mm256_add_pd(a0, a1));
}

/* For 8 values v: sigmoid(v), sigmoid(-v), logsigmoid(v), logsigmoid(-v)
 * from one exp and one log1p of t = exp(-|v|). */
static inline void two_class(__m256 v, __m256 *sp, __m256 *sn, __m256 *lp, __m256 *ln)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 av = _mm256_and_ps(v, absmask);
    __m256 t = balm_exp8(_mm256_sub_ps(_mm256_setzero_ps(), av));
    __m256 den = _mm256_add_ps(_mm256_set1_ps(1.0f), t);
    __m256 big = _mm256_div_ps(_mm256_set1_ps(1.0f), den); /* sigmoid(|v|) */
    __m256 small = _mm256_div_ps(t, den);                  /* sigmoid(-|v|) */
    __m256 l1p = balm_log1p8_pos(t);
    __m256 lbig = _mm256_sub_ps(_mm256_setzero_ps(), l1p); /* logsigmoid(|v|) */
    __m256 lsmall = _mm256_sub_ps(lbig, av);               /* logsigmoid(-|v|) */
    *sp = _mm256_blendv_ps(big, small, v); /* sign of v swaps the pair */
    *sn = _mm256_blendv_ps(small, big, v);
    *lp = _mm256_blendv_ps(lbig, lsmall, v);
    *ln = _mm256_blendv_ps(lsmall, lbig, v);
}

/* p = [sigmoid(-f), sigmoid(f)], logq = [logsigmoid(-u), logsigmoid(u)];
 * term = sum_j p_j (log p_j - logq_j). */
static inline __m256 reg_terms(__m256 f, __m256 u)
{
    __m256 p1, p0, lp1, lp0, q1, q0, lq1, lq0;
    two_class(f, &p1, &p0, &lp1, &lp0);
    two_class(u, &q1, &q0, &lq1, &lq0);
    (void)q1;
    (void)q0;
    return _mm256_add_ps(_mm256_mul_ps(p0, _mm256_sub_ps(lp0, lq0)),
                         _mm256_mul_ps(p1, _mm256_sub_ps(lp1, lq1)));
}

double balm_kl_reg_sum_f32_avx2(size_t N, const float *f, const float *u)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= N; i += 8)
        balm_acc_pd(reg_terms(_mm256_loadu_ps(f + i), _mm256_loadu_ps(u + i)), &a0, &a1);
    if (i < N) {
        /* Masked-off lanes: f = u = 0 gives p = q, a term of exactly 0. */
        __m256i msk = balm_tail_mask(N - i);
        balm_acc_pd(reg_terms(_mm256_maskload_ps(f + i, msk), _mm256_maskload_ps(u + i, msk)), &a0, &a1);
    }
    return balm_hsum_pd(_mm256_add_pd(a0, a1));
}
