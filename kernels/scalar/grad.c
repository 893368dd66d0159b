/* Gradient scaling, moments and Gaussian noise, scalar reference. */
#include <math.h>
#include "common/philox.h"
#include "kernels.h"

void balm_scale_f32_scalar(size_t n, float *x, float alpha)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= alpha;
}

void balm_sums_f32_scalar(size_t n, const float *x, double out[2])
{
    double s = 0.0, q = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        q += (double)x[i] * x[i];
    }
    out[0] = s;
    out[1] = q;
}

/* The four normals of Philox block `blk` (Box-Muller in double). */
static void normals4(uint64_t seed, uint64_t blk, float z[4])
{
    uint32_t r[4];
    balm_philox4x32_10(seed, blk, r);
    for (int k = 0; k < 4; k += 2) {
        double u0 = balm_u32_to_uniform(r[k]), u1 = balm_u32_to_uniform(r[k + 1]);
        double rad = sqrt(-2.0 * log(u0)), th = BALM_TWO_PI * u1;
        z[k] = (float)(rad * cos(th));
        z[k + 1] = (float)(rad * sin(th));
    }
}

void balm_scale_noise_f32_scalar(size_t n, float *x, float alpha, float sd, uint64_t seed,
                                 uint64_t offset)
{
    float z[4];
    uint64_t cur = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = offset + i, blk = k >> 2;
        if (blk != cur) {
            normals4(seed, blk, z);
            cur = blk;
        }
        x[i] = x[i] * alpha + sd * z[k & 3];
    }
}
