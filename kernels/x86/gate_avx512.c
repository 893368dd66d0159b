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

/* gate_bwd works on tiles of GATE_BWD_TILE consecutive (b, d) pairs of the
 * dense [B][D] space (as the AVX2 twin): for step-major data each step then
 * reads the tile's rows as one contiguous run (128 KiB here), long enough
 * for the hardware prefetchers beyond L3; 4 KiB runs (one (b, channel
 * block) at a time) reached about 65% of the triad bandwidth there, 32 KiB
 * runs 67%, 128 KiB runs 76%. Too much for the stack, so the tile's gate
 * factors 2 s(e) live in dx's last step, which is written last (each of its
 * vectors is read as g before it is overwritten by g dy). de accumulates the
 * sums of dy x in place, t ascending as in the scalar twin; two present
 * steps share one load and store of those sums. */
#define GATE_BWD_TILE 32768

/* dx0 = g dy0, dx1 = g dy1, acc = (acc + dy0 x0) + dy1 x1 (the scalar
 * twin's rounding order) over one row segment of two steps; x1/dy1/dx1
 * NULL: one step only. g may be dx0 or dx1 (read before written). */
static inline void bwd_rows(float *acc, const float *g, const float *x0, const float *dy0, float *dx0,
                            const float *x1, const float *dy1, float *dx1, size_t n)
{
    size_t d = 0;
    if (x1) {
        for (; d + 16 <= n; d += 16) {
            __m512 gv = _mm512_loadu_ps(g + d);
            __m512 a = _mm512_loadu_ps(acc + d);
            __m512 v0 = _mm512_loadu_ps(dy0 + d), v1 = _mm512_loadu_ps(dy1 + d);
            _mm512_storeu_ps(dx0 + d, _mm512_mul_ps(gv, v0));
            _mm512_storeu_ps(dx1 + d, _mm512_mul_ps(gv, v1));
            a = _mm512_add_ps(a, _mm512_mul_ps(v0, _mm512_loadu_ps(x0 + d)));
            a = _mm512_add_ps(a, _mm512_mul_ps(v1, _mm512_loadu_ps(x1 + d)));
            _mm512_storeu_ps(acc + d, a);
        }
        if (d < n) {
            __mmask16 k = balm512_tail(n - d);
            __m512 gv = balm512_maskz_loadu_ps(k, g + d);
            __m512 a = balm512_maskz_loadu_ps(k, acc + d);
            __m512 v0 = balm512_maskz_loadu_ps(k, dy0 + d), v1 = balm512_maskz_loadu_ps(k, dy1 + d);
            balm512_mask_storeu_ps(dx0 + d, k, _mm512_mul_ps(gv, v0));
            balm512_mask_storeu_ps(dx1 + d, k, _mm512_mul_ps(gv, v1));
            a = _mm512_add_ps(a, _mm512_mul_ps(v0, balm512_maskz_loadu_ps(k, x0 + d)));
            a = _mm512_add_ps(a, _mm512_mul_ps(v1, balm512_maskz_loadu_ps(k, x1 + d)));
            balm512_mask_storeu_ps(acc + d, k, a);
        }
        return;
    }
    for (; d + 16 <= n; d += 16) {
        __m512 gv = _mm512_loadu_ps(g + d), v0 = _mm512_loadu_ps(dy0 + d);
        _mm512_storeu_ps(dx0 + d, _mm512_mul_ps(gv, v0));
        _mm512_storeu_ps(acc + d, _mm512_add_ps(_mm512_loadu_ps(acc + d), _mm512_mul_ps(v0, _mm512_loadu_ps(x0 + d))));
    }
    if (d < n) {
        __mmask16 k = balm512_tail(n - d);
        __m512 gv = balm512_maskz_loadu_ps(k, g + d), v0 = balm512_maskz_loadu_ps(k, dy0 + d);
        balm512_mask_storeu_ps(dx0 + d, k, _mm512_mul_ps(gv, v0));
        balm512_mask_storeu_ps(acc + d, k, _mm512_add_ps(balm512_maskz_loadu_ps(k, acc + d),
                                                          _mm512_mul_ps(v0, balm512_maskz_loadu_ps(k, x0 + d))));
    }
}

void balm_gate_bwd_f32_avx512(const balm_seq *L, const float *x, const float *m, const float *e,
                              const float *dy, float *dx, float *de)
{
    const size_t D = L->D, BD = L->B * L->D, T = L->T;
    if (T == 0) {
        zero_row(de, BD); /* empty sums times a finite factor */
        return;
    }
    const size_t last = (T - 1) * L->x_step;
    for (size_t f0 = 0; f0 < BD; f0 += GATE_BWD_TILE) {
        size_t f1 = BD - f0 < GATE_BWD_TILE ? BD : f0 + GATE_BWD_TILE, n = f1 - f0;
        /* The tile's segments: sample b, channels d .. d+len-1; g is the
         * segment's place in dx's last step. */
        for (size_t f = f0; f < f1;) {
            size_t b = f / D, d = f % D, len = D - d < f1 - f ? D - d : f1 - f;
            gate_factors(e + f, len, dx + last + b * L->x_sample + d, NULL);
            f += len;
        }
        zero_row(de + f0, n);
        for (size_t t = 0; t < T; t += 2)
            for (size_t f = f0; f < f1;) {
                size_t b = f / D, d = f % D, len = D - d < f1 - f ? D - d : f1 - f;
                const float *g = dx + last + b * L->x_sample + d;
                size_t off0 = t * L->x_step + b * L->x_sample + d, off1 = off0 + L->x_step;
                int p0 = m[t * L->m_step + b * L->m_sample] != 0.0f;
                int p1 = t + 1 < T && m[(t + 1) * L->m_step + b * L->m_sample] != 0.0f;
                if (p0 && p1)
                    bwd_rows(de + f, g, x + off0, dy + off0, dx + off0, x + off1, dy + off1, dx + off1, len);
                else if (p0 || p1) {
                    size_t o = p0 ? off0 : off1;
                    bwd_rows(de + f, g, x + o, dy + o, dx + o, NULL, NULL, NULL, len);
                }
                /* Masked rows: zeros (after g's last use), x and dy not
                 * read (they may be NaN). */
                if (!p0)
                    zero_row(dx + off0, len);
                if (t + 1 < T && !p1)
                    zero_row(dx + off1, len);
                f += len;
            }
        /* de = sum * 2 s(e) s(-e), exactly 0 where that factor is 0 (a
         * saturated gate, flushed as in gate_factors) even if the sum is
         * inf or NaN, as in the scalar twin. */
        for (size_t i = 0; i < n; i += 16) {
            __mmask16 k = balm512_tail(n - i);
            __m512 sp, sn, e_ = balm512_maskz_loadu_ps(k, e + f0 + i);
            balm512_sigmoid2(e_, &sp, &sn);
            __mmask16 lo = _mm512_cmp_ps_mask(e_, BALM_V16(-SIGMOID_ZERO), _CMP_LE_OQ);
            __mmask16 hi = _mm512_cmp_ps_mask(e_, BALM_V16(SIGMOID_ZERO), _CMP_GE_OQ);
            __m512 gg = _mm512_maskz_mul_ps((__mmask16)~(lo | hi), _mm512_add_ps(sp, sp), sn);
            __mmask16 nz = _mm512_cmp_ps_mask(gg, _mm512_setzero_ps(), _CMP_NEQ_UQ);
            balm512_mask_storeu_ps(de + f0 + i, k, _mm512_maskz_mul_ps(nz, balm512_maskz_loadu_ps(k, de + f0 + i), gg));
        }
    }
}
