/* AVX2 machine-limit loops: four independent accumulators (add latency 4 x
 * 8 lanes), aligned 64-byte buffers, ordinary (not streaming) stores, as the
 * kernels use. */
#include <immintrin.h>
#include "limits.h"

float balm_bench_read_avx2(size_t n, const float *x)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
    }
    __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float t[8], s = 0.0f;
    _mm256_storeu_ps(t, a);
    for (int k = 0; k < 8; k++)
        s += t[k];
    for (; i < n; i++)
        s += x[i];
    return s;
}

void balm_bench_copy_avx2(size_t n, const float *x, float *y)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(y + i, _mm256_loadu_ps(x + i));
        _mm256_storeu_ps(y + i + 8, _mm256_loadu_ps(x + i + 8));
    }
    for (; i < n; i++)
        y[i] = x[i];
}

void balm_bench_triad_avx2(size_t n, const float *a, const float *b, float s, float *c)
{
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(c + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(b + i), _mm256_loadu_ps(a + i)));
        _mm256_storeu_ps(c + i + 8,
                         _mm256_fmadd_ps(vs, _mm256_loadu_ps(b + i + 8), _mm256_loadu_ps(a + i + 8)));
    }
    for (; i < n; i++)
        c[i] = a[i] + s * b[i];
}

void balm_bench_update_avx2(size_t n, float *x, float s)
{
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(x + i, _mm256_mul_ps(vs, _mm256_loadu_ps(x + i)));
        _mm256_storeu_ps(x + i + 8, _mm256_mul_ps(vs, _mm256_loadu_ps(x + i + 8)));
    }
    for (; i < n; i++)
        x[i] *= s;
}
