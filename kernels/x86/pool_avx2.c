/* Masked mean pooling, AVX2. Same summation order as the scalar twin (t
 * ascending, float), so the results are bit-identical to it. */
#include "kernels.h"
#include "common/pool_rows.h"
#include "x86/vecmath_avx2.h"

/* s[0..n) += r[0][..] + ... + r[k-1][..], added one row after the other. */
static inline void add_rows(float *s, const float *const *r, int k, size_t n)
{
    size_t d = 0;
    for (; d + 8 <= n; d += 8) {
        __m256 a = _mm256_loadu_ps(s + d);
        for (int j = 0; j < k; j++)
            a = _mm256_add_ps(a, _mm256_loadu_ps(r[j] + d));
        _mm256_storeu_ps(s + d, a);
    }
    if (d < n) {
        __m256i msk = balm_tail_mask(n - d);
        __m256 a = _mm256_maskload_ps(s + d, msk);
        for (int j = 0; j < k; j++)
            a = _mm256_add_ps(a, _mm256_maskload_ps(r[j] + d, msk));
        _mm256_maskstore_ps(s + d, msk, a);
    }
}

static void scale_row(float *s, size_t n, float alpha)
{
    __m256 va = _mm256_set1_ps(alpha);
    size_t d = 0;
    for (; d + 8 <= n; d += 8)
        _mm256_storeu_ps(s + d, _mm256_mul_ps(_mm256_loadu_ps(s + d), va));
    if (d < n) {
        __m256i msk = balm_tail_mask(n - d);
        _mm256_maskstore_ps(s + d, msk, _mm256_mul_ps(_mm256_maskload_ps(s + d, msk), va));
    }
}

void balm_pool_fwd_f32_avx2(const balm_seq *L, const float *x, const float *m, float *s)
{
    balm_pool_fwd_blocked(L, x, m, s, add_rows, scale_row);
}

void balm_pool_bwd_f32_avx2(const balm_seq *L, const float *m, const float *ds, float *dx,
                            int accumulate)
{
    for (size_t b = 0; b < L->B; b++) {
        __m256 vinv = _mm256_set1_ps(balm_pool_inv_count(L, m, b));
        const float *dsb = ds + b * L->D;
        const size_t D = L->D;
        for (size_t t = 0; t < L->T; t++) {
            float *dr = dx + t * L->x_step + b * L->x_sample;
            int present = m[t * L->m_step + b * L->m_sample] != 0.0f;
            if (!present) {
                if (!accumulate) /* exact zeros; accumulate leaves dx alone */
                    for (size_t d = 0; d < D; d++)
                        dr[d] = 0.0f;
                continue;
            }
            size_t d = 0;
            if (accumulate) {
                for (; d + 8 <= D; d += 8)
                    _mm256_storeu_ps(dr + d, _mm256_add_ps(_mm256_loadu_ps(dr + d),
                                                           _mm256_mul_ps(_mm256_loadu_ps(dsb + d), vinv)));
                if (d < D) {
                    __m256i msk = balm_tail_mask(D - d);
                    _mm256_maskstore_ps(dr + d, msk,
                                        _mm256_add_ps(_mm256_maskload_ps(dr + d, msk),
                                                      _mm256_mul_ps(_mm256_maskload_ps(dsb + d, msk), vinv)));
                }
            } else {
                for (; d + 8 <= D; d += 8)
                    _mm256_storeu_ps(dr + d, _mm256_mul_ps(_mm256_loadu_ps(dsb + d), vinv));
                if (d < D) {
                    __m256i msk = balm_tail_mask(D - d);
                    _mm256_maskstore_ps(dr + d, msk, _mm256_mul_ps(_mm256_maskload_ps(dsb + d, msk), vinv));
                }
            }
        }
    }
}
