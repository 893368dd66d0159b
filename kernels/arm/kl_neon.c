/* KL divergence sums of GRM, NEON. Terms in float with the vector log /
 * sigmoid / log-sigmoid, accumulated in double; the scalar twin does
 * everything in double, so the sums agree to about 1e-7 of the sum of the
 * terms' magnitudes. The last n % 4 elements go one at a time through lane
 * 0 of the same vector code. */
#include "kernels.h"
#include "arm/vecmath_neon.h"

/* p (log p - logq), exactly 0 where p = 0 whatever logq is (0 * inf = NaN). */
static inline float32x4_t cls_terms(float32x4_t p, float32x4_t lq)
{
    float32x4_t t = vmulq_f32(p, vsubq_f32(balm_neon_log(p), lq));
    return vbslq_f32(vceqq_f32(p, vdupq_n_f32(0.0f)), vdupq_n_f32(0.0f), t);
}

double balm_kl_cls_sum_f32_neon(size_t N, size_t C, const float *p, const float *logq)
{
    const size_t n = N * C;
    float64x2_t a0 = vdupq_n_f64(0.0), a1 = a0, b0 = a0, b1 = a0;
    size_t i = 0;
    /* Two vectors per iteration: independent log chains and sums. */
    for (; i + 8 <= n; i += 8) {
        balm_neon_acc_pd(cls_terms(vld1q_f32(p + i), vld1q_f32(logq + i)), &a0, &a1);
        balm_neon_acc_pd(cls_terms(vld1q_f32(p + i + 4), vld1q_f32(logq + i + 4)), &b0, &b1);
    }
    for (; i + 4 <= n; i += 4)
        balm_neon_acc_pd(cls_terms(vld1q_f32(p + i), vld1q_f32(logq + i)), &a0, &a1);
    double acc = vaddvq_f64(vaddq_f64(vaddq_f64(a0, a1), vaddq_f64(b0, b1)));
    for (; i < n; i++)
        acc += vgetq_lane_f32(cls_terms(balm_neon_lane0(p[i]), balm_neon_lane0(logq[i])), 0);
    return acc;
}

/* p = [sigmoid(-f), sigmoid(f)], logq = [logsigmoid(-u), logsigmoid(u)];
 * term = sum_j p_j (log p_j - logq_j). */
static inline float32x4_t reg_terms(float32x4_t f, float32x4_t u)
{
    float32x4_t p1, p0, lp1, lp0, q1, q0, lq1, lq0;
    balm_neon_two_class(f, &p1, &p0, &lp1, &lp0);
    balm_neon_two_class(u, &q1, &q0, &lq1, &lq0);
    (void)q1;
    (void)q0;
    return vaddq_f32(vmulq_f32(p0, vsubq_f32(lp0, lq0)), vmulq_f32(p1, vsubq_f32(lp1, lq1)));
}

double balm_kl_reg_sum_f32_neon(size_t N, const float *f, const float *u)
{
    float64x2_t a0 = vdupq_n_f64(0.0), a1 = a0;
    size_t i = 0;
    for (; i + 4 <= N; i += 4)
        balm_neon_acc_pd(reg_terms(vld1q_f32(f + i), vld1q_f32(u + i)), &a0, &a1);
    double acc = vaddvq_f64(vaddq_f64(a0, a1));
    for (; i < N; i++)
        acc += vgetq_lane_f32(reg_terms(balm_neon_lane0(f[i]), balm_neon_lane0(u[i])), 0);
    return acc;
}
