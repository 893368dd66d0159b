/* Sigmoid gate, AVX2. sigmoid(e[b][d]) is computed once per (b, d) block and
 * reused for every step t; gate_bwd writes dx and accumulates de in the same
 * pass over x and dy. Products are rounded as in the scalar twin (no FMA), so
 * the only difference from it is the vector sigmoid (<= 2 ulp). */
#include "kernels.h"
#include "x86/vecmath_avx2.h"

/* Channels per block: g (and the de partial sums) live on the stack, in L1. */
#define GATE_DB 1024

/* Beyond this |e|, exp(|e|) overflows in float and the scalar twin's
 * 1/(1+expf(-e)) is exactly 0 (e < 0) or its s(-e) factor is (e > 0). */
#define GATE_EXP_MAX 0x1.62e42ep+6f /* 88.7228317 */

/* 2 sigmoid(e), flushed to exactly 0 below -GATE_EXP_MAX like the scalar
 * twin (the true value is a denormal), so every ISA agrees on 0 * inf. */
static inline __m256 gate8(__m256 e)
{
    __m256 s = balm_sigmoid8(e);
    return _mm256_andnot_ps(_mm256_cmp_ps(e, _mm256_set1_ps(-GATE_EXP_MAX), _CMP_LT_OQ), _mm256_add_ps(s, s));
}

/* g[d] = 2 sigmoid(e[d]) for d < n (n <= GATE_DB). */
static void gate_factors(const float *e, size_t n, float *g)
{
    size_t d = 0;
    for (; d + 8 <= n; d += 8)
        _mm256_storeu_ps(g + d, gate8(_mm256_loadu_ps(e + d)));
    if (d < n) {
        __m256i msk = balm_tail_mask(n - d);
        _mm256_maskstore_ps(g + d, msk, gate8(_mm256_maskload_ps(e + d, msk)));
    }
}

static void zero_row(float *y, size_t n)
{
    size_t d = 0;
    for (; d + 8 <= n; d += 8)
        _mm256_storeu_ps(y + d, _mm256_setzero_ps());
    if (d < n)
        _mm256_maskstore_ps(y + d, balm_tail_mask(n - d), _mm256_setzero_ps());
}

void balm_gate_fwd_f32_avx2(const balm_seq *L, const float *x, const float *m, const float *e,
                            float *y)
{
    float g[GATE_DB];
    for (size_t b = 0; b < L->B; b++)
        for (size_t d0 = 0; d0 < L->D; d0 += GATE_DB) {
            size_t n = L->D - d0 < GATE_DB ? L->D - d0 : GATE_DB;
            gate_factors(e + b * L->D + d0, n, g);
            for (size_t t = 0; t < L->T; t++) {
                size_t off = t * L->x_step + b * L->x_sample + d0;
                float *yr = y + off;
                if (m[t * L->m_step + b * L->m_sample] == 0.0f) {
                    zero_row(yr, n); /* x is not read: it may be NaN */
                    continue;
                }
                const float *xr = x + off;
                size_t d = 0;
                for (; d + 8 <= n; d += 8)
                    _mm256_storeu_ps(yr + d, _mm256_mul_ps(_mm256_loadu_ps(g + d), _mm256_loadu_ps(xr + d)));
                if (d < n) {
                    __m256i msk = balm_tail_mask(n - d);
                    _mm256_maskstore_ps(yr + d, msk, _mm256_mul_ps(_mm256_maskload_ps(g + d, msk),
                                                                   _mm256_maskload_ps(xr + d, msk)));
                }
            }
        }
}

void balm_gate_bwd_f32_avx2(const balm_seq *L, const float *x, const float *m, const float *e,
                            const float *dy, float *dx, float *de)
{
    float g[GATE_DB], acc[GATE_DB];
    for (size_t b = 0; b < L->B; b++)
        for (size_t d0 = 0; d0 < L->D; d0 += GATE_DB) {
            size_t n = L->D - d0 < GATE_DB ? L->D - d0 : GATE_DB;
            gate_factors(e + b * L->D + d0, n, g);
            for (size_t d = 0; d < n; d++)
                acc[d] = 0.0f;
            for (size_t t = 0; t < L->T; t++) {
                size_t off = t * L->x_step + b * L->x_sample + d0;
                float *dxr = dx + off;
                if (m[t * L->m_step + b * L->m_sample] == 0.0f) {
                    zero_row(dxr, n);
                    continue;
                }
                const float *xr = x + off, *dyr = dy + off;
                size_t d = 0;
                for (; d + 8 <= n; d += 8) {
                    __m256 vdy = _mm256_loadu_ps(dyr + d);
                    _mm256_storeu_ps(dxr + d, _mm256_mul_ps(_mm256_loadu_ps(g + d), vdy));
                    _mm256_storeu_ps(acc + d, _mm256_add_ps(_mm256_loadu_ps(acc + d),
                                                            _mm256_mul_ps(vdy, _mm256_loadu_ps(xr + d))));
                }
                if (d < n) {
                    __m256i msk = balm_tail_mask(n - d);
                    __m256 vdy = _mm256_maskload_ps(dyr + d, msk);
                    _mm256_maskstore_ps(dxr + d, msk, _mm256_mul_ps(_mm256_maskload_ps(g + d, msk), vdy));
                    _mm256_maskstore_ps(acc + d, msk,
                                        _mm256_add_ps(_mm256_maskload_ps(acc + d, msk),
                                                      _mm256_mul_ps(vdy, _mm256_maskload_ps(xr + d, msk))));
                }
            }
            /* de = acc * 2 s(e) s(-e) (1 - s as s(-e): no cancellation near
             * s = 1); exactly 0 where that factor underflows to 0, even if
             * acc is inf or NaN, as in the scalar twin. */
            const float *eb = e + b * L->D + d0;
            float *deb = de + b * L->D + d0;
            for (size_t d = 0; d < n; d += 8) {
                __m256i msk = balm_tail_mask(n - d < 8 ? n - d : 8);
                __m256 ev = _mm256_maskload_ps(eb + d, msk);
                __m256 sn = balm_sigmoid8(_mm256_sub_ps(_mm256_setzero_ps(), ev));
                __m256 gg = _mm256_mul_ps(_mm256_maskload_ps(g + d, msk), sn);
                /* Where exp(|e|) overflows in float (|e| > 88.7228317) the
                 * scalar factor is exactly 0; ours would be a denormal. Agree
                 * with it, so an inf or NaN sum gives 0 in both. */
                __m256 ae = _mm256_and_ps(ev, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)));
                gg = _mm256_andnot_ps(_mm256_cmp_ps(ae, _mm256_set1_ps(GATE_EXP_MAX), _CMP_GT_OQ), gg);
                __m256 v = _mm256_mul_ps(_mm256_maskload_ps(acc + d, msk), gg);
                v = _mm256_andnot_ps(_mm256_cmp_ps(gg, _mm256_setzero_ps(), _CMP_EQ_OQ), v);
                _mm256_maskstore_ps(deb + d, msk, v);
            }
        }
}
