/* Sigmoid gate, AVX2. The dense [B][D] index space of e and de is cut into
 * tiles of GATE_TILE consecutive (b, d) pairs; 2 sigmoid(e) of a tile is
 * computed once (gate_fwd: on the stack; gate_bwd: in dx's last step, see
 * GATE_BWD_TILE) and reused for every step t, and each step
 * then reads the tile's rows in memory order (for step-major data with
 * small D one tile spans several samples, so the streams stay long).
 * gate_bwd writes dx and accumulates de (in the de output itself, t in
 * ascending order as in the scalar twin) in the same pass over x and dy.
 * Products are rounded as in the scalar twin (no FMA), so the only
 * difference from it is the vector sigmoid (<= 2 ulp). */
#include "kernels.h"
#include "x86/vecmath_avx2.h"

/* (b, d) pairs per tile: the 16 KiB of gate factors stay in L1/L2. */
#define GATE_TILE 4096

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

/* g[i] = 2 sigmoid(e[i]) for i < n. */
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

/* y = g x over one row segment. */
static inline void mul_row(float *y, const float *g, const float *x, size_t n)
{
    size_t d = 0;
    for (; d + 8 <= n; d += 8)
        _mm256_storeu_ps(y + d, _mm256_mul_ps(_mm256_loadu_ps(g + d), _mm256_loadu_ps(x + d)));
    if (d < n) {
        __m256i msk = balm_tail_mask(n - d);
        _mm256_maskstore_ps(y + d, msk, _mm256_mul_ps(_mm256_maskload_ps(g + d, msk), _mm256_maskload_ps(x + d, msk)));
    }
}

/* dx = g dy and acc += dy x over one row segment. */
static inline void bwd_row(float *dx, float *acc, const float *g, const float *x, const float *dy, size_t n)
{
    size_t d = 0;
    for (; d + 8 <= n; d += 8) {
        __m256 vdy = _mm256_loadu_ps(dy + d);
        _mm256_storeu_ps(dx + d, _mm256_mul_ps(_mm256_loadu_ps(g + d), vdy));
        _mm256_storeu_ps(acc + d, _mm256_add_ps(_mm256_loadu_ps(acc + d), _mm256_mul_ps(vdy, _mm256_loadu_ps(x + d))));
    }
    if (d < n) {
        __m256i msk = balm_tail_mask(n - d);
        __m256 vdy = _mm256_maskload_ps(dy + d, msk);
        _mm256_maskstore_ps(dx + d, msk, _mm256_mul_ps(_mm256_maskload_ps(g + d, msk), vdy));
        _mm256_maskstore_ps(acc + d, msk, _mm256_add_ps(_mm256_maskload_ps(acc + d, msk),
                                                        _mm256_mul_ps(vdy, _mm256_maskload_ps(x + d, msk))));
    }
}

/* dx0 = g dy0, dx1 = g dy1, acc = (acc + dy0 x0) + dy1 x1 (the scalar
 * twin's rounding order) over one row segment of two present steps; g may
 * be dx0 or dx1 (each vector is read before it is written). */
static inline void bwd_rows2(float *acc, const float *g, const float *x0, const float *dy0, float *dx0,
                             const float *x1, const float *dy1, float *dx1, size_t n)
{
    size_t d = 0;
    for (; d + 8 <= n; d += 8) {
        __m256 gv = _mm256_loadu_ps(g + d), a = _mm256_loadu_ps(acc + d);
        __m256 v0 = _mm256_loadu_ps(dy0 + d), v1 = _mm256_loadu_ps(dy1 + d);
        _mm256_storeu_ps(dx0 + d, _mm256_mul_ps(gv, v0));
        _mm256_storeu_ps(dx1 + d, _mm256_mul_ps(gv, v1));
        a = _mm256_add_ps(a, _mm256_mul_ps(v0, _mm256_loadu_ps(x0 + d)));
        _mm256_storeu_ps(acc + d, _mm256_add_ps(a, _mm256_mul_ps(v1, _mm256_loadu_ps(x1 + d))));
    }
    if (d < n) {
        __m256i msk = balm_tail_mask(n - d);
        __m256 gv = _mm256_maskload_ps(g + d, msk), a = _mm256_maskload_ps(acc + d, msk);
        __m256 v0 = _mm256_maskload_ps(dy0 + d, msk), v1 = _mm256_maskload_ps(dy1 + d, msk);
        _mm256_maskstore_ps(dx0 + d, msk, _mm256_mul_ps(gv, v0));
        _mm256_maskstore_ps(dx1 + d, msk, _mm256_mul_ps(gv, v1));
        a = _mm256_add_ps(a, _mm256_mul_ps(v0, _mm256_maskload_ps(x0 + d, msk)));
        _mm256_maskstore_ps(acc + d, msk, _mm256_add_ps(a, _mm256_mul_ps(v1, _mm256_maskload_ps(x1 + d, msk))));
    }
}

void balm_gate_fwd_f32_avx2(const balm_seq *L, const float *x, const float *m, const float *e,
                            float *y)
{
    float g[GATE_TILE];
    const size_t D = L->D, BD = L->B * L->D;
    for (size_t f0 = 0; f0 < BD; f0 += GATE_TILE) {
        size_t f1 = BD - f0 < GATE_TILE ? BD : f0 + GATE_TILE;
        gate_factors(e + f0, f1 - f0, g);
        for (size_t t = 0; t < L->T; t++)
            /* The tile's segments: sample b, channels d .. d+len-1. */
            for (size_t f = f0; f < f1;) {
                size_t b = f / D, d = f % D, len = D - d < f1 - f ? D - d : f1 - f;
                size_t off = t * L->x_step + b * L->x_sample + d;
                if (m[t * L->m_step + b * L->m_sample] == 0.0f)
                    zero_row(y + off, len); /* x is not read: it may be NaN */
                else
                    mul_row(y + off, g + (f - f0), x + off, len);
                f += len;
            }
    }
}

/* gate_bwd: tiles of GATE_BWD_TILE pairs, 128 KiB contiguous runs per step
 * (step-major data): beyond L3 the hardware prefetchers need long runs
 * (16 KiB runs gave about 55% of the triad bandwidth). Too much for the
 * stack, so the tile's gate factors live in dx's last step, which is written
 * last (each vector of it is read as g before it becomes g dy). */
#define GATE_BWD_TILE 32768

void balm_gate_bwd_f32_avx2(const balm_seq *L, const float *x, const float *m, const float *e,
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
            gate_factors(e + f, len, dx + last + b * L->x_sample + d);
            f += len;
        }
        zero_row(de + f0, n); /* the sums of dy x over t, in place */
        for (size_t t = 0; t < T; t += 2)
            for (size_t f = f0; f < f1;) {
                size_t b = f / D, d = f % D, len = D - d < f1 - f ? D - d : f1 - f;
                const float *g = dx + last + b * L->x_sample + d;
                size_t off0 = t * L->x_step + b * L->x_sample + d, off1 = off0 + L->x_step;
                int p0 = m[t * L->m_step + b * L->m_sample] != 0.0f;
                int p1 = t + 1 < T && m[(t + 1) * L->m_step + b * L->m_sample] != 0.0f;
                if (p0 && p1)
                    bwd_rows2(de + f, g, x + off0, dy + off0, dx + off0, x + off1, dy + off1, dx + off1, len);
                else if (p0 || p1) {
                    size_t o = p0 ? off0 : off1;
                    bwd_row(dx + o, de + f, g, x + o, dy + o, len);
                }
                /* Masked rows: zeros (after g's last use), x and dy not
                 * read (they may be NaN). */
                if (!p0)
                    zero_row(dx + off0, len);
                if (t + 1 < T && !p1)
                    zero_row(dx + off1, len);
                f += len;
            }
        /* de = sum * 2 s(e) s(-e) (1 - s as s(-e): no cancellation near
         * s = 1); exactly 0 where that factor is 0, even if the sum is inf
         * or NaN, as in the scalar twin. */
        const float *et = e + f0;
        float *dt = de + f0;
        for (size_t i = 0; i < n; i += 8) {
            __m256i msk = balm_tail_mask(n - i < 8 ? n - i : 8);
            __m256 ev = _mm256_maskload_ps(et + i, msk);
            __m256 sn = balm_sigmoid8(_mm256_sub_ps(_mm256_setzero_ps(), ev));
            __m256 gg = _mm256_mul_ps(gate8(ev), sn);
            /* Where exp(|e|) overflows in float (|e| > 88.7228317) the
             * scalar factor is exactly 0; ours would be a denormal. Agree
             * with it, so an inf or NaN sum gives 0 in both. */
            __m256 ae = _mm256_and_ps(ev, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)));
            gg = _mm256_andnot_ps(_mm256_cmp_ps(ae, _mm256_set1_ps(GATE_EXP_MAX), _CMP_GT_OQ), gg);
            __m256 v = _mm256_mul_ps(_mm256_maskload_ps(dt + i, msk), gg);
            v = _mm256_andnot_ps(_mm256_cmp_ps(gg, _mm256_setzero_ps(), _CMP_EQ_OQ), v);
            _mm256_maskstore_ps(dt + i, msk, v);
        }
    }
}
