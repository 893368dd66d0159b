/* The trainer's random stream: the library's Philox4x32-10, so data splits,
 * masks and initial weights depend only on the seed, never on the platform. */
#include "common/philox.h"
#include "trainer.h"

uint32_t balm_rng_u32(balm_rng *r)
{
    uint32_t out[4];
    balm_philox4x32_10(r->seed, r->counter / 4, out);
    return out[r->counter++ % 4];
}

size_t balm_rng_below(balm_rng *r, size_t n)
{
    uint64_t x, lim;
    if (n <= 1)
        return 0;
    /* rejection keeps it unbiased */
    lim = UINT64_MAX - UINT64_MAX % n;
    do {
        x = (uint64_t)balm_rng_u32(r) << 32 | balm_rng_u32(r);
    } while (x >= lim);
    return (size_t)(x % n);
}

float balm_rng_sym(balm_rng *r, float a)
{
    return (2.0f * balm_u32_to_uniform(balm_rng_u32(r)) - 1.0f) * a;
}

void balm_rng_shuffle(balm_rng *r, size_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = balm_rng_below(r, i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
