/* Portable machine-limit loops (whatever the compiler makes of them). Eight
 * independent sums so the read is not bound by the add latency. */
#include "limits.h"

float balm_bench_read_scalar(size_t n, const float *x)
{
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += x[i + k];
    for (; i < n; i++)
        s[0] += x[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

void balm_bench_copy_scalar(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}

void balm_bench_triad_scalar(size_t n, const float *a, const float *b, float s, float *c)
{
    for (size_t i = 0; i < n; i++)
        c[i] = a[i] + s * b[i];
}

void balm_bench_update_scalar(size_t n, float *x, float s)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}
