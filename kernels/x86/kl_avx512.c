/* KL divergence sums of GRM, AVX-512. Terms in float with the vector log /
 * sigmoid / log-sigmoid, accumulated in double; the scalar twin does
 * everything in double, so the sums agree to about 1e-7 of the sum of the
 * terms' magnitudes. Tails use masked loads: the masked-off lanes load zeros
 * whose terms are exactly 0 (p = 0 is blended out; f = u = 0 gives p = q). */
#include "kernels.h"
#include "x86/vecmath_avx512.h"

/* p (log p - logq), exactly 0 where p = 0 whatever logq is (0 * inf = NaN). */
static inline __m512 cls_terms(__m512 p, __m512 lq)
{
    __mmask16 nz = _mm512_cmp_ps_mask(p, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    return _mm512_maskz_mul_ps(nz, p, _mm512_sub_ps(balm512_log(p), lq));
}

double balm_kl_cls_sum_f32_avx512(size_t N, size_t C, const float *p, const float *logq)
{
    const size_t n = N * C;
    __m512d a0 = _mm512_setzero_pd(), a1 = a0;
    size_t i = 0;
    /* Two vectors per iteration: independent log chains and sums. */
    for (; i + 32 <= n; i += 32) {
        a0 = balm512_acc_pd(a0, cls_terms(_mm512_loadu_ps(p + i), _mm512_loadu_ps(logq + i)));
        a1 = balm512_acc_pd(a1, cls_terms(_mm512_loadu_ps(p + i + 16), _mm512_loadu_ps(logq + i + 16)));
    }
    for (; i < n; i += 16) {
        __mmask16 k = balm512_tail(n - i);
        a0 = balm512_acc_pd(a0, cls_terms(balm512_maskz_loadu_ps(k, p + i), balm512_maskz_loadu_ps(k, logq + i)));
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
