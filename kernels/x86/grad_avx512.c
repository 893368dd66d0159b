/* Gradient scaling, moments and Gaussian noise, AVX-512. */
#include "common/philox.h"
#include "kernels.h"
#include "x86/vecmath_avx512.h"

void balm_scale_f32_avx512(size_t n, float *x, float alpha)
{
    const __m512 va = _mm512_set1_ps(alpha);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), va));
        _mm512_storeu_ps(x + i + 16, _mm512_mul_ps(_mm512_loadu_ps(x + i + 16), va));
    }
    for (; i < n; i += 16) {
        __mmask16 k = balm512_tail(n - i);
        balm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(balm512_maskz_loadu_ps(k, x + i), va));
    }
}

/* Double accumulation as in the scalar twin (x and x*x are exact in double);
 * only the order of the additions differs. */
static inline void sums_step(__m512 v, __m512d *s, __m512d *q)
{
    __m512d lo = balm512_cvtps_pd_lo(v), hi = balm512_cvtps_pd_hi(v);
    *s = _mm512_add_pd(*s, _mm512_add_pd(lo, hi));
    *q = _mm512_fmadd_pd(hi, hi, _mm512_fmadd_pd(lo, lo, *q));
}

void balm_sums_f32_avx512(size_t n, const float *x, double out[2])
{
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, q0 = s0, q1 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        sums_step(_mm512_loadu_ps(x + i), &s0, &q0);
        sums_step(_mm512_loadu_ps(x + i + 16), &s1, &q1);
    }
    /* Masked-off lanes load 0.0f: exact zero terms. */
    for (; i < n; i += 16)
        sums_step(balm512_maskz_loadu_ps(balm512_tail(n - i), x + i), &s0, &q0);
    out[0] = balm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    out[1] = balm512_reduce_add_pd(_mm512_add_pd(q0, q1));
}

/* ------------------------------------------------------------ Philox */
/* lo and hi 32 bits of a * b per unsigned lane: _mm512_mul_epu32 multiplies
 * the even lanes; the odd ones are shifted down first. */
static inline void mulhilo16(__m512i a, __m512i b, __m512i *lo, __m512i *hi)
{
    __m512i pe = _mm512_mul_epu32(a, b);
    __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), b);
    *lo = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
}

/* Philox4x32-10 of the 16 blocks blk .. blk+15, exactly as
 * balm_philox4x32_10, as uniforms: u[i] lane j = output i of block blk+j. */
static inline void uniforms16(const balm_philox_keys *K, uint64_t blk, __m512 u[4])
{
    __m512i c0, c1;
    if ((uint32_t)blk <= UINT32_MAX - 15u) { /* no carry into the high word */
        c0 = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)blk),
                              _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
        c1 = _mm512_set1_epi32((int)(uint32_t)(blk >> 32));
    } else {
        uint32_t lo[16], hi[16];
        for (int j = 0; j < 16; j++) {
            lo[j] = (uint32_t)(blk + (uint64_t)j);
            hi[j] = (uint32_t)((blk + (uint64_t)j) >> 32);
        }
        c0 = _mm512_loadu_si512(lo);
        c1 = _mm512_loadu_si512(hi);
    }
    const __m512i m0 = _mm512_set1_epi32((int)BALM_PHILOX_M0), m1 = _mm512_set1_epi32((int)BALM_PHILOX_M1);
    __m512i c2 = _mm512_setzero_si512(), c3 = c2;
    for (int r = 0; r < 10; r++) {
        __m512i lo0, hi0, lo1, hi1;
        mulhilo16(c0, m0, &lo0, &hi0);
        mulhilo16(c2, m1, &lo1, &hi1);
        c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)K->k0[r]));
        c1 = lo1;
        c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)K->k1[r]));
        c3 = lo0;
    }
    const __m512i one = _mm512_set1_epi32(1);
    const __m512 scale = _mm512_set1_ps(1.0f / 16777216.0f);
    __m512i c[4] = {c0, c1, c2, c3};
    /* balm_u32_to_uniform: ((r >> 9) * 2 + 1) / 2^24, exact. */
    for (int i = 0; i < 4; i++)
        u[i] = _mm512_mul_ps(balm512_cvtepi32_ps(_mm512_or_si512(_mm512_slli_epi32(_mm512_srli_epi32(c[i], 9), 1), one)),
                             scale);
}

static inline __m512 unpacklo64(__m512 a, __m512 b)
{
    return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}
static inline __m512 unpackhi64(__m512 a, __m512 b)
{
    return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
}

/* The 64 normals of blocks blk .. blk+15 in element order: o[q] holds the
 * elements 16q .. 16q+15 of the run starting at element 4 blk. Box-Muller as
 * in common/philox.h, in float. */
static inline void normals64(const balm_philox_keys *K, uint64_t blk, __m512 o[4])
{
    __m512 u[4];
    uniforms16(K, blk, u);
    const __m512 m2 = _mm512_set1_ps(-2.0f);
    __m512 ra = _mm512_sqrt_ps(_mm512_mul_ps(m2, balm512_log(u[0])));
    __m512 rb = _mm512_sqrt_ps(_mm512_mul_ps(m2, balm512_log(u[2])));
    __m512 sa, ca, sb, cb;
    balm512_sincos2pi(u[1], &sa, &ca);
    balm512_sincos2pi(u[3], &sb, &cb);
    __m512 n0 = _mm512_mul_ps(ra, ca), n1 = _mm512_mul_ps(ra, sa);
    __m512 n2 = _mm512_mul_ps(rb, cb), n3 = _mm512_mul_ps(rb, sb);
    /* 4 x 16 transpose, lane j of n_i to element 4j + i: within each 128-bit
     * group first (a_k holds block 4g+k in group g), then the 4 x 4
     * transpose of the groups (two-source permutes; SIMDe has no
     * shuffle_f32x4). */
    __m512 t0 = _mm512_unpacklo_ps(n0, n1), t1 = _mm512_unpackhi_ps(n0, n1);
    __m512 t2 = _mm512_unpacklo_ps(n2, n3), t3 = _mm512_unpackhi_ps(n2, n3);
    __m512 a0 = unpacklo64(t0, t2), a1 = unpackhi64(t0, t2);
    __m512 a2 = unpacklo64(t1, t3), a3 = unpackhi64(t1, t3);
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    const __m512i h0 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    const __m512i h1 = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    __m512 b0 = _mm512_permutex2var_ps(a0, lo, a1); /* a0.g0 a1.g0 a0.g1 a1.g1 */
    __m512 b1 = _mm512_permutex2var_ps(a0, hi, a1); /* a0.g2 a1.g2 a0.g3 a1.g3 */
    __m512 b2 = _mm512_permutex2var_ps(a2, lo, a3);
    __m512 b3 = _mm512_permutex2var_ps(a2, hi, a3);
    o[0] = _mm512_permutex2var_ps(b0, h0, b2);
    o[1] = _mm512_permutex2var_ps(b0, h1, b2);
    o[2] = _mm512_permutex2var_ps(b1, h0, b3);
    o[3] = _mm512_permutex2var_ps(b1, h1, b3);
}

/* The normal stream from element 4 blk on, one vector of 16 at a time. */
typedef struct {
    balm_philox_keys K;
    uint64_t blk;
    __m512 o[4];
    int next;
} normal_stream;

static inline __m512 stream_pull(normal_stream *S)
{
    if (S->next == 4) {
        normals64(&S->K, S->blk, S->o);
        S->blk += 16;
        S->next = 0;
    }
    return S->o[S->next++];
}

/* x = x*alpha + sd*z rounded like the scalar twin (no FMA). Element
 * offset + i is position i + s of the block-aligned stream, s = offset % 4;
 * for s > 0 each vector is cut from two consecutive stream vectors. */
void balm_scale_noise_f32_avx512(size_t n, float *x, float alpha, float sd, uint64_t seed,
                                 uint64_t offset)
{
    normal_stream S;
    balm_philox_schedule(seed, &S.K);
    S.blk = offset >> 2;
    S.next = 4;
    const unsigned s = (unsigned)(offset & 3);
    const __m512 va = _mm512_set1_ps(alpha), vs = _mm512_set1_ps(sd);
    const __m512i shift = _mm512_add_epi32(_mm512_set1_epi32((int)s),
                                           _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __m512 cur = stream_pull(&S);
    for (size_t i = 0; i < n; i += 16) {
        size_t rem = n - i < 16 ? n - i : 16;
        __m512 z = cur;
        if (s) {
            /* The next stream vector only if this one's last element needs it. */
            __m512 nxt = s + rem > 16 ? stream_pull(&S) : _mm512_setzero_ps();
            z = _mm512_permutex2var_ps(cur, shift, nxt);
            cur = nxt;
        } else if (i + 16 < n) {
            cur = stream_pull(&S);
        }
        if (rem == 16) {
            _mm512_storeu_ps(x + i, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), va), _mm512_mul_ps(vs, z)));
        } else {
            __mmask16 k = balm512_tail(rem);
            balm512_mask_storeu_ps(x + i, k, _mm512_add_ps(_mm512_mul_ps(balm512_maskz_loadu_ps(k, x + i), va),
                                                           _mm512_mul_ps(vs, z)));
        }
    }
}
