/* Vector math for the NEON (AArch64 Advanced SIMD) kernels: 4 floats at a
 * time.
 *
 * The same algorithms, constants and operation order as vecmath_avx2.h and
 * vecmath_avx512.h (Cephes-style exp with a Cody-Waite reduction, Cephes
 * log by Estrin's scheme, compensated division for the sigmoids, exact
 * reduction of the Box-Muller angle in u), so every ISA agrees lane for
 * lane up to rounding details of the division.
 * Measured under qemu-aarch64 against double precision (17 million float
 * bit patterns spread over the whole range; ulp of the correctly rounded
 * float result, denormals in units of 2^-149):
 *   exp 0.98 ulp, log 0.76 ulp, sigmoid 1.46 ulp, log-sigmoid 1.86 ulp,
 *   sincos(2 pi u) 8.2e-8 absolute (1.38 * 2^-24) on the Philox uniforms.
 * Special values follow C99 Annex F: exp(-inf) = 0, exp(x > 88.72) = +inf,
 * exp(x < -103.97) = 0 (denormal results in between rounded once), log(0) =
 * -inf, log(x < 0) = NaN, log(+inf) = +inf, denormal inputs exact-scaled,
 * NaN propagates (AArch64 Linux runs with denormals enabled, FPCR.FZ = 0).
 *
 * Tails: the kernels handle the last n % 4 elements one at a time; where an
 * element needs a vector function they run it through lane 0 of a vector
 * (balm_neon_lane0), so tails get exactly the same values as full vectors. */
#ifndef BALM_VECMATH_NEON_H
#define BALM_VECMATH_NEON_H

#include <arm_neon.h>
#include <math.h>
#include <stdint.h>

#define BALM_VN(x) vdupq_n_f32(x)

static inline float32x4_t balm_neon_neg(float32x4_t x)
{
    return vnegq_f32(x);
}

/* exp(x) = 2^n exp(r), n = round(x log2 e), r = x - n ln2 (Cody-Waite,
 * exact), exp(r) by the Cephes degree-7 expansion; 2^n applied as two
 * factors so denormal results round once and n = 128 overflows to inf. */
static inline float32x4_t balm_neon_exp(float32x4_t x)
{
    /* vmaxq/vminq return NaN when either operand is NaN. */
    x = vminq_f32(BALM_VN(89.0f), vmaxq_f32(BALM_VN(-104.0f), x));
    float32x4_t n = vrndnq_f32(vmulq_f32(x, BALM_VN(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, BALM_VN(0.693359375f));
    r = vfmsq_f32(r, n, BALM_VN(-2.12194440e-4f));
    float32x4_t p = BALM_VN(1.9875691500E-4f);
    p = vfmaq_f32(BALM_VN(1.3981999507E-3f), p, r);
    p = vfmaq_f32(BALM_VN(8.3334519073E-3f), p, r);
    p = vfmaq_f32(BALM_VN(4.1665795894E-2f), p, r);
    p = vfmaq_f32(BALM_VN(1.6666665459E-1f), p, r);
    p = vfmaq_f32(BALM_VN(5.0000001201E-1f), p, r);
    float32x4_t r2 = vmulq_f32(r, r);
    p = vfmaq_f32(r, p, r2);
    p = vaddq_f32(p, BALM_VN(1.0f));
    int32x4_t ni = vcvtnq_s32_f32(n); /* NaN lanes give 0; p is NaN there */
    int32x4_t n1 = vshrq_n_s32(ni, 1);
    int32x4_t n2 = vsubq_s32(ni, n1);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    return vmulq_f32(vmulq_f32(p, s1), s2);
}

/* log(x) = e ln2 + log(m), m in [sqrt(1/2), sqrt(2)), Cephes logf
 * polynomial by Estrin's scheme (as vecmath_avx2.h). balm_neon_log_core
 * takes x > 0 normal and finite and subtracts ebias from its exponent;
 * balm_neon_log scales denormals by 2^23 first and patches the specials. */
static inline float32x4_t balm_neon_log_core(float32x4_t xs, float32x4_t ebias)
{
    uint32x4_t xi = vreinterpretq_u32_f32(xs);
    int32x4_t ei = vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(xi, 23)), vdupq_n_s32(126));
    float32x4_t m = vreinterpretq_f32_u32(vorrq_u32(vandq_u32(xi, vdupq_n_u32(0x007FFFFF)), vdupq_n_u32(0x3F000000)));
    float32x4_t e = vsubq_f32(vcvtq_f32_s32(ei), ebias);
    /* m < sqrt(1/2): use 2m - 1 and e - 1 (both exact). */
    uint32x4_t small = vcltq_f32(m, BALM_VN(0.707106781186547524f));
    e = vsubq_f32(e, vreinterpretq_f32_u32(vandq_u32(small, vreinterpretq_u32_f32(BALM_VN(1.0f)))));
    float32x4_t f = vsubq_f32(vaddq_f32(m, vreinterpretq_f32_u32(vandq_u32(small, vreinterpretq_u32_f32(m)))),
                              BALM_VN(1.0f));
    float32x4_t z = vmulq_f32(f, f), z2 = vmulq_f32(z, z);
    float32x4_t q0 = vfmaq_f32(BALM_VN(3.3333331174E-1f), BALM_VN(-2.4999993993E-1f), f);
    float32x4_t q1 = vfmaq_f32(BALM_VN(2.0000714765E-1f), BALM_VN(-1.6668057665E-1f), f);
    float32x4_t q2 = vfmaq_f32(BALM_VN(1.4249322787E-1f), BALM_VN(-1.2420140846E-1f), f);
    float32x4_t q3 = vfmaq_f32(BALM_VN(1.1676998740E-1f), BALM_VN(-1.1514610310E-1f), f);
    float32x4_t r0 = vfmaq_f32(q0, q1, z);
    float32x4_t r1 = vfmaq_f32(q3, BALM_VN(7.0376836292E-2f), z);
    r1 = vfmaq_f32(q2, r1, z);
    float32x4_t y = vfmaq_f32(r0, r1, z2);
    y = vmulq_f32(vmulq_f32(y, f), z);
    y = vfmaq_f32(y, e, BALM_VN(-2.12194440e-4f));
    y = vfmaq_f32(y, z, BALM_VN(-0.5f));
    float32x4_t r = vaddq_f32(f, y);
    return vfmaq_f32(r, e, BALM_VN(0.693359375f));
}

static inline float32x4_t balm_neon_log(float32x4_t x)
{
    uint32x4_t isden = vcltq_f32(x, BALM_VN(1.17549435e-38f));
    float32x4_t xs = vbslq_f32(isden, vmulq_f32(x, BALM_VN(8388608.0f)), x);
    float32x4_t ebias = vreinterpretq_f32_u32(vandq_u32(isden, vreinterpretq_u32_f32(BALM_VN(23.0f))));
    float32x4_t r = balm_neon_log_core(xs, ebias);
    /* x = 0 -> -inf; x < 0 or NaN -> NaN; x = +inf -> +inf. */
    const float32x4_t zero = vdupq_n_f32(0.0f), inf = BALM_VN(INFINITY);
    r = vbslq_f32(vceqq_f32(x, zero), BALM_VN(-INFINITY), r);
    r = vbslq_f32(vmvnq_u32(vcgeq_f32(x, zero)), BALM_VN(NAN), r);
    r = vbslq_f32(vceqq_f32(x, inf), inf, r);
    return r;
}

/* log1p(y) for y in [0, 1] or NaN: log(1+y) + ((y - ((1+y) - 1)) / (1+y));
 * 1+y is in [1, 2], so the core suffices (NaN y gives a NaN correction). */
static inline float32x4_t balm_neon_log1p_pos(float32x4_t y)
{
    float32x4_t u = vaddq_f32(BALM_VN(1.0f), y);
    float32x4_t corr = vdivq_f32(vsubq_f32(y, vsubq_f32(u, BALM_VN(1.0f))), u);
    return vaddq_f32(balm_neon_log_core(u, vdupq_n_f32(0.0f)), corr);
}

/* Lanes whose sign bit is set. */
static inline uint32x4_t balm_neon_signmask(float32x4_t x)
{
    return vreinterpretq_u32_s32(vshrq_n_s32(vreinterpretq_s32_f32(x), 31));
}

/* num / (1 + t) for t in [0, 1] with the roundings of 1 + t and of the
 * quotient corrected (as vecmath_avx2.h): 1 + t = den + lo exactly
 * (Fast2Sum), the remainder num - q (den + lo) from two FMAs, its quotient
 * through the 8-bit reciprocal estimate (enough for a correction of about
 * an ulp). Leaves about the error of t plus half an ulp. */
static inline float32x4_t balm_neon_div1p(float32x4_t num, float32x4_t t)
{
    float32x4_t den = vaddq_f32(BALM_VN(1.0f), t);
    float32x4_t lo = vsubq_f32(t, vsubq_f32(den, BALM_VN(1.0f)));
    float32x4_t q = vdivq_f32(num, den);
    float32x4_t rem = vfmsq_f32(vfmsq_f32(num, q, den), q, lo);
    return vfmaq_f32(q, rem, vrecpeq_f32(den));
}

/* sigmoid(x) and sigmoid(-x) from one t = exp(-|x|): 1/(1+t) and t/(1+t),
 * swapped where x is negative; no overflow, +-inf give exactly 1 and 0. */
static inline void balm_neon_sigmoid2(float32x4_t x, float32x4_t *sp, float32x4_t *sn)
{
    float32x4_t t = balm_neon_exp(vnegq_f32(vabsq_f32(x)));
    float32x4_t big = balm_neon_div1p(BALM_VN(1.0f), t), small = balm_neon_div1p(t, t);
    uint32x4_t neg = balm_neon_signmask(x);
    *sp = vbslq_f32(neg, small, big);
    *sn = vbslq_f32(neg, big, small);
}

/* For v: sigmoid(v), sigmoid(-v), logsigmoid(v), logsigmoid(-v) from one
 * exp and one log1p of t = exp(-|v|) (logsigmoid(x) = min(x,0) - log1p(t)). */
static inline void balm_neon_two_class(float32x4_t v, float32x4_t *sp, float32x4_t *sn,
                                       float32x4_t *lp, float32x4_t *ln)
{
    float32x4_t av = vabsq_f32(v);
    float32x4_t t = balm_neon_exp(vnegq_f32(av));
    float32x4_t big = balm_neon_div1p(BALM_VN(1.0f), t), small = balm_neon_div1p(t, t);
    float32x4_t lbig = vnegq_f32(balm_neon_log1p_pos(t)); /* logsigmoid(|v|) */
    float32x4_t lsmall = vsubq_f32(lbig, av);             /* logsigmoid(-|v|) */
    uint32x4_t neg = balm_neon_signmask(v);
    *sp = vbslq_f32(neg, small, big);
    *sn = vbslq_f32(neg, big, small);
    *lp = vbslq_f32(neg, lsmall, lbig);
    *ln = vbslq_f32(neg, lbig, lsmall);
}

/* sin and cos of 2 pi u, u in [0, 1]: q = round(4u), r = u - q/4 exact in
 * [-1/8, 1/8], a = 2 pi r; Taylor to a^11 / a^12; quadrant swap and signs. */
static inline void balm_neon_sincos2pi(float32x4_t u, float32x4_t *s, float32x4_t *c)
{
    float32x4_t q = vrndnq_f32(vmulq_f32(u, BALM_VN(4.0f)));
    float32x4_t r = vfmsq_f32(u, q, BALM_VN(0.25f));
    float32x4_t a = vmulq_f32(r, BALM_VN(6.28318530717958648f));
    float32x4_t a2 = vmulq_f32(a, a);
    float32x4_t ps = BALM_VN(-2.5052108385e-8f);
    ps = vfmaq_f32(BALM_VN(2.7557319224e-6f), ps, a2);
    ps = vfmaq_f32(BALM_VN(-1.9841269841e-4f), ps, a2);
    ps = vfmaq_f32(BALM_VN(8.3333333333e-3f), ps, a2);
    ps = vfmaq_f32(BALM_VN(-1.6666666667e-1f), ps, a2);
    ps = vmulq_f32(ps, a2);
    float32x4_t sn = vfmaq_f32(a, ps, a);
    float32x4_t pc = BALM_VN(2.0876756988e-9f);
    pc = vfmaq_f32(BALM_VN(-2.7557319224e-7f), pc, a2);
    pc = vfmaq_f32(BALM_VN(2.4801587302e-5f), pc, a2);
    pc = vfmaq_f32(BALM_VN(-1.3888888889e-3f), pc, a2);
    pc = vfmaq_f32(BALM_VN(4.1666666667e-2f), pc, a2);
    pc = vfmaq_f32(BALM_VN(-0.5f), pc, a2);
    float32x4_t cs = vfmaq_f32(BALM_VN(1.0f), pc, a2);
    uint32x4_t qi = vreinterpretq_u32_s32(vcvtnq_s32_f32(q));
    const uint32x4_t one = vdupq_n_u32(1);
    /* Odd quadrant: swap; sin negated for q mod 4 in {2, 3}, cos for {1, 2}. */
    uint32x4_t odd = vtstq_u32(qi, one);
    uint32x4_t sneg = vshlq_n_u32(vshrq_n_u32(qi, 1), 31);
    uint32x4_t cneg = vshlq_n_u32(veorq_u32(qi, vshrq_n_u32(qi, 1)), 31);
    float32x4_t s0 = vbslq_f32(odd, cs, sn), c0 = vbslq_f32(odd, sn, cs);
    *s = vreinterpretq_f32_u32(veorq_u32(vreinterpretq_u32_f32(s0), sneg));
    *c = vreinterpretq_f32_u32(veorq_u32(vreinterpretq_u32_f32(c0), cneg));
}

/* Lane 0 of a vector function applied to one value: the scalar epilogues
 * use it so that tail elements match full vectors exactly. */
static inline float32x4_t balm_neon_lane0(float v)
{
    return vsetq_lane_f32(v, vdupq_n_f32(0.0f), 0);
}

/* Exact widening add of 4 floats to two double accumulators. */
static inline void balm_neon_acc_pd(float32x4_t v, float64x2_t *lo, float64x2_t *hi)
{
    *lo = vaddq_f64(*lo, vcvt_f64_f32(vget_low_f32(v)));
    *hi = vaddq_f64(*hi, vcvt_high_f64_f32(v));
}

#endif
