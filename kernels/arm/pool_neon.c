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

/* 16 channels (four registers) per pass over the steps: the sums stay in
 * registers while the rows stream through. */
void balm_pool_fwd_f32_neon(const balm_seq *L, const float *x, const float *m, float *s)
{
    const size_t D = L->D;
    for (size_t b = 0; b < L->B; b++) {
        const float inv = inv_count(L, m, b);
        const float *xb = x + b * L->x_sample;
        const float *mb = m + b * L->m_sample;
        float *sb = s + b * D;
        size_t d = 0;
        for (; d + 16 <= D; d += 16) {
            float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
            for (size_t t = 0; t < L->T; t++) {
                if (mb[t * L->m_step] == 0.0f)
                    continue;
                const float *r = xb + t * L->x_step + d;
                a0 = vaddq_f32(a0, vld1q_f32(r));
                a1 = vaddq_f32(a1, vld1q_f32(r + 4));
                a2 = vaddq_f32(a2, vld1q_f32(r + 8));
                a3 = vaddq_f32(a3, vld1q_f32(r + 12));
            }
            vst1q_f32(sb + d, vmulq_n_f32(a0, inv));
            vst1q_f32(sb + d + 4, vmulq_n_f32(a1, inv));
            vst1q_f32(sb + d + 8, vmulq_n_f32(a2, inv));
            vst1q_f32(sb + d + 12, vmulq_n_f32(a3, inv));
        }
        for (; d + 4 <= D; d += 4) {
            float32x4_t a = vdupq_n_f32(0.0f);
            for (size_t t = 0; t < L->T; t++)
                if (mb[t * L->m_step] != 0.0f)
                    a = vaddq_f32(a, vld1q_f32(xb + t * L->x_step + d));
            vst1q_f32(sb + d, vmulq_n_f32(a, inv));
        }
        for (; d < D; d++) {
            float a = 0.0f;
            for (size_t t = 0; t < L->T; t++)
                if (mb[t * L->m_step] != 0.0f)
                    a += xb[t * L->x_step + d];
            sb[d] = a * inv;
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
