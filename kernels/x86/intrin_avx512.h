/* AVX-512 intrinsics for the *_avx512.c kernels, native or through SIMDe.
 *
 * Native builds (-mavx512f -mavx512bw -mavx512dq -mavx512vl) include
 * <immintrin.h>. With BALM_USE_SIMDE (CMake option BALM_AVX512_SIMDE) the same
 * kernel sources compile against SIMDe's portable AVX-512 on top of AVX2, so
 * they can be tested on a machine without AVX-512.
 *
 * SIMDe 0.7.4 lacks many intrinsics the kernels need (masked loads and
 * stores, the _mm512_reduce_* family, float<->int and float->double
 * conversions, shuffle_f32x4, srai, ...). The kernels therefore use the
 * balm512_* helpers below for those: real single instructions natively,
 * lane loops in the SIMDe build. The SIMDe versions of the masked loads and
 * stores touch only the selected lanes, so the emulated build also checks
 * that the kernels never read or write past an array. Every other
 * intrinsic a kernel uses directly must exist in both (the SIMDe build
 * fails to compile otherwise: GCC refuses to inline the native one). */
#ifndef BALM_INTRIN_AVX512_H
#define BALM_INTRIN_AVX512_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef BALM_USE_SIMDE
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif

#define BALM_V16(x) _mm512_set1_ps(x)

/* The first `rem` lanes (rem <= 16). */
static inline __mmask16 balm512_tail(size_t rem)
{
    return (__mmask16)(rem >= 16 ? 0xFFFFu : (1u << rem) - 1u);
}

#ifndef BALM_USE_SIMDE
/* ------------------------------------------------------------ native */
static inline __m512 balm512_maskz_loadu_ps(__mmask16 k, const float *p)
{
    return _mm512_maskz_loadu_ps(k, p);
}
static inline void balm512_mask_storeu_ps(float *p, __mmask16 k, __m512 v)
{
    _mm512_mask_storeu_ps(p, k, v);
}
/* Widen the low / high 8 floats to doubles (exact). */
static inline __m512d balm512_cvtps_pd_lo(__m512 v)
{
    return _mm512_cvtps_pd(_mm512_castps512_ps256(v));
}
static inline __m512d balm512_cvtps_pd_hi(__m512 v)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}
static inline double balm512_reduce_add_pd(__m512d v)
{
    return _mm512_reduce_add_pd(v);
}
static inline __m512 balm512_cvtepi32_ps(__m512i v)
{
    return _mm512_cvtepi32_ps(v);
}
/* Round to nearest even (the values it sees are already integral). */
static inline __m512i balm512_cvtps_epi32(__m512 v)
{
    return _mm512_cvtps_epi32(v);
}
static inline __m512i balm512_srai_epi32(__m512i v, unsigned int n)
{
    return _mm512_srai_epi32(v, n);
}
/* Reciprocal to 2^-14 relative. */
static inline __m512 balm512_rcp(__m512 v)
{
    return _mm512_rcp14_ps(v);
}

#else
/* ------------------------------------------------- SIMDe lane loops */
/* Always inlined: an out-of-line copy passing 64-byte vectors by value
 * makes GCC warn about the AVX-512 ABI (-Wpsabi). */
#define BALM512_LOOP static inline __attribute__((always_inline))
BALM512_LOOP __m512 balm512_maskz_loadu_ps(__mmask16 k, const float *p)
{
    float t[16];
    for (int j = 0; j < 16; j++)
        t[j] = (k >> j) & 1 ? p[j] : 0.0f; /* masked-off lanes never read */
    return _mm512_loadu_ps(t);
}
BALM512_LOOP void balm512_mask_storeu_ps(float *p, __mmask16 k, __m512 v)
{
    float t[16];
    _mm512_storeu_ps(t, v);
    for (int j = 0; j < 16; j++)
        if ((k >> j) & 1)
            p[j] = t[j];
}
BALM512_LOOP __m512d balm512_cvtps_pd_lo(__m512 v)
{
    float t[16];
    double d[8];
    _mm512_storeu_ps(t, v);
    for (int j = 0; j < 8; j++)
        d[j] = t[j];
    return _mm512_loadu_pd(d);
}
BALM512_LOOP __m512d balm512_cvtps_pd_hi(__m512 v)
{
    float t[16];
    double d[8];
    _mm512_storeu_ps(t, v);
    for (int j = 0; j < 8; j++)
        d[j] = t[8 + j];
    return _mm512_loadu_pd(d);
}
/* Same association as GCC's native sequence (halves, then quarters). */
BALM512_LOOP double balm512_reduce_add_pd(__m512d v)
{
    double d[8];
    _mm512_storeu_pd(d, v);
    double a0 = d[0] + d[4], a1 = d[1] + d[5], a2 = d[2] + d[6], a3 = d[3] + d[7];
    return (a0 + a2) + (a1 + a3);
}
BALM512_LOOP __m512 balm512_cvtepi32_ps(__m512i v)
{
    int32_t t[16];
    float f[16];
    memcpy(t, &v, sizeof t);
    for (int j = 0; j < 16; j++)
        f[j] = (float)t[j];
    return _mm512_loadu_ps(f);
}
BALM512_LOOP __m512i balm512_cvtps_epi32(__m512 v)
{
    float f[16];
    int32_t t[16];
    _mm512_storeu_ps(f, v);
    for (int j = 0; j < 16; j++)
        t[j] = (f[j] >= -2147483648.0f && f[j] < 2147483648.0f) ? (int32_t)f[j]
                                                                : INT32_MIN; /* as cvtps2dq */
    __m512i r;
    memcpy(&r, t, sizeof r);
    return r;
}
BALM512_LOOP __m512i balm512_srai_epi32(__m512i v, unsigned int n)
{
    int32_t t[16];
    memcpy(t, &v, sizeof t);
    for (int j = 0; j < 16; j++)
        t[j] = (int32_t)(t[j] < 0 ? ~(~(uint32_t)t[j] >> n) : (uint32_t)t[j] >> n);
    memcpy(&v, t, sizeof v);
    return v;
}
/* A full division where native code has rcp14 (callers need only a rough
 * reciprocal). */
BALM512_LOOP __m512 balm512_rcp(__m512 v)
{
    return _mm512_div_ps(_mm512_set1_ps(1.0f), v);
}
#endif

/* Sum of 16 floats widened to double (exact widening; double additions). */
static inline __m512d balm512_acc_pd(__m512d acc, __m512 v)
{
    return _mm512_add_pd(_mm512_add_pd(acc, balm512_cvtps_pd_lo(v)), balm512_cvtps_pd_hi(v));
}

#endif
