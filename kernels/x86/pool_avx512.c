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

/* Channels per block: the partial sums of one block stay in L1 while the
 * present rows of x stream through, each read once, contiguously. */
#define POOL_DB 2048
/* Present rows folded into one pass over a block (fewer s loads/stores). */
#define POOL_ROWS 4

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

/* s[0..n) = v (v = 0) or s[0..n) *= v (scale). */
static inline void row_op(float *s, size_t n, float v, int scale)
{
    const __m512 vv = _mm512_set1_ps(v);
    size_t d = 0;
    for (; d + 16 <= n; d += 16)
        _mm512_storeu_ps(s + d, scale ? _mm512_mul_ps(_mm512_loadu_ps(s + d), vv) : vv);
    if (d < n) {
        __mmask16 m = balm512_tail(n - d);
        balm512_mask_storeu_ps(s + d, m, scale ? _mm512_mul_ps(balm512_maskz_loadu_ps(m, s + d), vv) : vv);
    }
}

void balm_pool_fwd_f32_avx512(const balm_seq *L, const float *x, const float *m, float *s)
{
    for (size_t b = 0; b < L->B; b++) {
        const float inv = inv_count(L, m, b);
        for (size_t d0 = 0; d0 < L->D; d0 += POOL_DB) {
            size_t n = L->D - d0 < POOL_DB ? L->D - d0 : POOL_DB;
            float *sb = s + b * L->D + d0;
            row_op(sb, n, 0.0f, 0);
            const float *rows[POOL_ROWS];
            int k = 0;
            for (size_t t = 0; t < L->T; t++) {
                if (m[t * L->m_step + b * L->m_sample] == 0.0f)
                    continue; /* masked rows are never read: they may be NaN */
                rows[k++] = x + t * L->x_step + b * L->x_sample + d0;
                if (k == POOL_ROWS) {
                    add_rows(sb, rows, k, n);
                    k = 0;
                }
            }
            if (k)
                add_rows(sb, rows, k, n);
            row_op(sb, n, inv, 1);
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
