#include "balm_testutil.h"
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <sys/stat.h>
#include "balm/npy.h"

uint64_t tu_next(tu_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

float tu_uniform(tu_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)((tu_next(r) >> 40) * (1.0 / 16777216.0));
}

void tu_fill(tu_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = tu_uniform(r, lo, hi);
}

double tu_rel_err(const float *got, const float *want, size_t n)
{
    double big = 0.0, diff = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]) != isnan(want[i]))
            return INFINITY;
        if (isnan(want[i]))
            continue;
        if (isinf(got[i]) || isinf(want[i])) {
            if (got[i] != want[i]) return INFINITY;
            continue;
        }
        if (fabs(want[i]) > big) big = fabs(want[i]);
        if (fabs((double)got[i] - want[i]) > diff) diff = fabs((double)got[i] - want[i]);
    }
    return diff / (big > 1e-30 ? big : 1e-30);
}

float *tu_load(const char *dir, const char *name, size_t *count)
{
    char path[1024];
    balm_array a;
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    balm_status st = balm_npy_read(path, &a);
    if (st != BALM_OK)
        fail_msg("cannot load %s: %s", path, balm_last_error());
    if (count) *count = a.count;
    return a.data;
}

const char *tu_golden(const char *name, char *buf, size_t cap)
{
    struct stat sb;
    snprintf(buf, cap, "%s/golden/%s", BALM_TEST_DATA_DIR_UTIL, name);
    if (stat(buf, &sb) == 0) return buf;
    snprintf(buf, cap, "%s/%s", BALM_GOLDEN_DIR_UTIL, name);
    if (stat(buf, &sb) == 0) return buf;
    return NULL;
}
