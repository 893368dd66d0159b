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
/* Each 32-bit word of a Philox4x32 state sits in the low half of a 64-bit
 * lane, where _mm256_mul_epu32 reads it and writes the full 64-bit product
 * (hi = product >> 32, lo = its low half; the garbage in the high halves is
 * never read): 8 uops per round for 4 blocks. One round is a ~8-cycle
 * dependency chain, so NZ_SETS independent sets are interleaved to fill the
 * vector ports. */
#define NZ_SETS 4 /* 2 or 4; 4 measured ~12% faster despite spills */
/* Blocks per call of uniforms_sets. */
#define NZ_CALL_BLK (4 * NZ_SETS)

/* balm_u32_to_uniform on 8 lanes: ((r >> 9) * 2 + 1) / 2^24, exact. */
static inline __m256 to_uniform8(__m256i r)
{
    __m256i j = _mm256_or_si256(_mm256_slli_epi32(_mm256_srli_epi32(r, 9), 1), _mm256_set1_epi32(1));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(j), _mm256_set1_ps(1.0f / 16777216.0f));
}

/* Uniforms of the NZ_CALL_BLK blocks from blk: u[i * ld + j] = output i of
 * block blk + j, bit-identical to balm_philox4x32_10 + balm_u32_to_uniform.
 * Sets 0/1 hold the even/odd blocks of the first 8, sets 2/3 (if any) of the
 * next 8, so packing the low halves of (even, odd) lanes gives block order. */
static inline void uniforms_sets(const balm_philox_keys *K, uint64_t blk, float *u, size_t ld)
{
    const __m256i m0 = _mm256_set1_epi64x(BALM_PHILOX_M0), m1 = _mm256_set1_epi64x(BALM_PHILOX_M1);
    __m256i c0[NZ_SETS], c1[NZ_SETS], c2[NZ_SETS], c3[NZ_SETS];
    for (int s = 0; s < NZ_SETS; s++) {
        /* set s: blocks blk + 8 (s / 2) + (s % 2) + {0, 2, 4, 6} */
        __m256i b = _mm256_add_epi64(_mm256_set1_epi64x((long long)(blk + 8 * (uint64_t)(s / 2) + (uint64_t)(s % 2))),
                                     _mm256_setr_epi64x(0, 2, 4, 6));
        c0[s] = b;
        c1[s] = _mm256_srli_epi64(b, 32);
        c2[s] = c3[s] = _mm256_setzero_si256();
    }
    for (int i = 0; i < 10; i++) {
        const __m256i k0 = _mm256_set1_epi32((int)K->k0[i]), k1 = _mm256_set1_epi32((int)K->k1[i]);
        for (int s = 0; s < NZ_SETS; s++) {
            __m256i p0 = _mm256_mul_epu32(c0[s], m0), p1 = _mm256_mul_epu32(c2[s], m1);
            /* (c1 ^ k) first: off the mul -> shift critical path. */
            c0[s] = _mm256_xor_si256(_mm256_srli_epi64(p1, 32), _mm256_xor_si256(c1[s], k0));
            c1[s] = p1;
            c2[s] = _mm256_xor_si256(_mm256_srli_epi64(p0, 32), _mm256_xor_si256(c3[s], k1));
            c3[s] = p0;
        }
    }
    for (int h = 0; h < NZ_SETS / 2; h++) {
        const int e = 2 * h, o = 2 * h + 1;
        _mm256_storeu_ps(u + 0 * ld + 8 * h, to_uniform8(_mm256_blend_epi32(c0[e], _mm256_slli_epi64(c0[o], 32), 0xAA)));
        _mm256_storeu_ps(u + 1 * ld + 8 * h, to_uniform8(_mm256_blend_epi32(c1[e], _mm256_slli_epi64(c1[o], 32), 0xAA)));
        _mm256_storeu_ps(u + 2 * ld + 8 * h, to_uniform8(_mm256_blend_epi32(c2[e], _mm256_slli_epi64(c2[o], 32), 0xAA)));
        _mm256_storeu_ps(u + 3 * ld + 8 * h, to_uniform8(_mm256_blend_epi32(c3[e], _mm256_slli_epi64(c3[o], 32), 0xAA)));
    }
}

/* Blocks per chunk: the uniforms (4 x NZ_BLK) and normals (4 NZ_BLK) of one
 * chunk live on the stack. Two passes per chunk: Philox for all blocks, then
 * Box-Muller, so each pass has long independent chains. */
#define NZ_BLK 64

/* The 4 NZ_BLK normals of blocks blk .. blk+NZ_BLK-1 in element order
 * (z[p] is element 4 blk + p). Box-Muller as in common/philox.h, in float:
 * n0 = sqrt(-2 ln u0) cos(2 pi u1), n1 = ... sin(2 pi u1), n2, n3 alike.
 * One small loop per step (radii, angles, products) so that the out-of-order
 * core overlaps many independent iterations of each. */
static void normals_chunk(const balm_philox_keys *K, uint64_t blk, float *z)
{
    /* u rows: u0 | u1 | u2 | u3, NZ_BLK each; rows 0 and 2 become radii,
     * rows 1 and 3 sines, cs the cosines of rows 1 and 3. */
    float u[4 * NZ_BLK], cs[2 * NZ_BLK];
    for (int j = 0; j < NZ_BLK; j += NZ_CALL_BLK)
        uniforms_sets(K, blk + (uint64_t)j, u + j, NZ_BLK);
    for (int r = 0; r < 4; r += 2)
        for (int j = 0; j < NZ_BLK; j += 8) {
            /* u is in [2^-24, 1): normal and finite, so the log core suffices. */
            float *p = u + r * NZ_BLK + j;
            __m256 l = balm_log8_core(_mm256_loadu_ps(p), _mm256_setzero_ps());
            _mm256_storeu_ps(p, _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), l)));
        }
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < NZ_BLK; j += 8) {
            float *p = u + (2 * r + 1) * NZ_BLK + j;
            __m256 sn, cn;
            balm_sincos2pi8(_mm256_loadu_ps(p), &sn, &cn);
            _mm256_storeu_ps(p, sn);
            _mm256_storeu_ps(cs + r * NZ_BLK + j, cn);
        }
    for (int j = 0; j < NZ_BLK; j += 8) {
        __m256 ra = _mm256_loadu_ps(u + j), rb = _mm256_loadu_ps(u + 2 * NZ_BLK + j);
        __m256 n0 = _mm256_mul_ps(ra, _mm256_loadu_ps(cs + j));
        __m256 n1 = _mm256_mul_ps(ra, _mm256_loadu_ps(u + NZ_BLK + j));
        __m256 n2 = _mm256_mul_ps(rb, _mm256_loadu_ps(cs + NZ_BLK + j));
        __m256 n3 = _mm256_mul_ps(rb, _mm256_loadu_ps(u + 3 * NZ_BLK + j));
        /* 4 x 8 transpose: lane b of n_i goes to element 4b + i. */
        __m256 t0 = _mm256_unpacklo_ps(n0, n1), t1 = _mm256_unpackhi_ps(n0, n1);
        __m256 t2 = _mm256_unpacklo_ps(n2, n3), t3 = _mm256_unpackhi_ps(n2, n3);
        __m256 a0 = _mm256_shuffle_ps(t0, t2, 0x44), a1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        __m256 a2 = _mm256_shuffle_ps(t1, t3, 0x44), a3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        float *zp = z + 4 * j;
        _mm256_storeu_ps(zp, _mm256_permute2f128_ps(a0, a1, 0x20));
        _mm256_storeu_ps(zp + 8, _mm256_permute2f128_ps(a2, a3, 0x20));
        _mm256_storeu_ps(zp + 16, _mm256_permute2f128_ps(a0, a1, 0x31));
        _mm256_storeu_ps(zp + 24, _mm256_permute2f128_ps(a2, a3, 0x31));
    }
}

void balm_vuniform_f32_avx2(uint64_t seed, uint64_t offset, size_t n, float *out)
{
    balm_philox_keys K;
    balm_philox_schedule(seed, &K);
    float u[4 * NZ_CALL_BLK];
    uint64_t blk = offset >> 2;
    /* Element offset + i is at position offset + i - 4 blk of the run. */
    size_t p = (size_t)(offset & 3), done = 0;
    while (done < n) {
        uniforms_sets(&K, blk, u, NZ_CALL_BLK);
        for (; p < 4 * NZ_CALL_BLK && done < n; p++)
            out[done++] = u[(p % 4) * NZ_CALL_BLK + p / 4];
        p = 0;
        blk += NZ_CALL_BLK;
    }
}

void balm_scale_noise_f32_avx2(size_t n, float *x, float alpha, float sd, uint64_t seed,
                               uint64_t offset)
{
    balm_philox_keys K;
    balm_philox_schedule(seed, &K);
    const __m256 va = _mm256_set1_ps(alpha), vs = _mm256_set1_ps(sd);
    float z[4 * NZ_BLK];
    uint64_t blk = offset >> 2;
    /* Chunks start at element 4 blk: the first one at x[-(offset & 3)]. */
    size_t p0 = (size_t)(offset & 3), i = 0;
    while (i < n) {
        normals_chunk(&K, blk, z);
        size_t len = 4 * NZ_BLK - p0 < n - i ? 4 * NZ_BLK - p0 : n - i;
        const float *zp = z + p0;
        float *xp = x + i;
        /* x*alpha + sd*z rounded like the scalar twin (no FMA). */
        size_t k = 0;
        for (; k + 8 <= len; k += 8)
            _mm256_storeu_ps(xp + k, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(xp + k), va),
                                                   _mm256_mul_ps(vs, _mm256_loadu_ps(zp + k))));
        if (k < len) {
            __m256i msk = balm_tail_mask(len - k);
            _mm256_maskstore_ps(xp + k, msk, _mm256_add_ps(_mm256_mul_ps(_mm256_maskload_ps(xp + k, msk), va),
                                                           _mm256_mul_ps(vs, _mm256_maskload_ps(zp + k, msk))));
        }
        i += len;
        p0 = 0;
        blk += NZ_BLK;
    }
}
