/* Cosine pieces and the GRM projection, AVX2. */
#include "kernels.h"
#include "x86/vecmath_avx2.h"

/* Elements per float block of dot_norms: each float accumulator lane sums at
 * most 8 FMA terms, the four accumulators are added pairwise and the block
 * is added, widened, to the double sums, so the error stays below
 * 10 * 2^-24 = 6e-7 of the magnitude sum. */
#define DOT_BLOCK 256

void balm_dot_norms_f32_avx2(size_t n, const float *w, const float *wf, double out[3])
{
    __m256d dlo[3], dhi[3];
    for (int k = 0; k < 3; k++)
        dlo[k] = dhi[k] = _mm256_setzero_pd();
    size_t i = 0;
    while (i < n) {
        size_t end = n - i > DOT_BLOCK ? i + DOT_BLOCK : n;
        __m256 d0 = _mm256_setzero_ps(), d1 = d0, d2 = d0, d3 = d0;
        __m256 p0 = d0, p1 = d0, p2 = d0, p3 = d0;
        __m256 q0 = d0, q1 = d0, q2 = d0, q3 = d0;
        for (; i + 32 <= end; i += 32) {
            __m256 a0 = _mm256_loadu_ps(w + i), b0 = _mm256_loadu_ps(wf + i);
            __m256 a1 = _mm256_loadu_ps(w + i + 8), b1 = _mm256_loadu_ps(wf + i + 8);
            __m256 a2 = _mm256_loadu_ps(w + i + 16), b2 = _mm256_loadu_ps(wf + i + 16);
            __m256 a3 = _mm256_loadu_ps(w + i + 24), b3 = _mm256_loadu_ps(wf + i + 24);
            d0 = _mm256_fmadd_ps(a0, b0, d0); p0 = _mm256_fmadd_ps(a0, a0, p0); q0 = _mm256_fmadd_ps(b0, b0, q0);
            d1 = _mm256_fmadd_ps(a1, b1, d1); p1 = _mm256_fmadd_ps(a1, a1, p1); q1 = _mm256_fmadd_ps(b1, b1, q1);
            d2 = _mm256_fmadd_ps(a2, b2, d2); p2 = _mm256_fmadd_ps(a2, a2, p2); q2 = _mm256_fmadd_ps(b2, b2, q2);
            d3 = _mm256_fmadd_ps(a3, b3, d3); p3 = _mm256_fmadd_ps(a3, a3, p3); q3 = _mm256_fmadd_ps(b3, b3, q3);
        }
        for (; i < end; i += 8) {
            /* Masked-off lanes load zeros: exact zero terms. */
            __m256i msk = balm_tail_mask(end - i < 8 ? end - i : 8);
            __m256 a0 = _mm256_maskload_ps(w + i, msk), b0 = _mm256_maskload_ps(wf + i, msk);
            d1 = _mm256_fmadd_ps(a0, b0, d1); p1 = _mm256_fmadd_ps(a0, a0, p1); q1 = _mm256_fmadd_ps(b0, b0, q1);
        }
        /* Two more float roundings (pairwise), then one widening each. */
        balm_acc_pd(_mm256_add_ps(_mm256_add_ps(d0, d1), _mm256_add_ps(d2, d3)), &dlo[0], &dhi[0]);
        balm_acc_pd(_mm256_add_ps(_mm256_add_ps(p0, p1), _mm256_add_ps(p2, p3)), &dlo[1], &dhi[1]);
        balm_acc_pd(_mm256_add_ps(_mm256_add_ps(q0, q1), _mm256_add_ps(q2, q3)), &dlo[2], &dhi[2]);
    }
    for (int k = 0; k < 3; k++)
        out[k] = balm_hsum_pd(_mm256_add_pd(dlo[k], dhi[k]));
}

/* dwf (+)= b wf + sum_m a[m] w[m], in the scalar twin's order and rounding
 * (no FMA), so bit-identical to it. */
void balm_combine_f32_avx2(size_t n, size_t M, const float *const *w, const float *a,
                           const float *wf, float b, float *dwf, int accumulate)
{
    __m256 va[8];
    for (size_t m = 0; m < M; m++)
        va[m] = _mm256_set1_ps(a[m]);
    const __m256 vb = _mm256_set1_ps(b);
    for (size_t i = 0; i < n; i += 8) {
        __m256i msk = balm_tail_mask(n - i < 8 ? n - i : 8);
        int full = n - i >= 8;
        __m256 v = _mm256_mul_ps(vb, full ? _mm256_loadu_ps(wf + i) : _mm256_maskload_ps(wf + i, msk));
        for (size_t m = 0; m < M; m++)
            v = _mm256_add_ps(v, _mm256_mul_ps(va[m], full ? _mm256_loadu_ps(w[m] + i)
                                                           : _mm256_maskload_ps(w[m] + i, msk)));
        if (full) {
            if (accumulate)
                v = _mm256_add_ps(_mm256_loadu_ps(dwf + i), v);
            _mm256_storeu_ps(dwf + i, v);
        } else {
            if (accumulate)
                v = _mm256_add_ps(_mm256_maskload_ps(dwf + i, msk), v);
            _mm256_maskstore_ps(dwf + i, msk, v);
        }
    }
}
