/* Masked mean pooling, NEON. Same summation order as the scalar twin (t
 * ascending, in float, then one multiply by 1/(count+eps)), so the results
 * are bit-identical to it. Masked steps are skipped, never read; the last
 * D % 4 channels take a scalar epilogue. */
#include "kernels.h"
#include "common/pool_rows.h"
#include "arm/vecmath_neon.h"

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

static void scale_row(float *s, size_t n, float v)
{
    size_t d = 0;
    for (; d + 4 <= n; d += 4)
        vst1q_f32(s + d, vmulq_n_f32(vld1q_f32(s + d), v));
    for (; d < n; d++)
        s[d] *= v;
}

void balm_pool_fwd_f32_neon(const balm_seq *L, const float *x, const float *m, float *s)
{
    balm_pool_fwd_blocked(L, x, m, s, add_rows, scale_row);
}

/* dx (+)= m ds/(count+eps), row after row so dx streams; ds*inv is formed
 * per vector (one multiply, rounded as in the scalar twin). Masked rows are
 * zeroed (overwrite) or left alone (accumulate). */
void balm_pool_bwd_f32_neon(const balm_seq *L, const float *m, const float *ds, float *dx,
                            int accumulate)
{
    const size_t D = L->D;
    for (size_t b = 0; b < L->B; b++) {
        const float inv = balm_pool_inv_count(L, m, b);
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
