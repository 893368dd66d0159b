/* Gradient scaling, moments and Gaussian noise, NEON. */
#include "common/philox.h"
#include "kernels.h"
#include "arm/vecmath_neon.h"

void balm_scale_f32_neon(size_t n, float *x, float alpha)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + 4);
        vst1q_f32(x + i, vmulq_n_f32(a, alpha));
        vst1q_f32(x + i + 4, vmulq_n_f32(b, alpha));
    }
    for (; i < n; i++)
        x[i] *= alpha;
}

/* Double accumulation as in the scalar twin (x and x*x are exact in double);
 * only the order of the additions differs. */
void balm_sums_f32_neon(size_t n, const float *x, double out[2])
{
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0, q0 = s0, q1 = s0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
        s0 = vaddq_f64(s0, lo);
        s1 = vaddq_f64(s1, hi);
        q0 = vfmaq_f64(q0, lo, lo);
        q1 = vfmaq_f64(q1, hi, hi);
    }
    double s = vaddvq_f64(vaddq_f64(s0, s1)), q = vaddvq_f64(vaddq_f64(q0, q1));
    for (; i < n; i++) {
        s += x[i];
        q += (double)x[i] * x[i];
    }
    out[0] = s;
    out[1] = q;
}

/* ------------------------------------------------------------ Philox */
/* lo and hi 32 bits of a * b per unsigned lane (two widening multiplies,
 * then the halves unzipped). */
static inline void mulhilo4(uint32x4_t a, uint32_t b, uint32x4_t *lo, uint32x4_t *hi)
{
    const uint32x2_t vb = vdup_n_u32(b);
    uint32x4_t p0 = vreinterpretq_u32_u64(vmull_u32(vget_low_u32(a), vb));
    uint32x4_t p1 = vreinterpretq_u32_u64(vmull_high_u32(a, vdupq_n_u32(b)));
    *lo = vuzp1q_u32(p0, p1);
    *hi = vuzp2q_u32(p0, p1);
}

/* The 16 normals of the 4 blocks blk .. blk+3 in element order (z[4j+i] =
 * normal i of block blk+j): Philox4x32-10 exactly as balm_philox4x32_10,
 * uniforms as balm_u32_to_uniform, Box-Muller as in common/philox.h in float. */
static inline void normals16(const balm_philox_keys *K, uint64_t blk, float z[16])
{
    uint32_t lo[4], hi[4];
    for (int j = 0; j < 4; j++) {
        lo[j] = (uint32_t)(blk + (uint64_t)j);
        hi[j] = (uint32_t)((blk + (uint64_t)j) >> 32);
    }
    uint32x4_t c0 = vld1q_u32(lo), c1 = vld1q_u32(hi), c2 = vdupq_n_u32(0), c3 = c2;
    for (int r = 0; r < 10; r++) {
        uint32x4_t lo0, hi0, lo1, hi1;
        mulhilo4(c0, BALM_PHILOX_M0, &lo0, &hi0);
        mulhilo4(c2, BALM_PHILOX_M1, &lo1, &hi1);
        c0 = veorq_u32(veorq_u32(hi1, c1), vdupq_n_u32(K->k0[r]));
        c1 = lo1;
        c2 = veorq_u32(veorq_u32(hi0, c3), vdupq_n_u32(K->k1[r]));
        c3 = lo0;
    }
    uint32x4_t c[4] = {c0, c1, c2, c3};
    float32x4_t u[4];
    for (int i = 0; i < 4; i++) {
        uint32x4_t j = vorrq_u32(vshlq_n_u32(vshrq_n_u32(c[i], 9), 1), vdupq_n_u32(1));
        u[i] = vmulq_f32(vcvtq_f32_u32(j), BALM_VN(1.0f / 16777216.0f));
    }
    float32x4_t ra = vsqrtq_f32(vmulq_f32(BALM_VN(-2.0f), balm_neon_log(u[0])));
    float32x4_t rb = vsqrtq_f32(vmulq_f32(BALM_VN(-2.0f), balm_neon_log(u[2])));
    float32x4_t sa, ca, sb, cb;
    balm_neon_sincos2pi(u[1], &sa, &ca);
    balm_neon_sincos2pi(u[3], &sb, &cb);
    float32x4x4_t nv = {{vmulq_f32(ra, ca), vmulq_f32(ra, sa), vmulq_f32(rb, cb), vmulq_f32(rb, sb)}};
    vst4q_f32(z, nv); /* the interleaving store is the 4 x 4 transpose */
}

/* x = x*alpha + sd*z rounded like the scalar twin (no FMA). Groups of 16
 * normals start at element 4 blk; element offset + i is position
 * i + (offset % 4) of that run. */
void balm_scale_noise_f32_neon(size_t n, float *x, float alpha, float sd, uint64_t seed,
                               uint64_t offset)
{
    balm_philox_keys K;
    balm_philox_schedule(seed, &K);
    const size_t s = (size_t)(offset & 3);
    uint64_t blk = offset >> 2;
    float z[16];
    /* Group g covers run positions [16g, 16g+16), i.e. x[16g - s ..]. */
    for (size_t base = 0; base < n + s; base += 16, blk += 4) {
        normals16(&K, blk, z);
        size_t j = base == 0 ? s : 0;            /* first run position used */
        size_t jend = n + s - base < 16 ? n + s - base : 16;
        float *xp = x + (base + j - s);          /* x index of position j */
        for (; j + 4 <= jend; j += 4, xp += 4)
            vst1q_f32(xp, vaddq_f32(vmulq_n_f32(vld1q_f32(xp), alpha), vmulq_n_f32(vld1q_f32(z + j), sd)));
        for (; j < jend; j++, xp++)
            *xp = *xp * alpha + sd * z[j];
    }
}
