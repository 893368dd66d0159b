/* Masked mean pooling, scalar reference (the oracle). */
#include "common/pool_rows.h"
#include "kernels.h"

void balm_pool_fwd_f32_scalar(const balm_seq *L, const float *x, const float *m, float *s)
{
    for (size_t b = 0; b < L->B; b++) {
        float *sb = s + b * L->D;
        for (size_t d = 0; d < L->D; d++)
            sb[d] = 0.0f;
        /* Skip, rather than multiply by, masked steps: their data may be NaN. */
        for (size_t t = 0; t < L->T; t++) {
            if (m[t * L->m_step + b * L->m_sample] == 0.0f)
                continue;
            const float *xr = x + t * L->x_step + b * L->x_sample;
            for (size_t d = 0; d < L->D; d++)
                sb[d] += xr[d];
        }
        float inv = balm_pool_inv_count(L, m, b);
        for (size_t d = 0; d < L->D; d++)
            sb[d] *= inv;
    }
}

void balm_pool_bwd_f32_scalar(const balm_seq *L, const float *m, const float *ds, float *dx,
                              int accumulate)
{
    for (size_t b = 0; b < L->B; b++) {
        float inv = balm_pool_inv_count(L, m, b);
        const float *dsb = ds + b * L->D;
        for (size_t t = 0; t < L->T; t++) {
            float *dr = dx + t * L->x_step + b * L->x_sample;
            int present = m[t * L->m_step + b * L->m_sample] != 0.0f;
            if (accumulate) {
                if (present)
                    for (size_t d = 0; d < L->D; d++)
                        dr[d] += dsb[d] * inv;
            } else {
                for (size_t d = 0; d < L->D; d++)
                    dr[d] = present ? dsb[d] * inv : 0.0f;
            }
        }
    }
}
