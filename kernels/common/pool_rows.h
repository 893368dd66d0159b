/* Pooling pieces shared by every ISA: the per-sample mask count and the
 * blocked forward driver. Each ISA supplies only its row kernels (add k rows
 * into s, scale s), which the driver calls through constant function
 * pointers that the compiler inlines. */
#ifndef BALM_POOL_ROWS_H
#define BALM_POOL_ROWS_H

#include <string.h>
#include "kernels.h"

/* 1 / (count + eps), in float like upstream's mask.sum() + 1e-8. */
static inline float balm_pool_inv_count(const balm_seq *L, const float *m, size_t b)
{
    float cnt = 0.0f;
    for (size_t t = 0; t < L->T; t++)
        cnt += m[t * L->m_step + b * L->m_sample];
    return 1.0f / (cnt + BALM_POOL_EPS);
}

/* Channels per block: the partial sums of one block stay in L1 while the
 * present rows of x stream through, each read once, contiguously. */
#define BALM_POOL_DB 2048
/* Present rows folded into one pass over a block (fewer s loads/stores). */
#define BALM_POOL_ROWS 4

/* s[0..n) += r[0][..] + ... + r[k-1][..], one row after the other (the
 * scalar twin's order, so results are bit-identical). */
typedef void (*balm_pool_add_rows_fn)(float *s, const float *const *r, int k, size_t n);
/* s[0..n) *= alpha. */
typedef void (*balm_pool_scale_fn)(float *s, size_t n, float alpha);

static inline void balm_pool_fwd_blocked(const balm_seq *L, const float *x, const float *m,
                                         float *s, balm_pool_add_rows_fn add_rows,
                                         balm_pool_scale_fn scale_row)
{
    for (size_t b = 0; b < L->B; b++) {
        const float inv = balm_pool_inv_count(L, m, b);
        for (size_t d0 = 0; d0 < L->D; d0 += BALM_POOL_DB) {
            size_t n = L->D - d0 < BALM_POOL_DB ? L->D - d0 : BALM_POOL_DB;
            float *sb = s + b * L->D + d0;
            memset(sb, 0, n * sizeof *sb);
            const float *rows[BALM_POOL_ROWS];
            int k = 0;
            for (size_t t = 0; t < L->T; t++) {
                if (m[t * L->m_step + b * L->m_sample] == 0.0f)
                    continue; /* masked rows are never read: they may be NaN */
                rows[k++] = x + t * L->x_step + b * L->x_sample + d0;
                if (k == BALM_POOL_ROWS) {
                    add_rows(sb, rows, k, n);
                    k = 0;
                }
            }
            if (k)
                add_rows(sb, rows, k, n);
            scale_row(sb, n, inv);
        }
    }
}

#endif
