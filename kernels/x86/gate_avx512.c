/* Sigmoid gate, AVX-512. 2 sigmoid(e[b][d]) is computed once per (b, block
 * of channels) and reused for every step; gate_bwd writes dx and accumulates
 * de in the same pass over x and dy. Products are rounded as in the scalar
 * twin (no FMA), so the only difference from it is the vector sigmoid (<= 2
 * ulp). Masked rows are written as zeros without reading x or dy there. */
#include "kernels.h"
#include "x86/vecmath_avx512.h"

/* Channels per block: the gate factors (and de's partial sums) stay in L1. */
#define GATE_DB 1024
/* The smallest float whose expf overflows (just above log(FLT_MAX)). */
#define SIGMOID_ZERO 88.7228394f

/* g[d] = 2 sigmoid(e[d]) and, when gg is not NULL, gg[d] = 2 sigmoid(e[d])
 * sigmoid(-e[d]) (the derivative, 1 - s taken as sigmoid(-e) like the scalar
 * twin), for d < n. */
static void gate_factors(const float *e, size_t n, float *g, float *gg)
{
    for (size_t d = 0; d < n; d += 16) {
        __mmask16 k = balm512_tail(n - d);
        __m512 sp, sn, e_ = balm512_maskz_loadu_ps(k, e + d);
        balm512_sigmoid2(e_, &sp, &sn);
        /* The scalar twin's sigmoid(e) = 1/(1+expf(-e)) is exactly 0 once
         * expf(-e) overflows (e < -88.7228), where this one would keep a
         * denormal: flush it too, so that an infinite x there gives NaN
         * (0 * inf) as in the scalar, and a saturated gate gives de = 0
         * even for an infinite sum. */
        __mmask16 lo = _mm512_cmp_ps_mask(e_, BALM_V16(-SIGMOID_ZERO), _CMP_LE_OQ);
        __mmask16 hi = _mm512_cmp_ps_mask(e_, BALM_V16(SIGMOID_ZERO), _CMP_GE_OQ);
        __m512 g2 = _mm512_maskz_add_ps((__mmask16)~lo, sp, sp);
        balm512_mask_storeu_ps(g + d, k, g2);
        if (gg)
            balm512_mask_storeu_ps(gg + d, k, _mm512_maskz_mul_ps((__mmask16)~(lo | hi), g2, sn));
    }
}

static void zero_row(float *y, size_t n)
{
    size_t d = 0;
    for (; d + 16 <= n; d += 16)
        _mm512_storeu_ps(y + d, _mm512_setzero_ps());
    if (d < n)
        balm512_mask_storeu_ps(y + d, balm512_tail(n - d), _mm512_setzero_ps());
}

void balm_gate_fwd_f32_avx512(const balm_seq *L, const float *x, const float *m, const float *e,
                              float *y)
{
    float g[GATE_DB];
    for (size_t b = 0; b < L->B; b++)
        for (size_t d0 = 0; d0 < L->D; d0 += GATE_DB) {
            size_t n = L->D - d0 < GATE_DB ? L->D - d0 : GATE_DB;
            gate_factors(e + b * L->D + d0, n, g, NULL);
            for (size_t t = 0; t < L->T; t++) {
                size_t off = t * L->x_step + b * L->x_sample + d0;
                float *yr = y + off;
                if (m[t * L->m_step + b * L->m_sample] == 0.0f) {
                    zero_row(yr, n);
                    continue;
                }
                const float *xr = x + off; /* y may alias x: read before write */
                size_t d = 0;
                for (; d + 16 <= n; d += 16)
                    _mm512_storeu_ps(yr + d, _mm512_mul_ps(_mm512_loadu_ps(g + d), _mm512_loadu_ps(xr + d)));
                if (d < n) {
                    __mmask16 k = balm512_tail(n - d);
                    balm512_mask_storeu_ps(yr + d, k, _mm512_mul_ps(balm512_maskz_loadu_ps(k, g + d),
                                                                    balm512_maskz_loadu_ps(k, xr + d)));
                }
            }
        }
}

void balm_gate_bwd_f32_avx512(const balm_seq *L, const float *x, const float *m, const float *e,
                              const float *dy, float *dx, float *de)
{
    float g[GATE_DB], gg[GATE_DB], acc[GATE_DB];
    for (size_t b = 0; b < L->B; b++)
        for (size_t d0 = 0; d0 < L->D; d0 += GATE_DB) {
            size_t n = L->D - d0 < GATE_DB ? L->D - d0 : GATE_DB;
            gate_factors(e + b * L->D + d0, n, g, gg);
            zero_row(acc, n);
            for (size_t t = 0; t < L->T; t++) {
                size_t off = t * L->x_step + b * L->x_sample + d0;
                float *dxr = dx + off;
                if (m[t * L->m_step + b * L->m_sample] == 0.0f) {
                    zero_row(dxr, n);
                    continue;
                }
                const float *xr = x + off, *dyr = dy + off;
                size_t d = 0;
                for (; d + 16 <= n; d += 16) {
                    __m512 vdy = _mm512_loadu_ps(dyr + d);
                    _mm512_storeu_ps(dxr + d, _mm512_mul_ps(_mm512_loadu_ps(g + d), vdy));
                    _mm512_storeu_ps(acc + d, _mm512_add_ps(_mm512_loadu_ps(acc + d),
                                                            _mm512_mul_ps(vdy, _mm512_loadu_ps(xr + d))));
                }
                if (d < n) {
                    __mmask16 k = balm512_tail(n - d);
                    __m512 vdy = balm512_maskz_loadu_ps(k, dyr + d);
                    balm512_mask_storeu_ps(dxr + d, k, _mm512_mul_ps(balm512_maskz_loadu_ps(k, g + d), vdy));
                    balm512_mask_storeu_ps(acc + d, k,
                                           _mm512_add_ps(balm512_maskz_loadu_ps(k, acc + d),
                                                         _mm512_mul_ps(vdy, balm512_maskz_loadu_ps(k, xr + d))));
                }
            }
            /* de = acc * gg, exactly 0 where gg is 0 (a saturated gate) even
             * if acc is inf or NaN, as in the scalar twin. */
            float *deb = de + b * L->D + d0;
            for (size_t d = 0; d < n; d += 16) {
                __mmask16 k = balm512_tail(n - d);
                __m512 f = balm512_maskz_loadu_ps(k, gg + d);
                __mmask16 nz = _mm512_cmp_ps_mask(f, _mm512_setzero_ps(), _CMP_NEQ_UQ);
                __m512 v = _mm512_maskz_mul_ps(nz, balm512_maskz_loadu_ps(k, acc + d), f);
                balm512_mask_storeu_ps(deb + d, k, v);
            }
        }
}
