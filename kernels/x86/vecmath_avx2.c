/* Array entry points over the AVX2 vector math, for tests and the ulp
 * sweep (tools/ulp_sweep.c); the kernels inline vecmath_avx2.h directly. */
#include "x86/vecmath_avx2.h"

/* One loop for every unary function: full vectors, then one masked tail. */
#define BALM_VMAP(fn, vec)                                                     \
    void fn(size_t n, const float *x, float *y)                                \
    {                                                                          \
        size_t i = 0;                                                          \
        for (; i + 8 <= n; i += 8)                                             \
            _mm256_storeu_ps(y + i, vec(_mm256_loadu_ps(x + i)));              \
        if (i < n) {                                                           \
            __m256i k = balm_tail_mask(n - i);                                 \
            _mm256_maskstore_ps(y + i, k, vec(_mm256_maskload_ps(x + i, k)));  \
        }                                                                      \
    }

BALM_VMAP(balm_vexp_f32_avx2, balm_exp8)
BALM_VMAP(balm_vlog_f32_avx2, balm_log8)
BALM_VMAP(balm_vsigmoid_f32_avx2, balm_sigmoid8)
BALM_VMAP(balm_vlogsigmoid_f32_avx2, balm_logsigmoid8)

void balm_vsincos2pi_f32_avx2(size_t n, const float *u, float *s, float *c)
{
    __m256 vs, vc;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        balm_sincos2pi8(_mm256_loadu_ps(u + i), &vs, &vc);
        _mm256_storeu_ps(s + i, vs);
        _mm256_storeu_ps(c + i, vc);
    }
    if (i < n) {
        __m256i k = balm_tail_mask(n - i);
        balm_sincos2pi8(_mm256_maskload_ps(u + i, k), &vs, &vc);
        _mm256_maskstore_ps(s + i, k, vs);
        _mm256_maskstore_ps(c + i, k, vc);
    }
}
