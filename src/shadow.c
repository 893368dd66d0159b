/* Process-wide shadow-check statistics. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include "shadow.h"

static atomic_int shadow_on;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t stat_calls[BALM_K_COUNT];
static double stat_max[BALM_K_COUNT];
static pthread_once_t scalar_once = PTHREAD_ONCE_INIT;
static balm_kernels scalar_table;

static void fill_scalar(void)
{
    balm_kernels_for_isa(BALM_ISA_SCALAR, &scalar_table);
}

void balm_shadow_enable(int on)
{
    atomic_store(&shadow_on, on != 0);
}

const balm_kernels *balm_shadow_table(void)
{
    if (!atomic_load(&shadow_on) || balm_isa_active() == BALM_ISA_SCALAR)
        return NULL;
    pthread_once(&scalar_once, fill_scalar);
    return &scalar_table;
}

double balm_rel_diff(const float *got, const float *ref, size_t n)
{
    double big = 0.0, diff = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]) != isnan(ref[i]))
            return INFINITY;
        if (isnan(ref[i]))
            continue;
        if (isinf(got[i]) || isinf(ref[i])) {
            if (got[i] != ref[i])
                return INFINITY;
            continue;
        }
        double r = fabs((double)ref[i]), d = fabs((double)got[i] - ref[i]);
        if (r > big) big = r;
        if (d > diff) diff = d;
    }
    return diff / (big > 1e-30 ? big : 1e-30);
}

void balm_shadow_record(int kernel, double rel)
{
    pthread_mutex_lock(&stats_lock);
    stat_calls[kernel]++;
    if (rel > stat_max[kernel] || isnan(rel))
        stat_max[kernel] = isnan(rel) ? INFINITY : rel;
    pthread_mutex_unlock(&stats_lock);
}

size_t balm_shadow_stats(balm_shadow_stat *out, size_t cap, int reset)
{
    pthread_mutex_lock(&stats_lock);
    for (size_t i = 0; i < BALM_K_COUNT && out && i < cap; i++) {
        out[i].kernel = balm_kernel_names[i];
        out[i].calls = stat_calls[i];
        out[i].max_rel = stat_max[i];
    }
    if (reset)
        for (size_t i = 0; i < BALM_K_COUNT; i++) {
            stat_calls[i] = 0;
            stat_max[i] = 0.0;
        }
    pthread_mutex_unlock(&stats_lock);
    return BALM_K_COUNT;
}
