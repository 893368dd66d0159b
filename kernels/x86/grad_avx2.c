/* Gradient scaling, moments and Gaussian noise, AVX2. */
#include "common/philox.h"
#include "kernels.h"
#include "x86/vecmath_avx2.h"

void balm_scale_f32_avx2(size_t n, float *x, float alpha)
{
    const __m256 va = _mm256_set1_ps(alpha);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), va));
        _mm256_storeu_ps(x + i + 8, _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), va));
    }
    for (; i < n; i += 8) {
        __m256i msk = balm_tail_mask(n - i < 8 ? n - i : 8);
        _mm256_maskstore_ps(x + i, msk, _mm256_mul_ps(_mm256_maskload_ps(x + i, msk), va));
    }
}

/* Double accumulation as in the scalar twin (x and x*x are exact in double);
 * only the order of the additions differs. */
void balm_sums_f32_avx2(size_t n, const float *x, double out[2])
{
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    __m256d q0 = s0, q1 = s0, q2 = s0, q3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
        __m256d b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        __m256d c = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8));
        __m256d d = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12));
        s0 = _mm256_add_pd(s0, a); q0 = _mm256_fmadd_pd(a, a, q0);
        s1 = _mm256_add_pd(s1, b); q1 = _mm256_fmadd_pd(b, b, q1);
        s2 = _mm256_add_pd(s2, c); q2 = _mm256_fmadd_pd(c, c, q2);
        s3 = _mm256_add_pd(s3, d); q3 = _mm256_fmadd_pd(d, d, q3);
    }
    for (; i < n; i += 4) {
        /* Masked-off lanes load 0.0f: exact zero terms. */
        __m128i msk = _mm256_castsi256_si128(balm_tail_mask(n - i < 4 ? n - i : 4));
        __m256d a = _mm256_cvtps_pd(_mm_maskload_ps(x + i, msk));
        s0 = _mm256_add_pd(s0, a);
        q0 = _mm256_fmadd_pd(a, a, q0);
    }
    out[0] = balm_hsum_pd(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
    out[1] = balm_hsum_pd(_mm256_add_pd(_mm256_add_pd(q0, q1), _mm256_add_pd(q2, q3)));
}

/* ------------------------------------------------------------ Philox */
/* lo and hi 32 bits of a * b for the 8 unsigned lanes of a: _mm256_mul_epu32
 * multiplies the even lanes; the odd ones are shifted down first. */
static inline void mulhilo8(__m256i a, __m256i b, __m256i *lo, __m256i *hi)
{
    __m256i pe = _mm256_mul_epu32(a, b);
    __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), b);
    *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

/* Philox4x32-10 of 8 blocks (counter lanes c0 = low, c1 = high 32 bits of the
 * block number), exactly as balm_philox4x32_10; outputs lane-wise r[0..3]. */
static inline void philox8(__m256i c0, __m256i c1, const uint32_t k0[10], const uint32_t k1[10],
                           __m256i r[4])
{
    const __m256i m0 = _mm256_set1_epi32((int)BALM_PHILOX_M0), m1 = _mm256_set1_epi32((int)BALM_PHILOX_M1);
    __m256i c2 = _mm256_setzero_si256(), c3 = c2;
    for (int i = 0; i < 10; i++) {
        __m256i lo0, hi0, lo1, hi1;
        mulhilo8(c0, m0, &lo0, &hi0);
        mulhilo8(c2, m1, &lo1, &hi1);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0[i]));
        c1 = lo1;
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1[i]));
        c3 = lo0;
    }
    r[0] = c0; r[1] = c1; r[2] = c2; r[3] = c3;
}

/* balm_u32_to_uniform on 8 lanes: ((r >> 9) * 2 + 1) / 2^24, exact. */
static inline __m256 to_uniform8(__m256i r)
{
    __m256i j = _mm256_or_si256(_mm256_slli_epi32(_mm256_srli_epi32(r, 9), 1), _mm256_set1_epi32(1));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(j), _mm256_set1_ps(1.0f / 16777216.0f));
}

typedef struct {
    uint32_t k0[10], k1[10];
} philox_keys;

static void philox_schedule(uint64_t seed, philox_keys *K)
{
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int i = 0; i < 10; i++) {
        K->k0[i] = k0;
        K->k1[i] = k1;
        k0 += BALM_PHILOX_W0;
        k1 += BALM_PHILOX_W1;
    }
}

/* The 8 Philox blocks blk .. blk+7 as uniforms: u[i] lane j = output i of
 * block blk + j. */
static inline void uniforms8(const philox_keys *K, uint64_t blk, __m256 u[4])
{
    uint32_t lo[8], hi[8];
    for (int j = 0; j < 8; j++) {
        lo[j] = (uint32_t)(blk + (uint64_t)j);
        hi[j] = (uint32_t)((blk + (uint64_t)j) >> 32);
    }
    __m256i r[4];
    philox8(_mm256_loadu_si256((const __m256i *)lo), _mm256_loadu_si256((const __m256i *)hi),
            K->k0, K->k1, r);
    for (int i = 0; i < 4; i++)
        u[i] = to_uniform8(r[i]);
}

/* The 32 normals of blocks blk .. blk+7 in element order: o[q] holds
 * elements 8q .. 8q+7 of the run starting at element 4 blk. Box-Muller as in
 * common/philox.h, in float. */
static inline void normals32(const philox_keys *K, uint64_t blk, __m256 o[4])
{
    __m256 u[4];
    uniforms8(K, blk, u);
    __m256 ra = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), balm_log8(u[0])));
    __m256 rb = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), balm_log8(u[2])));
    __m256 sa, ca, sb, cb;
    balm_sincos2pi8(u[1], &sa, &ca);
    balm_sincos2pi8(u[3], &sb, &cb);
    __m256 n0 = _mm256_mul_ps(ra, ca), n1 = _mm256_mul_ps(ra, sa);
    __m256 n2 = _mm256_mul_ps(rb, cb), n3 = _mm256_mul_ps(rb, sb);
    /* 4 x 8 transpose: lane j of n_i goes to element 4j + i. */
    __m256 t0 = _mm256_unpacklo_ps(n0, n1), t1 = _mm256_unpackhi_ps(n0, n1);
    __m256 t2 = _mm256_unpacklo_ps(n2, n3), t3 = _mm256_unpackhi_ps(n2, n3);
    __m256 a0 = _mm256_shuffle_ps(t0, t2, 0x44), a1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 a2 = _mm256_shuffle_ps(t1, t3, 0x44), a3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    o[0] = _mm256_permute2f128_ps(a0, a1, 0x20);
    o[1] = _mm256_permute2f128_ps(a2, a3, 0x20);
    o[2] = _mm256_permute2f128_ps(a0, a1, 0x31);
    o[3] = _mm256_permute2f128_ps(a2, a3, 0x31);
}

void balm_vuniform_f32_avx2(uint64_t seed, uint64_t offset, size_t n, float *out)
{
    philox_keys K;
    philox_schedule(seed, &K);
    float buf[32];
    uint64_t blk = offset >> 2;
    /* Element offset + i sits at position offset + i - 4 blk of the run. */
    size_t skip = (size_t)(offset & 3), done = 0;
    while (done < n) {
        __m256 u[4];
        uniforms8(&K, blk, u);
        float lanes[4][8];
        for (int i = 0; i < 4; i++)
            _mm256_storeu_ps(lanes[i], u[i]);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++)
                buf[4 * j + i] = lanes[i][j];
        for (size_t p = skip; p < 32 && done < n; p++)
            out[done++] = buf[p];
        skip = 0;
        blk += 8;
    }
}

void balm_scale_noise_f32_avx2(size_t n, float *x, float alpha, float sd, uint64_t seed,
                               uint64_t offset)
{
    philox_keys K;
    philox_schedule(seed, &K);
    const __m256 va = _mm256_set1_ps(alpha), vs = _mm256_set1_ps(sd);
    uint64_t blk = offset >> 2;
    /* Runs of 32 elements start at element 4 blk, i.e. at x[-skip] first. */
    size_t skip = (size_t)(offset & 3), i = 0;
    while (i < n) {
        __m256 o[4];
        normals32(&K, blk, o);
        if (skip == 0 && n - i >= 32) {
            /* x*alpha + sd*z rounded like the scalar twin (no FMA). */
            for (int q = 0; q < 4; q++) {
                float *xp = x + i + 8 * q;
                _mm256_storeu_ps(xp, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(xp), va),
                                                   _mm256_mul_ps(vs, o[q])));
            }
            i += 32;
        } else {
            /* First run (offset not a multiple of 4) or the last one. */
            float z[32];
            for (int q = 0; q < 4; q++)
                _mm256_storeu_ps(z + 8 * q, o[q]);
            for (size_t p = skip; p < 32 && i < n; p++, i++)
                x[i] = x[i] * alpha + sd * z[p];
        }
        skip = 0;
        blk += 8;
    }
}
