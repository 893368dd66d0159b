/* Cosine pieces and the GRM projection, NEON. */
#include "kernels.h"
#include "arm/vecmath_neon.h"

/* Elements per float block of dot_norms: each float accumulator lane sums at
 * most 8 FMA terms, the four accumulators are added pairwise and the block
 * is added, widened, to the double sums, so the error stays below
 * 10 * 2^-24 = 6e-7 of the magnitude sum (as the AVX2 and AVX-512
 * versions; the scalar twin sums exact double products). The last n % 4
 * elements are summed in double like the scalar twin. */
#define DOT_BLOCK 128

static inline float32x4_t sum4(const float32x4_t v[4])
{
    return vaddq_f32(vaddq_f32(v[0], v[1]), vaddq_f32(v[2], v[3]));
}

void balm_dot_norms_f32_neon(size_t n, const float *w, const float *wf, double out[3])
{
    float64x2_t lo[3], hi[3];
    for (int j = 0; j < 3; j++)
        lo[j] = hi[j] = vdupq_n_f64(0.0);
    const size_t nv = n - n % 4;
    size_t i = 0;
    while (i < nv) {
        size_t end = nv - i > DOT_BLOCK ? i + DOT_BLOCK : nv;
        float32x4_t d[4], p[4], q[4];
        for (int j = 0; j < 4; j++)
            d[j] = p[j] = q[j] = vdupq_n_f32(0.0f);
        for (; i + 16 <= end; i += 16)
            for (int j = 0; j < 4; j++) {
                float32x4_t a = vld1q_f32(w + i + 4 * j), b = vld1q_f32(wf + i + 4 * j);
                d[j] = vfmaq_f32(d[j], a, b);
                p[j] = vfmaq_f32(p[j], a, a);
                q[j] = vfmaq_f32(q[j], b, b);
            }
        for (int j = 0; i < end; i += 4, j++) { /* the block's last < 16 */
            float32x4_t a = vld1q_f32(w + i), b = vld1q_f32(wf + i);
            d[j] = vfmaq_f32(d[j], a, b);
            p[j] = vfmaq_f32(p[j], a, a);
            q[j] = vfmaq_f32(q[j], b, b);
        }
        balm_neon_acc_pd(sum4(d), &lo[0], &hi[0]);
        balm_neon_acc_pd(sum4(p), &lo[1], &hi[1]);
        balm_neon_acc_pd(sum4(q), &lo[2], &hi[2]);
    }
    double dot = vaddvq_f64(vaddq_f64(lo[0], hi[0]));
    double ww = vaddvq_f64(vaddq_f64(lo[1], hi[1]));
    double ff = vaddvq_f64(vaddq_f64(lo[2], hi[2]));
    for (; i < n; i++) {
        dot += (double)w[i] * wf[i];
        ww += (double)w[i] * w[i];
        ff += (double)wf[i] * wf[i];
    }
    out[0] = dot;
    out[1] = ww;
    out[2] = ff;
}

/* v = b*wf + a[0]*w[0] + ... in the scalar twin's order, no FMA: bit-equal. */
void balm_combine_f32_neon(size_t n, size_t M, const float *const *w, const float *a,
                           const float *wf, float b, float *dwf, int accumulate)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(wf + i), b);
        for (size_t m = 0; m < M; m++)
            v = vaddq_f32(v, vmulq_n_f32(vld1q_f32(w[m] + i), a[m]));
        if (accumulate)
            v = vaddq_f32(vld1q_f32(dwf + i), v);
        vst1q_f32(dwf + i, v);
    }
    for (; i < n; i++) {
        float v = b * wf[i];
        for (size_t m = 0; m < M; m++)
            v += a[m] * w[m][i];
        dwf[i] = accumulate ? dwf[i] + v : v;
    }
}
