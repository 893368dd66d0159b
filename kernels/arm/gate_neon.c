/* Sigmoid gate, NEON. 2 sigmoid(e[b][d]) is computed once per (b, block of
 * channels) and reused for every step; gate_bwd writes dx and accumulates de
 * in the same pass over x and dy. Products are rounded as in the scalar twin
 * (no FMA), so the only difference from it is the vector sigmoid (<= 2 ulp).
 * Masked rows are written as zeros without reading x or dy there; the last
 * D % 4 channels take a scalar epilogue. */
#include "kernels.h"
#include "arm/vecmath_neon.h"

/* Channels per block: the gate factors (and de's partial sums) stay in L1. */
#define GATE_DB 1024
/* The smallest float whose expf overflows (just above log(FLT_MAX)). */
#define SIGMOID_ZERO 88.7228394f

/* g = 2 sigmoid(e) and gg = 2 sigmoid(e) sigmoid(-e) (the derivative; 1 - s
 * taken as sigmoid(-e) like the scalar twin). The scalar twin's sigmoid(e) =
 * 1/(1+expf(-e)) is exactly 0 once expf(-e) overflows (e <= -88.7228) where
 * this one keeps a denormal: flushed too, so an infinite x there gives NaN
 * (0 * inf) as in the scalar, and a saturated gate gives de = 0 even for an
 * infinite sum. */
static inline void factors4(float32x4_t e, float32x4_t *g, float32x4_t *gg)
{
    float32x4_t sp, sn;
    balm_neon_sigmoid2(e, &sp, &sn);
    uint32x4_t lo = vcleq_f32(e, BALM_VN(-SIGMOID_ZERO));
    uint32x4_t hi = vcgeq_f32(e, BALM_VN(SIGMOID_ZERO));
    float32x4_t g2 = vbslq_f32(lo, vdupq_n_f32(0.0f), vaddq_f32(sp, sp));
    *g = g2;
    *gg = vbslq_f32(vorrq_u32(lo, hi), vdupq_n_f32(0.0f), vmulq_f32(g2, sn));
}

static void gate_factors(const float *e, size_t n, float *g, float *gg)
{
    size_t d = 0;
    float32x4_t a, b;
    for (; d + 4 <= n; d += 4) {
        factors4(vld1q_f32(e + d), &a, &b);
        vst1q_f32(g + d, a);
        if (gg)
            vst1q_f32(gg + d, b);
    }
    for (; d < n; d++) {
        factors4(balm_neon_lane0(e[d]), &a, &b);
        g[d] = vgetq_lane_f32(a, 0);
        if (gg)
            gg[d] = vgetq_lane_f32(b, 0);
    }
}

static void zero_row(float *y, size_t n)
{
    size_t d = 0;
    for (; d + 4 <= n; d += 4)
        vst1q_f32(y + d, vdupq_n_f32(0.0f));
    for (; d < n; d++)
        y[d] = 0.0f;
}

void balm_gate_fwd_f32_neon(const balm_seq *L, const float *x, const float *m, const float *e,
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
                for (; d + 8 <= n; d += 8) {
                    float32x4_t y0 = vmulq_f32(vld1q_f32(g + d), vld1q_f32(xr + d));
                    float32x4_t y1 = vmulq_f32(vld1q_f32(g + d + 4), vld1q_f32(xr + d + 4));
                    vst1q_f32(yr + d, y0);
                    vst1q_f32(yr + d + 4, y1);
                }
                for (; d + 4 <= n; d += 4)
                    vst1q_f32(yr + d, vmulq_f32(vld1q_f32(g + d), vld1q_f32(xr + d)));
                for (; d < n; d++)
                    yr[d] = g[d] * xr[d];
            }
        }
}

void balm_gate_bwd_f32_neon(const balm_seq *L, const float *x, const float *m, const float *e,
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
                for (; d + 4 <= n; d += 4) {
                    float32x4_t vdy = vld1q_f32(dyr + d);
                    vst1q_f32(dxr + d, vmulq_f32(vld1q_f32(g + d), vdy));
                    vst1q_f32(acc + d, vaddq_f32(vld1q_f32(acc + d), vmulq_f32(vdy, vld1q_f32(xr + d))));
                }
                for (; d < n; d++) {
                    dxr[d] = g[d] * dyr[d];
                    acc[d] += dyr[d] * xr[d];
                }
            }
            /* de = acc * gg, exactly 0 where gg is 0 (a saturated gate) even
             * if acc is inf or NaN, as in the scalar twin. */
            float *deb = de + b * L->D + d0;
            size_t d = 0;
            for (; d + 4 <= n; d += 4) {
                float32x4_t f = vld1q_f32(gg + d);
                float32x4_t v = vmulq_f32(vld1q_f32(acc + d), f);
                vst1q_f32(deb + d, vbslq_f32(vceqq_f32(f, vdupq_n_f32(0.0f)), vdupq_n_f32(0.0f), v));
            }
            for (; d < n; d++)
                deb[d] = gg[d] == 0.0f ? 0.0f : acc[d] * gg[d];
        }
}
