/* Masked mean pooling, NEON. Same summation order as the scalar twin (t
 * ascending, in float, then one multiply by 1/(count+eps)), so the results
 * are bit-identical to it. Masked steps are skipped, never read; the last
 * D % 4 channels take a scalar epilogue. */
#include "kernels.h"
#include "arm/vecmath_neon.h"

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
 * (the scalar twin's order); scalar epilogue for the last n % 4. */
static inline void add_rows(float *s, const float *const *r, int k, size_t n)
{
    size_t d = 0;
    for (; d + 4 <= n; d += 4) {
        float32x4_t a = vld1q_f32(s + d);
        for (int j = 0; j < k; j++)
            a = vaddq_f32(a, vld1q_f32(r[j] + d));
        vst1q_f32(s + d, a);
    }
    for (; d < n; d++) {
        float a = s[d];
        for (int j = 0; j < k; j++)
            a += r[j][d];
        s[d] = a;
    }
}

void balm_pool_fwd_f32_neon(const balm_seq *L, const float *x, const float *m, float *s)
{
    for (size_t b = 0; b < L->B; b++) {
        const float inv = inv_count(L, m, b);
        for (size_t d0 = 0; d0 < L->D; d0 += POOL_DB) {
            size_t n = L->D - d0 < POOL_DB ? L->D - d0 : POOL_DB;
            float *sb = s + b * L->D + d0;
            size_t d = 0;
            for (; d + 4 <= n; d += 4)
                vst1q_f32(sb + d, vdupq_n_f32(0.0f));
            for (; d < n; d++)
                sb[d] = 0.0f;
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
            for (d = 0; d + 4 <= n; d += 4)
                vst1q_f32(sb + d, vmulq_n_f32(vld1q_f32(sb + d), inv));
            for (; d < n; d++)
                sb[d] *= inv;
        }
    }
}

/* dx (+)= m ds/(count+eps), row after row so dx streams; ds*inv is formed
 * per vector (one multiply, rounded as in the scalar twin). Masked rows are
 * zeroed (overwrite) or left alone (accumulate). */
void balm_pool_bwd_f32_neon(const balm_seq *L, const float *m, const float *ds, float *dx,
                            int accumulate)
{
    const size_t D = L->D;
    for (size_t b = 0; b < L->B; b++) {
        const float inv = inv_count(L, m, b);
        const float *dsb = ds + b * D;
        for (size_t t = 0; t < L->T; t++) {
            float *r = dx + t * L->x_step + b * L->x_sample;
            int present = m[t * L->m_step + b * L->m_sample] != 0.0f;
            size_t d = 0;
            if (!present) {
                if (accumulate)
                    continue;
                for (; d + 4 <= D; d += 4)
                    vst1q_f32(r + d, vdupq_n_f32(0.0f));
                for (; d < D; d++)
                    r[d] = 0.0f;
            } else if (accumulate) {
                for (; d + 4 <= D; d += 4)
                    vst1q_f32(r + d, vaddq_f32(vld1q_f32(r + d), vmulq_n_f32(vld1q_f32(dsb + d), inv)));
                for (; d < D; d++)
                    r[d] += dsb[d] * inv;
            } else {
                for (; d + 4 <= D; d += 4)
                    vst1q_f32(r + d, vmulq_n_f32(vld1q_f32(dsb + d), inv));
                for (; d < D; d++)
                    r[d] = dsb[d] * inv;
            }
        }
    }
}
