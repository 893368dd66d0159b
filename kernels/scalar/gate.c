/* Sigmoid gate, scalar reference (the oracle). */
#include <math.h>
#include "kernels.h"

/* 1/(1+exp(-e)): exp overflows to inf for e < -88.7 and gives exactly 0,
 * never NaN. */
static float sigmoidf_ref(float e)
{
    return 1.0f / (1.0f + expf(-e));
}

void balm_gate_fwd_f32_scalar(const balm_seq *L, const float *x, const float *m, const float *e,
                              float *y)
{
    for (size_t t = 0; t < L->T; t++)
        for (size_t b = 0; b < L->B; b++) {
            const float *xr = x + t * L->x_step + b * L->x_sample;
            const float *eb = e + b * L->D;
            float *yr = y + t * L->x_step + b * L->x_sample;
            if (m[t * L->m_step + b * L->m_sample] == 0.0f) {
                for (size_t d = 0; d < L->D; d++)
                    yr[d] = 0.0f;
                continue;
            }
            for (size_t d = 0; d < L->D; d++)
                yr[d] = 2.0f * sigmoidf_ref(eb[d]) * xr[d];
        }
}

void balm_gate_bwd_f32_scalar(const balm_seq *L, const float *x, const float *m, const float *e,
                              const float *dy, float *dx, float *de)
{
    for (size_t b = 0; b < L->B; b++) {
        const float *eb = e + b * L->D;
        float *deb = de + b * L->D;
        for (size_t d = 0; d < L->D; d++)
            deb[d] = 0.0f;
        for (size_t t = 0; t < L->T; t++) {
            const float *xr = x + t * L->x_step + b * L->x_sample;
            const float *dyr = dy + t * L->x_step + b * L->x_sample;
            float *dxr = dx + t * L->x_step + b * L->x_sample;
            if (m[t * L->m_step + b * L->m_sample] == 0.0f) {
                for (size_t d = 0; d < L->D; d++)
                    dxr[d] = 0.0f;
                continue;
            }
            for (size_t d = 0; d < L->D; d++) {
                dxr[d] = 2.0f * sigmoidf_ref(eb[d]) * dyr[d];
                deb[d] += dyr[d] * xr[d];
            }
        }
        /* d(2 sigmoid)/de = 2 s (1 - s), with 1 - s computed as sigmoid(-e):
         * no cancellation near s = 1, and exactly 0 only when a factor
         * underflows (|e| > ~88), never NaN. */
        for (size_t d = 0; d < L->D; d++) {
            float g = 2.0f * sigmoidf_ref(eb[d]) * sigmoidf_ref(-eb[d]);
            deb[d] = g == 0.0f ? 0.0f : deb[d] * g;
        }
    }
}
