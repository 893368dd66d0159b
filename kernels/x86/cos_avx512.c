/* Cosine pieces and the GRM projection, AVX-512. */
#include "kernels.h"
#include "x86/intrin_avx512.h"

/* Products of two floats are exact in double, so accumulating them with
 * double FMAs differs from the scalar twin only in the order of additions. */
static inline void dot3(__m512 w, __m512 f, __m512d acc[3])
{
    __m512d wl = balm512_cvtps_pd_lo(w), wh = balm512_cvtps_pd_hi(w);
    __m512d fl = balm512_cvtps_pd_lo(f), fh = balm512_cvtps_pd_hi(f);
    acc[0] = _mm512_fmadd_pd(wh, fh, _mm512_fmadd_pd(wl, fl, acc[0]));
    acc[1] = _mm512_fmadd_pd(wh, wh, _mm512_fmadd_pd(wl, wl, acc[1]));
    acc[2] = _mm512_fmadd_pd(fh, fh, _mm512_fmadd_pd(fl, fl, acc[2]));
}

void balm_dot_norms_f32_avx512(size_t n, const float *w, const float *wf, double out[3])
{
    __m512d a[3] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    __m512d b[3] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        dot3(_mm512_loadu_ps(w + i), _mm512_loadu_ps(wf + i), a);
        dot3(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(wf + i + 16), b);
    }
    /* Masked-off lanes load 0.0f: exact zero terms. */
    for (; i < n; i += 16) {
        __mmask16 k = balm512_tail(n - i);
        dot3(balm512_maskz_loadu_ps(k, w + i), balm512_maskz_loadu_ps(k, wf + i), a);
    }
    for (int j = 0; j < 3; j++)
        out[j] = balm512_reduce_add_pd(_mm512_add_pd(a[j], b[j]));
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
