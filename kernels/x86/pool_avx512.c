/* Masked mean pooling, AVX-512. Same summation order as the scalar twin (t
 * ascending, in float, then one multiply by 1/(count+eps)), so the results
 * are bit-identical to it. Masked steps are skipped, never read. */
#include "kernels.h"
#include "common/pool_rows.h"
#include "x86/intrin_avx512.h"

/* s[0..n) += r[0][..] + ... + r[k-1][..], added one row after the other
 * (the scalar twin's order). */
static inline void add_rows(float *s, const float *const *r, int k, size_t n)
{
    size_t d = 0;
    for (; d + 16 <= n; d += 16) {
        __m512 a = _mm512_loadu_ps(s + d);
        for (int j = 0; j < k; j++)
            a = _mm512_add_ps(a, _mm512_loadu_ps(r[j] + d));
        _mm512_storeu_ps(s + d, a);
    }
    if (d < n) {
        __mmask16 m = balm512_tail(n - d);
        __m512 a = balm512_maskz_loadu_ps(m, s + d);
        for (int j = 0; j < k; j++)
            a = _mm512_add_ps(a, balm512_maskz_loadu_ps(m, r[j] + d));
        balm512_mask_storeu_ps(s + d, m, a);
    }
}

static void scale_row(float *s, size_t n, float v)
{
    const __m512 vv = _mm512_set1_ps(v);
    size_t d = 0;
    for (; d + 16 <= n; d += 16)
        _mm512_storeu_ps(s + d, _mm512_mul_ps(_mm512_loadu_ps(s + d), vv));
    if (d < n) {
        __mmask16 m = balm512_tail(n - d);
        balm512_mask_storeu_ps(s + d, m, _mm512_mul_ps(balm512_maskz_loadu_ps(m, s + d), vv));
    }
}

void balm_pool_fwd_f32_avx512(const balm_seq *L, const float *x, const float *m, float *s)
{
    balm_pool_fwd_blocked(L, x, m, s, add_rows, scale_row);
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
        const __m512 vinv = _mm512_set1_ps(balm_pool_inv_count(L, m, b));
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
