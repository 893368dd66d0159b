/* Cosine pieces and the GRM projection, AVX-512. */
#include "kernels.h"
#include "x86/intrin_avx512.h"

/* Elements per float block of dot_norms: each float accumulator lane sums at
 * most 8 FMA terms, the four accumulators are added pairwise and the block
 * is added, widened, to the double sums, so the error stays below
 * 10 * 2^-24 = 6e-7 of the magnitude sum (as the AVX2 version; the scalar
 * twin sums exact double products). Twice as fast as widening every
 * element. */
#define DOT_BLOCK 512

void balm_dot_norms_f32_avx512(size_t n, const float *w, const float *wf, double out[3])
{
    __m512d acc[3] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    size_t i = 0;
    while (i < n) {
        size_t end = n - i > DOT_BLOCK ? i + DOT_BLOCK : n;
        __m512 d[4], p[4], q[4];
        for (int j = 0; j < 4; j++)
            d[j] = p[j] = q[j] = _mm512_setzero_ps();
        for (; i + 64 <= end; i += 64)
            for (int j = 0; j < 4; j++) {
                __m512 a = _mm512_loadu_ps(w + i + 16 * j), b = _mm512_loadu_ps(wf + i + 16 * j);
                d[j] = _mm512_fmadd_ps(a, b, d[j]);
                p[j] = _mm512_fmadd_ps(a, a, p[j]);
                q[j] = _mm512_fmadd_ps(b, b, q[j]);
            }
        /* The block's last < 64 elements, one accumulator each (so no lane
         * sums more than 8 terms); masked-off lanes load zeros: exact zero
         * terms. */
        for (int j = 0; i < end; i += 16, j++) {
            __mmask16 k = balm512_tail(end - i);
            __m512 a = balm512_maskz_loadu_ps(k, w + i), b = balm512_maskz_loadu_ps(k, wf + i);
            d[j] = _mm512_fmadd_ps(a, b, d[j]);
            p[j] = _mm512_fmadd_ps(a, a, p[j]);
            q[j] = _mm512_fmadd_ps(b, b, q[j]);
        }
        acc[0] = balm512_acc_pd(acc[0], _mm512_add_ps(_mm512_add_ps(d[0], d[1]), _mm512_add_ps(d[2], d[3])));
        acc[1] = balm512_acc_pd(acc[1], _mm512_add_ps(_mm512_add_ps(p[0], p[1]), _mm512_add_ps(p[2], p[3])));
        acc[2] = balm512_acc_pd(acc[2], _mm512_add_ps(_mm512_add_ps(q[0], q[1]), _mm512_add_ps(q[2], q[3])));
    }
    for (int j = 0; j < 3; j++)
        out[j] = balm512_reduce_add_pd(acc[j]);
}

/* v = b*wf + a[0]*w[0] + ... in the scalar twin's order, no FMA: bit-equal. */
void balm_combine_f32_avx512(size_t n, size_t M, const float *const *w, const float *a,
                             const float *wf, float b, float *dwf, int accumulate)
{
    __m512 va[8];
    for (size_t m = 0; m < M; m++)
        va[m] = _mm512_set1_ps(a[m]);
    const __m512 vb = _mm512_set1_ps(b);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_mul_ps(vb, _mm512_loadu_ps(wf + i));
        for (size_t m = 0; m < M; m++)
            v = _mm512_add_ps(v, _mm512_mul_ps(va[m], _mm512_loadu_ps(w[m] + i)));
        if (accumulate)
            v = _mm512_add_ps(_mm512_loadu_ps(dwf + i), v);
        _mm512_storeu_ps(dwf + i, v);
    }
    if (i < n) {
        __mmask16 k = balm512_tail(n - i);
        __m512 v = _mm512_mul_ps(vb, balm512_maskz_loadu_ps(k, wf + i));
        for (size_t m = 0; m < M; m++)
            v = _mm512_add_ps(v, _mm512_mul_ps(va[m], balm512_maskz_loadu_ps(k, w[m] + i)));
        if (accumulate)
            v = _mm512_add_ps(balm512_maskz_loadu_ps(k, dwf + i), v);
        balm512_mask_storeu_ps(dwf + i, k, v);
    }
}
