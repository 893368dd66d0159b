/* Masked mean pooling, AVX-512. Same summation order as the scalar twin (t
 * ascending, in float, then one multiply by 1/(count+eps)), so the results
 * are bit-identical to it. Masked steps are skipped, never read. */
#include "kernels.h"
#include "x86/intrin_avx512.h"

static float inv_count(const balm_seq *L, const float *m, size_t b)
{
    float cnt = 0.0f;
    for (size_t t = 0; t < L->T; t++)
        cnt += m[t * L->m_step + b * L->m_sample];
    return 1.0f / (cnt + BALM_POOL_EPS);
}

/* 64 channels (four registers) per pass over the steps: the sums stay in
 * registers while the rows stream through. */
void balm_pool_fwd_f32_avx512(const balm_seq *L, const float *x, const float *m, float *s)
{
    const size_t D = L->D;
    for (size_t b = 0; b < L->B; b++) {
        const __m512 vinv = _mm512_set1_ps(inv_count(L, m, b));
        const float *xb = x + b * L->x_sample;
        const float *mb = m + b * L->m_sample;
        float *sb = s + b * D;
        size_t d = 0;
        for (; d + 64 <= D; d += 64) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t t = 0; t < L->T; t++) {
                if (mb[t * L->m_step] == 0.0f)
                    continue;
                const float *r = xb + t * L->x_step + d;
                a0 = _mm512_add_ps(a0, _mm512_loadu_ps(r));
                a1 = _mm512_add_ps(a1, _mm512_loadu_ps(r + 16));
                a2 = _mm512_add_ps(a2, _mm512_loadu_ps(r + 32));
                a3 = _mm512_add_ps(a3, _mm512_loadu_ps(r + 48));
            }
            _mm512_storeu_ps(sb + d, _mm512_mul_ps(a0, vinv));
            _mm512_storeu_ps(sb + d + 16, _mm512_mul_ps(a1, vinv));
            _mm512_storeu_ps(sb + d + 32, _mm512_mul_ps(a2, vinv));
            _mm512_storeu_ps(sb + d + 48, _mm512_mul_ps(a3, vinv));
        }
        /* Up to three full vectors and a masked tail, one pass each. */
        for (; d < D; d += 16) {
            __mmask16 k = balm512_tail(D - d);
            __m512 a = _mm512_setzero_ps();
            for (size_t t = 0; t < L->T; t++)
                if (mb[t * L->m_step] != 0.0f)
                    a = _mm512_add_ps(a, balm512_maskz_loadu_ps(k, xb + t * L->x_step + d));
            balm512_mask_storeu_ps(sb + d, k, _mm512_mul_ps(a, vinv));
        }
    }
}

/* dx (+)= m ds/(count+eps), row after row so dx streams; ds*inv is formed
 * per vector (one multiply, rounded as in the scalar twin; the ds row stays
 * in L1). Masked rows are zeroed (overwrite) or left alone (accumulate). */
void balm_pool_bwd_f32_avx512(const balm_seq *L, const float *m, const float *ds, float *dx,
                              int accumulate)
{
    const size_t D = L->D;
    const __mmask16 kt = balm512_tail(D % 16);
    const size_t Dv = D - D % 16;
    for (size_t b = 0; b < L->B; b++) {
        const __m512 vinv = _mm512_set1_ps(inv_count(L, m, b));
        const float *dsb = ds + b * D;
        for (size_t t = 0; t < L->T; t++) {
            float *r = dx + t * L->x_step + b * L->x_sample;
            int present = m[t * L->m_step + b * L->m_sample] != 0.0f;
            size_t d = 0;
            if (!present) {
                if (accumulate)
                    continue;
                for (; d < Dv; d += 16)
                    _mm512_storeu_ps(r + d, _mm512_setzero_ps());
                if (kt)
                    balm512_mask_storeu_ps(r + d, kt, _mm512_setzero_ps());
                continue;
            }
            if (accumulate) {
                for (; d < Dv; d += 16)
                    _mm512_storeu_ps(r + d, _mm512_add_ps(_mm512_loadu_ps(r + d),
                                                          _mm512_mul_ps(_mm512_loadu_ps(dsb + d), vinv)));
                if (kt) {
                    __m512 g = _mm512_mul_ps(balm512_maskz_loadu_ps(kt, dsb + d), vinv);
                    balm512_mask_storeu_ps(r + d, kt, _mm512_add_ps(balm512_maskz_loadu_ps(kt, r + d), g));
                }
            } else {
                for (; d < Dv; d += 16)
                    _mm512_storeu_ps(r + d, _mm512_mul_ps(_mm512_loadu_ps(dsb + d), vinv));
                if (kt)
                    balm512_mask_storeu_ps(r + d, kt, _mm512_mul_ps(balm512_maskz_loadu_ps(kt, dsb + d), vinv));
            }
        }
    }
}
