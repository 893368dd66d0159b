/* GRM module: a two- and three-step run with numbers computed by hand and by a
 * small double oracle here (prev_KL path), Adam against its closed form, the
 * rescaling window, the noise statistics and reproducibility, regression,
 * checkpoint state and bad input.
 * Tolerances: values the module computes in float over a handful of terms are
 * compared at 1e-5 relative (or 1e-6 absolute near 0); exact cases (coeff of
 * an unchanged KL, scaling by a float) are compared for equality. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "balm/grm.h"

#define NEAR(a, b) assert_true(fabs((double)(a) - (double)(b)) <= 1e-5 * fabs((double)(b)) + 1e-6)

/* A tiny classification GRM: C = 2, H = 2, enc = 2, N = 2, heads fixed by hand:
 * W1 = I, b1 = 0 (h = relu(x) = x for x >= 0), b2 = 0, W2 per modality. */
static balm_grm *tiny_seed(float lr, float wd, int noise, uint64_t seed)
{
    balm_grm_config cfg = balm_grm_config_default();
    cfg.C = 2;
    cfg.H = 2;
    cfg.enc[0] = cfg.enc[1] = cfg.enc[2] = 2;
    cfg.max_N = 2;
    cfg.lr = lr;
    cfg.weight_decay = wd;
    cfg.noise = noise;
    cfg.start_epoch = 1;
    cfg.end_epoch = 3;
    cfg.backend = BALM_LINEAR_REF;
    cfg.seed = seed;
    balm_grm *g;
    assert_int_equal(balm_grm_create(&cfg, &g), BALM_OK);
    static const float w2[3][4] = {
        {1, 0, 0, 1},  /* l: same direction as the fused weight, cos = 1 */
        {0, 1, 1, 0},  /* a: orthogonal, cos = 0 */
        {2, 0, 0, 0},  /* v: cos = 2 / (2 sqrt 2) = 1/sqrt 2 */
    };
    for (int m = 0; m < 3; m++) {
        float *p;
        balm_grm_param(g, m, BALM_GRM_W1, &p, NULL, NULL, NULL, NULL);
        p[0] = 1; p[1] = 0; p[2] = 0; p[3] = 1;
        balm_grm_param(g, m, BALM_GRM_B1, &p, NULL, NULL, NULL, NULL);
        p[0] = p[1] = 0;
        balm_grm_param(g, m, BALM_GRM_W2, &p, NULL, NULL, NULL, NULL);
        memcpy(p, w2[m], sizeof w2[m]);
        balm_grm_param(g, m, BALM_GRM_B2, &p, NULL, NULL, NULL, NULL);
        p[0] = p[1] = 0;
    }
    return g;
}

static balm_grm *tiny(float lr, float wd, int noise)
{
    return tiny_seed(lr, wd, noise, 0);
}

static const float fused_w[4] = {1, 0, 0, 1};
/* features (non-negative so h = x): u_l = x_l, u_a = swap(x_a), u_v = (2 x0, 0) */
static const float feat_l[4] = {2, 0, 0, 1}, feat_a[4] = {1, 1, 0, 3}, feat_v[4] = {1, 0, 0.5f, 2};
static const int32_t labels[2] = {0, 1};

static void fill_input(balm_grm_input *in, const float *fused_out, int epoch)
{
    memset(in, 0, sizeof *in);
    in->N = 2;
    in->feat[0] = feat_l;
    in->feat[1] = feat_a;
    in->feat[2] = feat_v;
    in->fused_out = fused_out;
    in->labels = labels;
    in->fused_w = fused_w;
    in->epoch = epoch;
}

/* KL(softmax(f) || softmax(u)) per row, batch mean, in double */
static double kl2(const float f[4], const double u[4])
{
    double kl = 0;
    for (int n = 0; n < 2; n++) {
        double lf = log(exp(f[2 * n]) + exp(f[2 * n + 1]));
        double lu = log(exp(u[2 * n]) + exp(u[2 * n + 1]));
        for (int c = 0; c < 2; c++) {
            double lp = f[2 * n + c] - lf;
            kl += exp(lp) * (lp - (u[2 * n + c] - lu));
        }
    }
    return kl / 2;
}

static void test_two_steps_by_hand(void **st)
{
    (void)st;
    balm_grm *g = tiny(0.0f, 0.0f, 0); /* lr 0: the heads stay as set */
    /* head outputs u (rows n) from the hand-set weights */
    const double u[3][4] = {{2, 0, 0, 1}, {1, 1, 3, 0}, {2, 0, 1, 0}};
    const double cos_want[3] = {1.0, 0.0, 1.0 / sqrt(2.0)};
    const float fo1[4] = {1, 0, 0, 2}, fo2[4] = {0.5f, 0.5f, -1, 1};
    float gl[5] = {1, 2, 3, 4, 5}, ga[3] = {1, -1, 0.5f}, gv[2] = {-2, 8};
    assert_int_equal(balm_grm_register(g, 0, gl, 5, "enc_l.weight", NULL), BALM_OK);
    assert_int_equal(balm_grm_register(g, 1, ga, 3, "enc_a.weight", NULL), BALM_OK);
    assert_int_equal(balm_grm_register(g, 2, gv, 2, "enc_v.weight", NULL), BALM_OK);

    /* step 1 (first step: diff = KL) */
    balm_grm_input in;
    balm_grm_report r;
    float dfw[4];
    fill_input(&in, fo1, 1);
    assert_int_equal(balm_grm_step(g, &in, dfw, &r), BALM_OK);
    double kl1[3], S = 1e-8;
    for (int m = 0; m < 3; m++) {
        kl1[m] = kl2(fo1, u[m]);
        S += kl1[m];
        NEAR(r.kl[m], kl1[m]);
        NEAR(r.cos[m], cos_want[m]);
    }
    double c1[3], lgm = 0;
    for (int m = 0; m < 3; m++) {
        c1[m] = (S - kl1[m]) / S;
        NEAR(r.coeff[m], c1[m]);
        lgm += fabs(c1[m] * cos_want[m]) / 3;
    }
    NEAR(r.loss_gm, lgm);
    assert_int_equal(r.rescaled, 1);
    /* dfused: m = l contributes 0 (w_l parallel to wf: w/|w||wf| - cos wf/|wf|^2 = 0),
     * a has sign(cos) = sign(0) = 0, v: |c| (w/(|w||wf|) - cos wf/|wf|^2) / 3 with
     * w = (2,0,0,0), |w| = 2, |wf| = sqrt 2 */
    const double s2 = sqrt(2.0), cv = 1 / s2;
    double want_d[4] = {(1 / s2 - cv * 0.5), 0, 0, -cv * 0.5};
    for (int i = 0; i < 4; i++)
        NEAR(dfw[i], fabs(c1[2]) * want_d[i] / 3);
    /* rescaling: g *= coeff_m * rho exactly (noise off) */
    const float gl0[5] = {1, 2, 3, 4, 5};
    for (int i = 0; i < 5; i++)
        assert_true(gl[i] == gl0[i] * (r.coeff[0] * 1.4f));
    /* head losses and accuracy: NLL of u at labels (0, 1) */
    for (int m = 0; m < 3; m++) {
        double L = 0;
        int hits = 0;
        for (int n = 0; n < 2; n++) {
            double lse = log(exp(u[m][2 * n]) + exp(u[m][2 * n + 1]));
            L -= u[m][2 * n + n] - lse;
            int best = u[m][2 * n + 1] > u[m][2 * n] ? 1 : 0; /* ties: first index, as argmax */
            hits += best == n;
        }
        NEAR(r.head_loss[m], L / 2);
        NEAR(r.head_acc[m], hits / 2.0);
    }
    balm_grm_state s;
    assert_int_equal(balm_grm_get_state(g, &s), BALM_OK);
    assert_int_equal(s.have_prev, 1);
    assert_int_equal(s.adam_steps, 1);
    for (int m = 0; m < 3; m++)
        assert_true(s.prev_kl[m] == r.kl[m]);

    /* step 2, same input: KL unchanged, diff = 0, S = 1e-8, coeff = 1 exactly */
    assert_int_equal(balm_grm_step(g, &in, dfw, &r), BALM_OK);
    for (int m = 0; m < 3; m++)
        assert_true(r.coeff[m] == 1.0f);
    NEAR(r.loss_gm, (1.0 + 0.0 + cv) / 3);

    /* step 3, another fused output: diff = prev - KL, the prev_KL path */
    fill_input(&in, fo2, 3);
    assert_int_equal(balm_grm_step(g, &in, dfw, &r), BALM_OK);
    double kl3[3], diff[3];
    S = 1e-8;
    for (int m = 0; m < 3; m++) {
        kl3[m] = kl2(fo2, u[m]);
        diff[m] = kl1[m] - kl3[m];
        S += diff[m];
        NEAR(r.kl[m], kl3[m]);
    }
    for (int m = 0; m < 3; m++)
        assert_true(fabs(r.coeff[m] - (S - diff[m]) / S) <= 1e-4 * fabs((S - diff[m]) / S));

    /* epoch 4 is past end_epoch = 3: registered gradients untouched */
    float keep_l[5], keep_a[3], keep_v[2];
    memcpy(keep_l, gl, sizeof gl);
    memcpy(keep_a, ga, sizeof ga);
    memcpy(keep_v, gv, sizeof gv);
    fill_input(&in, fo1, 4);
    assert_int_equal(balm_grm_step(g, &in, dfw, &r), BALM_OK);
    assert_int_equal(r.rescaled, 0);
    assert_memory_equal(gl, keep_l, sizeof gl);
    assert_memory_equal(ga, keep_a, sizeof ga);
    assert_memory_equal(gv, keep_v, sizeof gv);
    fill_input(&in, fo1, 0); /* before start_epoch = 1 */
    assert_int_equal(balm_grm_step(g, &in, dfw, &r), BALM_OK);
    assert_memory_equal(gl, keep_l, sizeof gl);
    assert_memory_equal(gv, keep_v, sizeof gv);
    balm_grm_destroy(g);
}

/* First Adam step: m^ = g', v^ = g'^2 with g' = grad + wd p, so
 * p1 = p0 - lr g' / (|g'| + eps) (PyTorch's Adam, L2 in the gradient). */
static void test_adam_first_step(void **st)
{
    (void)st;
    const float lr = 0.01f, wd = 0.1f;
    balm_grm *g = tiny(lr, wd, 0);
    float p0[3][4][4], g0[3][4][4];
    size_t n[4];
    balm_grm_input in;
    const float fo[4] = {1, 0, 0, 2};
    fill_input(&in, fo, 1);
    for (int m = 0; m < 3; m++)
        for (int i = 0; i < 4; i++) {
            float *p;
            balm_grm_param(g, m, (balm_grm_param_id)i, &p, NULL, NULL, NULL, &n[i]);
            memcpy(p0[m][i], p, n[i] * sizeof(float));
        }
    float dfw[4];
    assert_int_equal(balm_grm_step(g, &in, dfw, NULL), BALM_OK);
    for (int m = 0; m < 3; m++)
        for (int i = 0; i < 4; i++) {
            float *p, *gr, *am, *av;
            balm_grm_param(g, m, (balm_grm_param_id)i, &p, &gr, &am, &av, NULL);
            memcpy(g0[m][i], gr, n[i] * sizeof(float));
            for (size_t j = 0; j < n[i]; j++) {
                double gp = (double)gr[j] + wd * (double)p0[m][i][j];
                double want = p0[m][i][j] - lr * gp / (fabs(gp) + 1e-8);
                assert_true(fabs(p[j] - want) <= 1e-6);
                NEAR(am[j], 0.1 * gp);
                NEAR(av[j], 0.001 * gp * gp);
            }
        }
    /* the l head's hand-computable gradient: u = x (W1 = I, W2 = I), du =
     * (softmax(u) - onehot)/N; dW2 = du^T h with h = x */
    const double u[4] = {2, 0, 0, 1};
    double du[4];
    for (int n2 = 0; n2 < 2; n2++) {
        double z = exp(u[2 * n2]) + exp(u[2 * n2 + 1]);
        for (int c = 0; c < 2; c++)
            du[2 * n2 + c] = (exp(u[2 * n2 + c]) / z - (c == n2)) / 2;
    }
    for (int o = 0; o < 2; o++)
        for (int k = 0; k < 2; k++)
            NEAR(g0[0][BALM_GRM_W2][o * 2 + k], du[o] * u[k] + du[2 + o] * u[2 + k]);
    balm_grm_destroy(g);
}

/* Noise: a large tensor gets N(0, sd) with sd = std(scaled) + 1e-8; the draw is
 * a function of the seed only, and distinct per tensor and per step. */
static void test_noise(void **st)
{
    (void)st;
    const size_t n = 1u << 20;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    float *a2 = malloc(n * sizeof(float)), *base = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        base[i] = 2.0f * balm_uniform(5, i) - 1.0f; /* std 1/sqrt(3) */
    balm_grm *g1 = tiny(0, 0, 1), *g2 = tiny(0, 0, 1);
    memcpy(a, base, n * sizeof(float));
    memcpy(b, base, n * sizeof(float));
    memcpy(a2, base, n * sizeof(float));
    balm_grm_register(g1, 1, a, n, "a", NULL);
    balm_grm_register(g1, 1, a2, n, "a2", NULL); /* same content, another tensor */
    balm_grm_register(g2, 1, b, n, "b", NULL);
    balm_grm_input in;
    const float fo[4] = {1, 0, 0, 2};
    fill_input(&in, fo, 2);
    balm_grm_report r;
    float dfw[4];
    assert_int_equal(balm_grm_step(g1, &in, dfw, &r), BALM_OK);
    assert_int_equal(balm_grm_step(g2, &in, dfw, NULL), BALM_OK);
    /* same seed, same tensor position: bitwise the same */
    assert_memory_equal(a, b, n * sizeof(float));
    const float sc = r.coeff[1] * 1.4f;
    double s1 = 0, s2 = 0, ss = 0, sbase = 0, sbase2 = 0, cross = 0;
    for (size_t i = 0; i < n; i++) {
        double v = (double)base[i] * sc;
        sbase += v;
        sbase2 += v * v;
        double e = (double)a[i] - (double)(base[i] * sc), e2 = (double)a2[i] - (double)(base[i] * sc);
        s1 += e;
        s2 += e * e;
        ss += e2 * e2;
        cross += e * e2;
    }
    double sd = sqrt((sbase2 - sbase * sbase / n) / (n - 1)) + 1e-8;
    double mean = s1 / n, sdn = sqrt(s2 / n - mean * mean);
    /* mean within 5 standard errors; sd within 1% (its standard error is 0.07%) */
    assert_true(fabs(mean) <= 5 * sd / sqrt((double)n));
    assert_true(fabs(sdn / sd - 1) <= 0.01);
    assert_true(fabs(sqrt(ss / n) / sd - 1) <= 0.01);
    /* the two tensors got independent noise: correlation ~ 0 (+-5/sqrt(n)) */
    assert_true(fabs(cross / sqrt(s2 * ss)) <= 5 / sqrt((double)n));
    /* the next step draws from a new part of the stream */
    balm_grm_state s0, s1st;
    balm_grm_get_state(g1, &s0);
    assert_true(s0.noise_offset == 2 * (uint64_t)n);
    memcpy(a, base, n * sizeof(float));
    memcpy(b, base, n * sizeof(float));
    assert_int_equal(balm_grm_step(g1, &in, dfw, NULL), BALM_OK);
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        same += a[i] == b[i];
    assert_true(same < n / 100);
    /* restoring the state replays the step bitwise */
    balm_grm_get_state(g1, &s1st);
    balm_grm *g3 = tiny(0, 0, 1);
    float *c = malloc(n * sizeof(float)), *c2 = malloc(n * sizeof(float));
    memcpy(c, base, n * sizeof(float));
    memcpy(c2, base, n * sizeof(float));
    balm_grm_register(g3, 1, c, n, "c", NULL);
    balm_grm_register(g3, 1, c2, n, "c2", NULL);
    assert_int_equal(balm_grm_set_state(g3, &s0), BALM_OK);
    assert_int_equal(balm_grm_step(g3, &in, dfw, NULL), BALM_OK);
    assert_memory_equal(a, c, n * sizeof(float));
    /* another seed: other noise */
    balm_grm *g4 = tiny_seed(0, 0, 1, 1);
    memcpy(c, base, n * sizeof(float));
    balm_grm_register(g4, 1, c, n, "c", NULL);
    assert_int_equal(balm_grm_step(g4, &in, dfw, NULL), BALM_OK);
    same = 0;
    for (size_t i = 0; i < n; i++)
        same += c[i] == b[i];
    assert_true(same < n / 100);
    balm_grm_destroy(g4);
    free(a); free(b); free(a2); free(base); free(c); free(c2);
    balm_grm_destroy(g1);
    balm_grm_destroy(g2);
    balm_grm_destroy(g3);
}

/* Regression (C = 1): MSE heads, KL via balm_kl_reg on the raw outputs. */
static void test_regression(void **st)
{
    (void)st;
    balm_grm_config cfg = balm_grm_config_default();
    cfg.C = 1;
    cfg.H = 3;
    cfg.enc[0] = 4;
    cfg.enc[1] = 2;
    cfg.enc[2] = 5;
    cfg.max_N = 6;
    cfg.seed = 9;
    cfg.noise = 0;
    balm_grm *g;
    assert_int_equal(balm_grm_create(&cfg, &g), BALM_OK);
    const size_t N = 5;
    float fl[5 * 4], fa[5 * 2], fv[5 * 5], fo[5], tg[5], fw[3] = {0.3f, -0.2f, 0.5f}, dfw[3];
    for (size_t i = 0; i < 20; i++) fl[i] = balm_uniform(1, i);
    for (size_t i = 0; i < 10; i++) fa[i] = balm_uniform(2, i);
    for (size_t i = 0; i < 25; i++) fv[i] = balm_uniform(3, i);
    for (size_t i = 0; i < N; i++) {
        fo[i] = 4 * balm_uniform(4, i) - 2;
        tg[i] = 4 * balm_uniform(6, i) - 2;
    }
    balm_grm_input in = {N, {fl, fa, fv}, fo, NULL, tg, fw, 0};
    balm_grm_report r;
    /* heads' outputs by hand from the parameters, before the step moves them */
    double want_kl[3], want_mse[3];
    const float *feat[3] = {fl, fa, fv};
    for (int m = 0; m < 3; m++) {
        float *W1, *b1, *W2, *b2;
        balm_grm_param(g, m, BALM_GRM_W1, &W1, NULL, NULL, NULL, NULL);
        balm_grm_param(g, m, BALM_GRM_B1, &b1, NULL, NULL, NULL, NULL);
        balm_grm_param(g, m, BALM_GRM_W2, &W2, NULL, NULL, NULL, NULL);
        balm_grm_param(g, m, BALM_GRM_B2, &b2, NULL, NULL, NULL, NULL);
        float u[5];
        double mse = 0;
        for (size_t n = 0; n < N; n++) {
            double acc = b2[0];
            for (size_t h = 0; h < 3; h++) {
                double a = b1[h];
                for (size_t k = 0; k < cfg.enc[m]; k++)
                    a += (double)W1[h * cfg.enc[m] + k] * feat[m][n * cfg.enc[m] + k];
                acc += W2[h] * (a > 0 ? a : 0);
            }
            u[n] = (float)acc;
            mse += (acc - tg[n]) * (acc - tg[n]);
        }
        want_mse[m] = mse / N;
        float k;
        assert_int_equal(balm_kl_reg(N, fo, u, &k), BALM_OK);
        want_kl[m] = k;
    }
    assert_int_equal(balm_grm_step(g, &in, dfw, &r), BALM_OK);
    for (int m = 0; m < 3; m++) {
        NEAR(r.kl[m], want_kl[m]);
        NEAR(r.head_loss[m], want_mse[m]);
        assert_true(r.cos[m] >= -1.0f && r.cos[m] <= 1.0f);
    }
    balm_grm_destroy(g);
}

static void test_bad_input(void **st)
{
    (void)st;
    balm_grm_config cfg = balm_grm_config_default();
    balm_grm *g = NULL;
    assert_int_equal(balm_grm_create(&cfg, &g), BALM_ERR_SIZE); /* C, H, enc left 0 */
    assert_null(g);
    cfg.C = 2; cfg.H = 2; cfg.enc[0] = cfg.enc[1] = 2; cfg.max_N = 2;
    assert_int_equal(balm_grm_create(&cfg, &g), BALM_ERR_SIZE);
    assert_non_null(strstr(balm_last_error(), "enc[2]"));
    cfg.enc[2] = 2;
    cfg.beta1 = 1.0f;
    assert_int_equal(balm_grm_create(&cfg, &g), BALM_ERR_ARG);
    cfg.beta1 = 0.9f;
    cfg.rho = NAN;
    assert_int_equal(balm_grm_create(&cfg, &g), BALM_ERR_NONFINITE);

    g = tiny(0.01f, 0, 1);
    float gl[4] = {1, 2, 3, 4}, gv[6] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(balm_grm_register(g, 3, gl, 4, "x", NULL), BALM_ERR_ARG);
    assert_int_equal(balm_grm_register(g, 0, NULL, 4, "x", NULL), BALM_ERR_NULL);
    size_t idx;
    assert_int_equal(balm_grm_register(g, 0, gl, 4, "enc_l.bias", &idx), BALM_OK);
    assert_int_equal(idx, 0);
    assert_int_equal(balm_grm_register(g, 2, gv, 6, "enc_v.weight", &idx), BALM_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(balm_grm_register(g, 1, gv + 2, 2, "again", &idx), BALM_ERR_ARG);
    assert_non_null(strstr(balm_last_error(), "enc_v.weight"));

    balm_grm_input in;
    const float fo[4] = {1, 0, 0, 2};
    float dfw[4] = {9, 9, 9, 9};
    fill_input(&in, fo, 2);
    balm_grm_state s0, s1;
    balm_grm_get_state(g, &s0);
    float *w1, w1_0[4];
    balm_grm_param(g, 0, BALM_GRM_W1, &w1, NULL, NULL, NULL, NULL);
    memcpy(w1_0, w1, sizeof w1_0);

    /* NaN in a registered gradient: reported with modality and tensor, nothing modified */
    gv[4] = NAN;
    assert_int_equal(balm_grm_step(g, &in, dfw, NULL), BALM_ERR_NONFINITE);
    const char *msg = balm_last_error();
    assert_non_null(strstr(msg, "enc_v.weight"));
    assert_non_null(strstr(msg, "(v)"));
    assert_non_null(strstr(msg, "[4]"));
    assert_true(gl[0] == 1 && gl[3] == 4 && gv[0] == 1 && gv[5] == 6);
    assert_true(dfw[0] == 9);
    balm_grm_get_state(g, &s1);
    assert_memory_equal(&s0, &s1, sizeof s0);
    assert_memory_equal(w1, w1_0, sizeof w1_0);
    /* outside the window the NaN tensor is not touched, so not an error */
    fill_input(&in, fo, 7);
    assert_int_equal(balm_grm_step(g, &in, dfw, NULL), BALM_OK);
    assert_true(isnan(gv[4]));
    gv[4] = 5;

    fill_input(&in, fo, 2);
    in.N = 3; /* above max_N */
    assert_int_equal(balm_grm_step(g, &in, dfw, NULL), BALM_ERR_SIZE);
    in.N = 0;
    assert_int_equal(balm_grm_step(g, &in, dfw, NULL), BALM_ERR_SIZE);
    fill_input(&in, fo, 2);
    in.feat[1] = NULL;
    assert_int_equal(balm_grm_step(g, &in, dfw, NULL), BALM_ERR_NULL);
    assert_non_null(strstr(balm_last_error(), "feat[1]"));
    fill_input(&in, fo, 2);
    const int32_t bad_labels[2] = {0, 2};
    in.labels = bad_labels;
    assert_int_equal(balm_grm_step(g, &in, dfw, NULL), BALM_ERR_ARG);
    assert_non_null(strstr(balm_last_error(), "labels[1]"));
    fill_input(&in, fo, 2);
    const float fo_nan[4] = {1, NAN, 0, 2};
    in.fused_out = fo_nan;
    assert_int_equal(balm_grm_step(g, &in, dfw, NULL), BALM_ERR_NONFINITE);
    fill_input(&in, fo, 2);
    assert_int_equal(balm_grm_step(g, &in, NULL, NULL), BALM_ERR_NULL);
    assert_int_equal(balm_grm_step(g, &in, (float *)fused_w, NULL), BALM_ERR_ARG);
    assert_int_equal(balm_grm_param(g, 0, BALM_GRM_NPARAM, NULL, NULL, NULL, NULL, NULL),
                     BALM_ERR_ARG);
    balm_grm_state bs = s0;
    bs.prev_kl[1] = INFINITY;
    assert_int_equal(balm_grm_set_state(g, &bs), BALM_ERR_NONFINITE);
    bs = s0;
    bs.have_prev = 2;
    assert_int_equal(balm_grm_set_state(g, &bs), BALM_ERR_ARG);
    balm_grm_destroy(g);
}

/* The oneDNN heads agree with the plain C heads (rel 1e-5). */
static void test_backends_agree(void **st)
{
    (void)st;
    balm_grm_config cfg = balm_grm_config_default();
    cfg.C = 4; cfg.H = 6; cfg.enc[0] = 7; cfg.enc[1] = 5; cfg.enc[2] = 3; cfg.max_N = 8;
    cfg.noise = 0; cfg.seed = 4;
    balm_grm *g1, *g2;
    cfg.backend = BALM_LINEAR_REF;
    assert_int_equal(balm_grm_create(&cfg, &g1), BALM_OK);
    cfg.backend = BALM_LINEAR_AUTO;
    assert_int_equal(balm_grm_create(&cfg, &g2), BALM_OK);
    float fl[8 * 7], fa[8 * 5], fv[8 * 3], fo[8 * 4], fw[24], d1[24], d2[24];
    int32_t lab[8];
    for (size_t i = 0; i < 56; i++) fl[i] = balm_uniform(1, i);
    for (size_t i = 0; i < 40; i++) fa[i] = balm_uniform(2, i);
    for (size_t i = 0; i < 24; i++) fv[i] = balm_uniform(3, i);
    for (size_t i = 0; i < 32; i++) fo[i] = 3 * balm_uniform(4, i);
    for (size_t i = 0; i < 24; i++) fw[i] = balm_uniform(5, i) - 0.5f;
    for (size_t i = 0; i < 8; i++) lab[i] = (int32_t)(i % 4);
    for (int step = 0; step < 3; step++) {
        balm_grm_input in = {(size_t)(5 + step), {fl, fa, fv}, fo, lab, NULL, fw, 0};
        balm_grm_report r1, r2;
        assert_int_equal(balm_grm_step(g1, &in, d1, &r1), BALM_OK);
        assert_int_equal(balm_grm_step(g2, &in, d2, &r2), BALM_OK);
        for (int m = 0; m < 3; m++) {
            NEAR(r2.kl[m], r1.kl[m]);
            NEAR(r2.cos[m], r1.cos[m]);
            NEAR(r2.head_loss[m], r1.head_loss[m]);
        }
        for (int i = 0; i < 24; i++)
            NEAR(d2[i], d1[i]);
    }
    balm_grm_destroy(g1);
    balm_grm_destroy(g2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_steps_by_hand),
        cmocka_unit_test(test_adam_first_step),
        cmocka_unit_test(test_noise),
        cmocka_unit_test(test_regression),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_backends_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
