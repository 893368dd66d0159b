/* Imbalanced missing rates (BALM-SPEC "Imbalanced missing rates"): pattern
 * counts fixed by floor(N * prod), the rest split over single-modality
 * patterns, laid out in blocks (upstream) or shuffled. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "trainer.h"

/* Fixed block order of the upstream layout: all present, the pairs, then the
 * single modalities. */
const unsigned balm_imr_order[7] = {
    BALM_PAT(1, 1, 1), BALM_PAT(1, 1, 0), BALM_PAT(1, 0, 1), BALM_PAT(0, 1, 1),
    BALM_PAT(1, 0, 0), BALM_PAT(0, 1, 0), BALM_PAT(0, 0, 1),
};

void balm_imr_counts(size_t N, const double rates[BALM_NMOD], size_t counts[8])
{
    /* the product in upstream's modality order a, l, v */
    static const int mods[3] = {BALM_A, BALM_L, BALM_V};
    size_t used = 0;
    counts[0] = 0;
    for (unsigned p = 1; p < 8; p++) {
        double prod = 1.0;
        for (int k = 0; k < 3; k++) {
            int m = mods[k];
            prod *= (p >> m & 1u) ? 1.0 - rates[m] : rates[m];
        }
        counts[p] = (size_t)floor((double)N * prod);
        used += counts[p];
    }
    size_t rest = N - used, third = rest / 3;
    counts[BALM_PAT(0, 1, 0)] += third;
    counts[BALM_PAT(0, 0, 1)] += third;
    counts[BALM_PAT(1, 0, 0)] += rest - 2 * third;
}

balm_status balm_imr_apply(balm_split *s, const size_t d[BALM_NMOD],
                           const double rates[BALM_NMOD], balm_mask_order order, uint64_t seed)
{
    size_t counts[8], at = 0;
    unsigned char *pat = malloc(s->n ? s->n : 1);
    size_t *perm = NULL;
    if (!pat)
        return balm_fail(BALM_ERR_NOMEM, "balm_imr_apply: no memory for %zu patterns", s->n);
    balm_imr_counts(s->n, rates, counts);
    for (int k = 0; k < 7; k++) {
        unsigned p = balm_imr_order[k];
        memset(pat + at, (int)p, counts[p]);
        at += counts[p];
    }
    if (order == BALM_MASK_SHUFFLED && s->n > 1) {
        balm_rng r = {seed, 0};
        perm = malloc(s->n * sizeof *perm);
        if (!perm) {
            free(pat);
            return balm_fail(BALM_ERR_NOMEM, "balm_imr_apply: no memory for %zu indices", s->n);
        }
        for (size_t i = 0; i < s->n; i++)
            perm[i] = i;
        balm_rng_shuffle(&r, perm, s->n);
    }
    for (size_t i = 0; i < s->n; i++) {
        unsigned p = pat[perm ? perm[i] : i];
        for (int m = 0; m < BALM_NMOD; m++) {
            int present = (int)(p >> m & 1u);
            s->mask[m][i] = present ? 1.0f : 0.0f;
            if (!present)
                memset(s->x[m] + i * d[m], 0, d[m] * sizeof(float));
        }
    }
    free(perm);
    free(pat);
    return BALM_OK;
}
