/* KL divergences of GRM's distributional term, scalar reference. Terms are
 * evaluated and summed in double: this is the oracle the SIMD kernels (float
 * arithmetic) are compared with. */
#include <math.h>
#include "kernels.h"

double balm_kl_cls_sum_f32_scalar(size_t N, size_t C, const float *p, const float *logq)
{
    double acc = 0.0;
    for (size_t i = 0; i < N * C; i++) {
        if (p[i] == 0.0f)
            continue; /* 0 * log 0 = 0, whatever logq is */
        acc += (double)p[i] * (log((double)p[i]) - (double)logq[i]);
    }
    return acc;
}

/* log(sigmoid(x)) without overflow: min(x, 0) - log1p(exp(-|x|)). */
static double logsigmoid_d(double x)
{
    return (x < 0.0 ? x : 0.0) - log1p(exp(-fabs(x)));
}

double balm_kl_reg_sum_f32_scalar(size_t N, const float *f, const float *u)
{
    double acc = 0.0;
    for (size_t i = 0; i < N; i++) {
        double lp1 = logsigmoid_d(f[i]), lp0 = logsigmoid_d(-(double)f[i]);
        double lq1 = logsigmoid_d(u[i]), lq0 = logsigmoid_d(-(double)u[i]);
        acc += exp(lp0) * (lp0 - lq0) + exp(lp1) * (lp1 - lq1);
    }
    return acc;
}
