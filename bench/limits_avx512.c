/* AVX-512 machine-limit loops, as limits_avx2.c with 16 lanes. */
#include <immintrin.h>
#include "limits.h"

float balm_bench_read_avx512(size_t n, const float *x)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < n; i++)
        s += x[i];
    return s;
}

void balm_bench_copy_avx512(size_t n, const float *x, float *y)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm512_storeu_ps(y + i, _mm512_loadu_ps(x + i));
        _mm512_storeu_ps(y + i + 16, _mm512_loadu_ps(x + i + 16));
    }
    for (; i < n; i++)
        y[i] = x[i];
}

void balm_bench_triad_avx512(size_t n, const float *a, const float *b, float s, float *c)
{
    __m512 vs = _mm512_set1_ps(s);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm512_storeu_ps(c + i, _mm512_fmadd_ps(vs, _mm512_loadu_ps(b + i), _mm512_loadu_ps(a + i)));
        _mm512_storeu_ps(c + i + 16,
                         _mm512_fmadd_ps(vs, _mm512_loadu_ps(b + i + 16), _mm512_loadu_ps(a + i + 16)));
    }
    for (; i < n; i++)
        c[i] = a[i] + s * b[i];
}

void balm_bench_update_avx512(size_t n, float *x, float s)
{
    __m512 vs = _mm512_set1_ps(s);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm512_storeu_ps(x + i, _mm512_mul_ps(vs, _mm512_loadu_ps(x + i)));
        _mm512_storeu_ps(x + i + 16, _mm512_mul_ps(vs, _mm512_loadu_ps(x + i + 16)));
    }
    for (; i < n; i++)
        x[i] *= s;
}
