/* The scalar kernels (the oracle) checked against double-precision
 * computations written independently here, and against the golden cases of
 * the GRM kinds. Tolerances: relative to the largest magnitude of the
 * expected array: 2e-6 for pooling and gating (a few float roundings per
 * element), 1e-6 for KL, cosine and moments (double accumulation in the
 * kernel), 1e-5 for the golden PyTorch values (float32 reference). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "balm/balm.h"
#include "balm_testutil.h"
#include "kernels.h"

static balm_kernels S;

static int setup(void **state)
{
    (void)state;
    return balm_kernels_for_isa(BALM_ISA_SCALAR, &S) ? 0 : -1;
}

/* A padded layout: rows at stride D+3, samples interleaved in the chosen order. */
static balm_seq layout(int kind, size_t T, size_t B, size_t D)
{
    if (kind == 0) return balm_seq_tbd(T, B, D);
    if (kind == 1) return balm_seq_btd(T, B, D);
    balm_seq L = {T, B, D, B * (D + 3), D + 3, B + 1, 1};
    return L;
}

static size_t span(const balm_seq *L, int mask)
{
    if (mask) return (L->T - 1) * L->m_step + (L->B - 1) * L->m_sample + 1;
    return (L->T - 1) * L->x_step + (L->B - 1) * L->x_sample + L->D;
}

/* Random masks with the four special patterns for b = 0..3. */
static void make_mask(tu_rng *r, const balm_seq *L, float *m)
{
    for (size_t t = 0; t < L->T; t++)
        for (size_t b = 0; b < L->B; b++) {
            float v;
            switch (b % 5) {
            case 0: v = 1.0f; break;                        /* all present */
            case 1: v = 0.0f; break;                        /* all missing */
            case 2: v = t == 0 ? 1.0f : 0.0f; break;        /* first only */
            case 3: v = t + 1 == L->T ? 1.0f : 0.0f; break; /* last only */
            default: v = (tu_next(r) & 1) ? 1.0f : 0.0f;
            }
            m[t * L->m_step + b * L->m_sample] = v;
        }
}

/* NaN at every masked position: must never reach an output. */
static void poison_masked(const balm_seq *L, const float *m, float *x)
{
    for (size_t t = 0; t < L->T; t++)
        for (size_t b = 0; b < L->B; b++)
            if (m[t * L->m_step + b * L->m_sample] == 0.0f)
                for (size_t d = 0; d < L->D; d++)
                    x[t * L->x_step + b * L->x_sample + d] = NAN;
}

static void test_pool_and_gate_vs_double(void **state)
{
    (void)state;
    tu_rng r = {12345};
    const size_t Ts[] = {1, 2, 7}, Bs[] = {1, 5, 6}, Ds[] = {1, 7, 33};
    for (int kind = 0; kind < 3; kind++)
        for (size_t it = 0; it < 3; it++)
            for (size_t ib = 0; ib < 3; ib++)
                for (size_t id = 0; id < 3; id++) {
                    balm_seq L = layout(kind, Ts[it], Bs[ib], Ds[id]);
                    size_t xs = span(&L, 0), ms = span(&L, 1), n = L.B * L.D;
                    float *x = calloc(xs, 4), *m = calloc(ms, 4), *e = malloc(n * 4);
                    float *dy = calloc(xs, 4), *y = calloc(xs, 4), *dx = calloc(xs, 4);
                    float *s = malloc(n * 4), *de = malloc(n * 4), *want = malloc(xs * 4);
                    float *wde = malloc(n * 4);
                    tu_fill(&r, x, xs, -3, 3);
                    tu_fill(&r, dy, xs, -1, 1);
                    tu_fill(&r, e, n, -6, 6);
                    if (n > 1) e[0] = 60.0f, e[n - 1] = -60.0f; /* saturated gates */
                    make_mask(&r, &L, m);
                    poison_masked(&L, m, x);
                    poison_masked(&L, m, dy);
                    assert_int_equal(balm_pool_fwd(&L, x, m, s), BALM_OK);
                    for (size_t b = 0; b < L.B; b++) {
                        double cnt = 0;
                        for (size_t t = 0; t < L.T; t++) cnt += m[t * L.m_step + b * L.m_sample];
                        for (size_t d = 0; d < L.D; d++) {
                            double acc = 0;
                            for (size_t t = 0; t < L.T; t++)
                                if (m[t * L.m_step + b * L.m_sample] != 0.0f)
                                    acc += x[t * L.x_step + b * L.x_sample + d];
                            want[b * L.D + d] = (float)(acc / (cnt + 1e-8));
                        }
                    }
                    assert_true(tu_rel_err(s, want, n) <= 2e-6);
                    /* gate forward / backward */
                    memset(y, 0, xs * 4);
                    assert_int_equal(balm_gate_fwd(&L, x, m, e, y), BALM_OK);
                    assert_int_equal(balm_gate_bwd(&L, x, m, e, dy, dx, de), BALM_OK);
                    double worst_y = 0, big_y = 1e-30, worst_dx = 0, big_dx = 1e-30;
                    for (size_t b = 0; b < L.B; b++)
                        for (size_t d = 0; d < L.D; d++) {
                            double sg = 1.0 / (1.0 + exp(-(double)e[b * L.D + d]));
                            double acc = 0;
                            for (size_t t = 0; t < L.T; t++) {
                                size_t o = t * L.x_step + b * L.x_sample + d;
                                int on = m[t * L.m_step + b * L.m_sample] != 0.0f;
                                double wy = on ? 2 * sg * x[o] : 0.0;
                                double wdx = on ? 2 * sg * dy[o] : 0.0;
                                if (!on) {
                                    assert_true(y[o] == 0.0f && !signbit(y[o]) == !signbit(0.0f));
                                    assert_true(dx[o] == 0.0f);
                                }
                                if (on) acc += (double)dy[o] * x[o];
                                if (fabs(wy) > big_y) big_y = fabs(wy);
                                if (fabs(wy - y[o]) > worst_y) worst_y = fabs(wy - y[o]);
                                if (fabs(wdx) > big_dx) big_dx = fabs(wdx);
                                if (fabs(wdx - dx[o]) > worst_dx) worst_dx = fabs(wdx - dx[o]);
                            }
                            wde[b * L.D + d] = (float)(acc * 2 * sg * (1 - sg));
                        }
                    assert_true(worst_y / big_y <= 2e-6);
                    assert_true(worst_dx / big_dx <= 2e-6);
                    assert_true(tu_rel_err(de, wde, n) <= 2e-6);
                    for (size_t i = 0; i < n; i++) assert_false(isnan(de[i]));
                    /* pooling backward, overwrite then accumulate */
                    assert_int_equal(balm_pool_bwd(&L, m, s, dx, 0), BALM_OK);
                    assert_int_equal(balm_pool_bwd(&L, m, s, dx, 1), BALM_OK);
                    for (size_t b = 0; b < L.B; b++) {
                        double cnt = 0;
                        for (size_t t = 0; t < L.T; t++) cnt += m[t * L.m_step + b * L.m_sample];
                        for (size_t t = 0; t < L.T; t++)
                            for (size_t d = 0; d < L.D; d++) {
                                float mv = m[t * L.m_step + b * L.m_sample];
                                double w = 2.0 * mv * s[b * L.D + d] / (cnt + 1e-8);
                                float got = dx[t * L.x_step + b * L.x_sample + d];
                                assert_true(fabs(got - w) <= 2e-6 * (fabs(w) + 1e-3));
                            }
                    }
                    free(x); free(m); free(e); free(dy); free(y); free(dx); free(s); free(de);
                    free(want); free(wde);
                }
}

static void test_all_missing_and_empty(void **state)
{
    (void)state;
    float x[12] = {NAN, INFINITY, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, m[4] = {0, 0, 0, 0};
    float s[3] = {9, 9, 9}, de[3] = {9, 9, 9};
    balm_seq L = balm_seq_tbd(4, 1, 3);
    assert_int_equal(balm_pool_fwd(&L, x, m, s), BALM_OK);
    for (int i = 0; i < 3; i++) assert_true(s[i] == 0.0f);
    /* T = 0: pooled values and de are zero, nothing else is read */
    balm_seq E = balm_seq_tbd(0, 1, 3);
    s[0] = 5;
    assert_int_equal(balm_pool_fwd(&E, NULL, NULL, s), BALM_OK);
    assert_true(s[0] == 0.0f);
    assert_int_equal(balm_gate_bwd(&E, NULL, NULL, NULL, NULL, NULL, de), BALM_OK);
    assert_true(de[0] == 0.0f && de[2] == 0.0f);
    /* B = 0: nothing written */
    balm_seq Z = balm_seq_tbd(3, 0, 3);
    assert_int_equal(balm_pool_fwd(&Z, NULL, NULL, NULL), BALM_OK);
    assert_int_equal(balm_gate_fwd(&Z, NULL, NULL, NULL, NULL), BALM_OK);
    float kl = 7;
    assert_int_equal(balm_kl_cls(0, 6, NULL, NULL, &kl), BALM_OK);
    assert_true(kl == 0.0f);
    float sd = 3;
    assert_int_equal(balm_std(1, x + 2, &sd), BALM_OK);
    assert_true(sd == 0.0f); /* one element: 0, where PyTorch gives NaN */
}

static void test_kl_vs_double(void **state)
{
    (void)state;
    tu_rng r = {99};
    size_t N = 37, C = 6;
    float *p = malloc(N * C * 4), *lq = malloc(N * C * 4), f[37], u[37];
    for (size_t n = 0; n < N; n++) {
        double z = 0, zq = 0, a[6], q[6];
        for (size_t c = 0; c < C; c++) {
            a[c] = exp(tu_uniform(&r, -4, 4));
            q[c] = exp(tu_uniform(&r, -4, 4));
            z += a[c];
            zq += q[c];
        }
        for (size_t c = 0; c < C; c++) {
            p[n * C + c] = (float)(a[c] / z);
            lq[n * C + c] = (float)log(q[c] / zq);
        }
        p[n * C] = 0.0f; /* a zero-probability term contributes 0 */
        lq[n * C] = -INFINITY;
        f[n] = tu_uniform(&r, -80, 80);
        u[n] = tu_uniform(&r, -80, 80);
    }
    double want = 0;
    for (size_t i = 0; i < N * C; i++)
        if (p[i] > 0) want += (double)p[i] * (log((double)p[i]) - lq[i]);
    want /= (double)N;
    float kl;
    assert_int_equal(balm_kl_cls(N, C, p, lq, &kl), BALM_OK);
    assert_true(fabs(kl - want) <= 1e-6 * fabs(want));
    double wr = 0;
    for (size_t n = 0; n < N; n++) {
        long double sf = 1.0L / (1.0L + expl(-(long double)f[n]));
        long double su = 1.0L / (1.0L + expl(-(long double)u[n]));
        long double pp[2] = {1 - sf, sf}, qq[2] = {1 - su, su};
        /* log of the complements via log1p for precision */
        long double lp[2] = {-log1pl(expl(f[n])), -log1pl(expl(-(long double)f[n]))};
        long double lqq[2] = {-log1pl(expl(u[n])), -log1pl(expl(-(long double)u[n]))};
        (void)qq;
        for (int k = 0; k < 2; k++) wr += (double)(pp[k] * (lp[k] - lqq[k]));
    }
    wr /= (double)N;
    assert_int_equal(balm_kl_reg(N, f, u, &kl), BALM_OK);
    assert_true(isfinite(kl));
    assert_true(fabs(kl - wr) <= 1e-5 * fabs(wr));
    free(p);
    free(lq);
}

/* --------------------------------------------------------- golden GRM cases */
static void golden_kl(const char *name, int cls)
{
    char dir[1024];
    if (!tu_golden(name, dir, sizeof dir)) skip();
    size_t n, nk;
    float *want = tu_load(dir, "kl", &nk);
    const char *heads[3] = {"a", "v", "l"};
    for (int m = 0; m < 3; m++) {
        char an[32];
        float kl;
        if (cls) {
            float *p = tu_load(dir, "p", &n);
            snprintf(an, sizeof an, "logq_%s", heads[m]);
            float *lq = tu_load(dir, an, NULL);
            size_t C = 6, N = n / C;
            assert_int_equal(balm_kl_cls(N, C, p, lq, &kl), BALM_OK);
            free(p);
            free(lq);
        } else {
            float *f = tu_load(dir, "fused", &n);
            snprintf(an, sizeof an, "pred_%s", heads[m]);
            float *u = tu_load(dir, an, NULL);
            assert_int_equal(balm_kl_reg(n, f, u, &kl), BALM_OK);
            free(f);
            free(u);
        }
        assert_true(fabs(kl - want[m]) <= 1e-5 * fabs(want[m]) + 1e-7);
    }
    free(want);
}

static void test_golden_kl(void **state)
{
    (void)state;
    golden_kl("kl_cls_small", 1);
    golden_kl("kl_cls_peaked", 1);
    golden_kl("kl_reg", 0);
    golden_kl("kl_reg_extreme", 0);
}

static void golden_cos(const char *name)
{
    char dir[1024];
    if (!tu_golden(name, dir, sizeof dir)) skip();
    size_t n;
    float *wf = tu_load(dir, "fused", &n);
    float *w[3] = {tu_load(dir, "w_a", NULL), tu_load(dir, "w_v", NULL), tu_load(dir, "w_l", NULL)};
    float *coeff = tu_load(dir, "coeff", NULL), *wcos = tu_load(dir, "cos", NULL);
    float *wloss = tu_load(dir, "loss_gm", NULL), *wd = tu_load(dir, "dfused", NULL);
    float cos[3], loss, *d = malloc(n * 4);
    for (int m = 0; m < 3; m++) {
        assert_int_equal(balm_cos(n, w[m], wf, &cos[m], NULL, NULL), BALM_OK);
        assert_true(fabs(cos[m] - wcos[m]) <= 1e-5);
    }
    assert_int_equal(balm_grm_loss(3, coeff, cos, &loss), BALM_OK);
    assert_true(fabs(loss - wloss[0]) <= 1e-5 * fabs(wloss[0]));
    assert_int_equal(balm_direction_grad(n, 3, (const float *const *)w, wf, coeff, cos, d, 0),
                     BALM_OK);
    assert_true(tu_rel_err(d, wd, n) <= 1e-5);
    free(wf); free(w[0]); free(w[1]); free(w[2]); free(coeff); free(wcos); free(wloss);
    free(wd); free(d);
}

static void test_golden_cos(void **state)
{
    (void)state;
    golden_cos("cos_900");
    golden_cos("cos_zero");
}

static void golden_coeff(const char *name, int first)
{
    char dir[1024];
    if (!tu_golden(name, dir, sizeof dir)) skip();
    float *prev = tu_load(dir, "prev_kl", NULL), *cur = tu_load(dir, "cur_kl", NULL);
    float *cos = tu_load(dir, "cos", NULL), *wc = tu_load(dir, "coeff", NULL);
    float *wl = tu_load(dir, "loss_gm", NULL), c[3], loss;
    assert_int_equal(balm_grm_coeff(3, first ? NULL : prev, cur, c), BALM_OK);
    for (int m = 0; m < 3; m++) assert_true(fabs(c[m] - wc[m]) <= 1e-5 * (fabs(wc[m]) + 1));
    assert_int_equal(balm_grm_loss(3, c, cos, &loss), BALM_OK);
    assert_true(fabs(loss - wl[0]) <= 1e-5 * (fabs(wl[0]) + 1e-3));
    free(prev); free(cur); free(cos); free(wc); free(wl);
}

static void test_golden_coeff(void **state)
{
    (void)state;
    golden_coeff("coeff_first", 1);
    golden_coeff("coeff_step", 0);
}

/* ------------------------------------------------------ moments and noise */
static void test_std_scale(void **state)
{
    (void)state;
    tu_rng r = {7};
    size_t n = 10007;
    float *x = malloc(n * 4);
    tu_fill(&r, x, n, -2, 5);
    double mean = 0, ss = 0;
    for (size_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
    double want = sqrt(ss / (double)(n - 1));
    float sd;
    assert_int_equal(balm_std(n, x, &sd), BALM_OK);
    assert_true(fabs(sd - want) <= 1e-6 * want);
    x[4321] = NAN;
    assert_int_equal(balm_std(n, x, &sd), BALM_ERR_NONFINITE);
    assert_non_null(strstr(balm_last_error(), "4321"));
    x[4321] = 1.0f;
    float x0 = x[10];
    assert_int_equal(balm_scale(n, x, -0.5f), BALM_OK);
    assert_true(x[10] == x0 * -0.5f);
    free(x);
}

static void test_noise_stream(void **state)
{
    (void)state;
    size_t n = 200003;
    float *a = calloc(n, 4), *b = calloc(n, 4);
    assert_int_equal(balm_noise(n, a, 1.0f, 42, 0), BALM_OK);
    /* the same stream in odd chunks: identical, whatever the split */
    size_t cuts[] = {0, 1, 6, 4099, 100000, n};
    for (int i = 0; i + 1 < 6; i++)
        assert_int_equal(balm_noise(cuts[i + 1] - cuts[i], b + cuts[i], 1.0f, 42, cuts[i]), BALM_OK);
    assert_memory_equal(a, b, n * 4);
    double s = 0, q = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(isfinite(a[i]));
        s += a[i];
        q += (double)a[i] * a[i];
    }
    double mean = s / (double)n, var = q / (double)n - mean * mean;
    /* 5 standard errors: |mean| < 5/sqrt(n) ~ 0.011, var within ~5*sqrt(2/n) */
    assert_true(fabs(mean) < 0.012);
    assert_true(fabs(var - 1.0) < 0.016);
    /* uniforms: in (0, 1), the documented stream, another seed differs */
    float u = balm_uniform(42, 5);
    assert_true(u > 0.0f && u < 1.0f);
    assert_true(balm_uniform(42, 5) == u && balm_uniform(43, 5) != u);
    memset(b, 0, n * 4);
    assert_int_equal(balm_noise(n, b, 1.0f, 43, 0), BALM_OK);
    assert_true(memcmp(a, b, n * 4) != 0);
    /* scale_noise with alpha = 1 is balm_noise; bad alpha is refused */
    float *c = calloc(n, 4);
    assert_int_equal(balm_scale_noise(n, c, 1.0f, 1.0f, 42, 0), BALM_OK);
    assert_memory_equal(a, c, n * 4);
    assert_int_equal(balm_scale_noise(n, c, NAN, 1.0f, 42, 0), BALM_ERR_NONFINITE);
    free(c);
    /* grad_rescale: scale then noise with sd = std(scaled) + 1e-8 */
    float g[5] = {1, 2, 3, 4, 5}, sd;
    assert_int_equal(balm_grad_rescale(5, g, 2.0f, 0, 1, 0, &sd), BALM_OK);
    assert_true(g[0] == 2.0f && g[4] == 10.0f && sd == 0.0f);
    assert_int_equal(balm_grad_rescale(5, g, 1.0f, 1, 1, 0, &sd), BALM_OK);
    assert_true(fabs(sd - (sqrt(10.0) + 1e-8)) < 1e-5);
    g[2] = INFINITY;
    float keep[5];
    memcpy(keep, g, sizeof keep);
    assert_int_equal(balm_grad_rescale(5, g, 1.0f, 1, 1, 0, &sd), BALM_ERR_NONFINITE);
    assert_memory_equal(g, keep, sizeof keep);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_and_gate_vs_double),
        cmocka_unit_test(test_all_missing_and_empty),
        cmocka_unit_test(test_kl_vs_double),
        cmocka_unit_test(test_golden_kl),
        cmocka_unit_test(test_golden_cos),
        cmocka_unit_test(test_golden_coeff),
        cmocka_unit_test(test_std_scale),
        cmocka_unit_test(test_noise_stream),
    };
    /* The oracle check is about the scalar kernels: cap before first use. */
    balm_isa_set_cap(BALM_ISA_SCALAR);
    return cmocka_run_group_tests(tests, setup, NULL);
}
