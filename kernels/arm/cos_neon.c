/* Cosine pieces and the GRM projection, NEON. */
#include "kernels.h"
#include "arm/vecmath_neon.h"

/* Products of two floats are exact in double, so accumulating them with
 * double FMAs differs from the scalar twin only in the order of additions. */
static inline void dot3(float32x4_t w, float32x4_t f, float64x2_t acc[6])
{
    float64x2_t wl = vcvt_f64_f32(vget_low_f32(w)), wh = vcvt_high_f64_f32(w);
    float64x2_t fl = vcvt_f64_f32(vget_low_f32(f)), fh = vcvt_high_f64_f32(f);
    acc[0] = vfmaq_f64(acc[0], wl, fl);
    acc[1] = vfmaq_f64(acc[1], wh, fh);
    acc[2] = vfmaq_f64(acc[2], wl, wl);
    acc[3] = vfmaq_f64(acc[3], wh, wh);
    acc[4] = vfmaq_f64(acc[4], fl, fl);
    acc[5] = vfmaq_f64(acc[5], fh, fh);
}

void balm_dot_norms_f32_neon(size_t n, const float *w, const float *wf, double out[3])
{
    float64x2_t a[6];
    for (int j = 0; j < 6; j++)
        a[j] = vdupq_n_f64(0.0);
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        dot3(vld1q_f32(w + i), vld1q_f32(wf + i), a);
    double dot = vaddvq_f64(vaddq_f64(a[0], a[1]));
    double ww = vaddvq_f64(vaddq_f64(a[2], a[3]));
    double ff = vaddvq_f64(vaddq_f64(a[4], a[5]));
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
