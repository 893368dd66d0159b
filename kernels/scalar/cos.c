/* Cosine pieces and the GRM projection, scalar reference. */
#include "kernels.h"

void balm_dot_norms_f32_scalar(size_t n, const float *w, const float *wf, double out[3])
{
    double dot = 0.0, ww = 0.0, ff = 0.0;
    for (size_t i = 0; i < n; i++) {
        dot += (double)w[i] * wf[i];
        ww += (double)w[i] * w[i];
        ff += (double)wf[i] * wf[i];
    }
    out[0] = dot;
    out[1] = ww;
    out[2] = ff;
}

void balm_combine_f32_scalar(size_t n, size_t M, const float *const *w, const float *a,
                             const float *wf, float b, float *dwf, int accumulate)
{
    for (size_t i = 0; i < n; i++) {
        float v = b * wf[i];
        for (size_t m = 0; m < M; m++)
            v += a[m] * w[m][i];
        dwf[i] = accumulate ? dwf[i] + v : v;
    }
}
