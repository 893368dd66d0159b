/* Finite-difference gradient checks against double-precision oracles:
 * - FCM backward (every input and parameter gradient) on random small shapes,
 *   both layouts, every linear backend of this build;
 * - the GRM direction-loss gradient balm_direction_grad.
 * The oracle is a double forward written here from BALM-SPEC; derivatives are
 * central differences of it (step 1e-6, truncation ~1e-12). Tolerance: the
 * float module's gradients within 1e-4 * max|numerical| per array (float
 * rounding over short sums is ~1e-6 of it; 1e-4 leaves margin, a wrong term
 * is O(1)). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "balm/fcm.h"

typedef struct fcm_ref {
    size_t T, B, d[3], dg;
    balm_layout lay;
    double *x[3], *mask[3], *r[3]; /* r: fixed output weights of the loss */
    double *p[8];
    size_t np[8];
} fcm_ref;

static size_t xi(const fcm_ref *c, size_t t, size_t b, size_t d, size_t D)
{
    return c->lay == BALM_LAYOUT_TBD ? (t * c->B + b) * D + d : (b * c->T + t) * D + d;
}

static size_t mi(const fcm_ref *c, size_t t, size_t b)
{
    return c->lay == BALM_LAYOUT_TBD ? t * c->B + b : b * c->T + t;
}

/* loss = sum_m sum y_m * r_m in double, straight from the spec */
static double fcm_loss(const fcm_ref *c)
{
    const size_t B = c->B, T = c->T, dg = c->dg;
    size_t dsum = c->d[0] + c->d[1] + c->d[2];
    double *cat = calloc(B * dsum, sizeof(double)), *z = calloc(B * dg, sizeof(double));
    size_t off = 0;
    for (int m = 0; m < 3; m++) {
        size_t D = c->d[m];
        for (size_t b = 0; b < B; b++) {
            double cnt = 0;
            for (size_t t = 0; t < T; t++)
                cnt += c->mask[m][mi(c, t, b)];
            for (size_t d = 0; d < D; d++) {
                double s = 0;
                for (size_t t = 0; t < T; t++)
                    s += c->mask[m][mi(c, t, b)] * c->x[m][xi(c, t, b, d, D)];
                cat[b * dsum + off + d] = s / (cnt + 1e-8);
            }
        }
        off += D;
    }
    for (size_t b = 0; b < B; b++)
        for (size_t o = 0; o < dg; o++) {
            double a = c->p[1][o];
            for (size_t k = 0; k < dsum; k++)
                a += c->p[0][o * dsum + k] * cat[b * dsum + k];
            z[b * dg + o] = a > 0 ? a : 0;
        }
    double L = 0;
    for (int m = 0; m < 3; m++) {
        size_t D = c->d[m];
        const double *W = c->p[2 + 2 * m], *bb = c->p[3 + 2 * m];
        for (size_t b = 0; b < B; b++)
            for (size_t d = 0; d < D; d++) {
                double e = bb[d];
                for (size_t k = 0; k < dg; k++)
                    e += W[d * dg + k] * z[b * dg + k];
                double gate = 2.0 / (1.0 + exp(-e));
                for (size_t t = 0; t < T; t++) {
                    size_t i = xi(c, t, b, d, D);
                    L += gate * c->x[m][i] * c->mask[m][mi(c, t, b)] * c->r[m][i];
                }
            }
    }
    free(cat);
    free(z);
    return L;
}

static double numdiff(fcm_ref *c, double *v)
{
    const double h = 1e-6, v0 = *v;
    *v = v0 + h;
    double lp = fcm_loss(c);
    *v = v0 - h;
    double lm = fcm_loss(c);
    *v = v0;
    return (lp - lm) / (2 * h);
}

static int compare(const char *what, const float *ana, const double *num, size_t n)
{
    double big = 0, diff = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        big = fmax(big, fabs(num[i]));
        double dd = fabs((double)ana[i] - num[i]);
        if (!(dd <= diff)) {
            diff = dd;
            worst = i;
        }
    }
    double rel = big > 0 ? diff / big : diff;
    if (!(rel <= 1e-4)) {
        fprintf(stderr, "  %s: rel err %.3g at [%zu] (analytic %g, numerical %g)\n", what, rel,
                worst, (double)ana[worst], num[worst]);
        return 0;
    }
    return 1;
}

static int gradcheck_fcm(uint64_t seed, size_t T, size_t B, const size_t d[3], size_t dg,
                         balm_layout lay, balm_linear_backend be)
{
    fcm_ref c = {T, B, {d[0], d[1], d[2]}, dg, lay, {0}, {0}, {0}, {0}, {0}};
    balm_fcm_config cfg = {{d[0], d[1], d[2]}, dg, T, B, lay, be, seed};
    balm_fcm *f;
    if (balm_fcm_create(&cfg, &f) != BALM_OK)
        return -1;
    uint64_t k = 0;
    float *x[3], *mk[3], *y[3], *r[3], *dx[3];
    for (int m = 0; m < 3; m++) {
        size_t n = T * B * d[m];
        x[m] = malloc(n * sizeof(float));
        r[m] = malloc(n * sizeof(float));
        y[m] = malloc(n * sizeof(float));
        dx[m] = malloc(n * sizeof(float));
        mk[m] = malloc(T * B * sizeof(float));
        c.x[m] = malloc(n * sizeof(double));
        c.r[m] = malloc(n * sizeof(double));
        c.mask[m] = malloc(T * B * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            x[m][i] = 6.0f * balm_uniform(seed + 100, k++) - 3.0f;
            r[m][i] = 2.0f * balm_uniform(seed + 100, k++) - 1.0f;
            c.x[m][i] = x[m][i];
            c.r[m][i] = r[m][i];
        }
        for (size_t i = 0; i < T * B; i++) {
            /* sample 0 misses modality m entirely when m == 2: the 0-count path */
            int all_missing = m == 2 && (lay == BALM_LAYOUT_TBD ? i % B == 0 : i < T);
            mk[m][i] = !all_missing && balm_uniform(seed + 200, k++) < 0.75f ? 1.0f : 0.0f;
            c.mask[m][i] = mk[m][i];
        }
    }
    for (int i = 0; i < 8; i++) {
        float *p;
        balm_fcm_param(f, (balm_fcm_param_id)i, &p, NULL, &c.np[i]);
        c.p[i] = malloc(c.np[i] * sizeof(double));
        for (size_t j = 0; j < c.np[i]; j++) {
            /* larger weights than the default init so relu and gate are nonlinear */
            p[j] *= 3.0f;
            c.p[i][j] = p[j];
        }
    }
    int ok = balm_fcm_forward(f, T, B, (const float *const *)x, (const float *const *)mk, y) ==
                 BALM_OK &&
             balm_fcm_backward(f, (const float *const *)r, dx, 0) == BALM_OK;
    for (int m = 0; m < 3 && ok; m++) {
        size_t n = T * B * d[m];
        double *num = malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++)
            num[i] = numdiff(&c, &c.x[m][i]);
        char w[16];
        snprintf(w, sizeof w, "dx[%d]", m);
        ok &= compare(w, dx[m], num, n);
        free(num);
    }
    static const char *const pn[8] = {"dWg", "dbg", "dWl", "dbl", "dWa", "dba", "dWv", "dbv"};
    for (int i = 0; i < 8 && ok; i++) {
        float *g;
        balm_fcm_param(f, (balm_fcm_param_id)i, NULL, &g, NULL);
        double *num = malloc(c.np[i] * sizeof(double));
        for (size_t j = 0; j < c.np[i]; j++)
            num[j] = numdiff(&c, &c.p[i][j]);
        ok &= compare(pn[i], g, num, c.np[i]);
        free(num);
    }
    for (int m = 0; m < 3; m++) {
        free(x[m]); free(r[m]); free(y[m]); free(dx[m]); free(mk[m]);
        free(c.x[m]); free(c.r[m]); free(c.mask[m]);
    }
    for (int i = 0; i < 8; i++)
        free(c.p[i]);
    balm_fcm_destroy(f);
    return ok;
}

static void test_fcm_gradcheck(void **st)
{
    (void)st;
    static const struct { size_t T, B, d[3], dg; } shapes[] = {
        {4, 3, {5, 4, 3}, 3}, {1, 1, {2, 1, 3}, 2}, {7, 2, {9, 6, 8}, 5}, {3, 5, {1, 1, 1}, 1},
    };
    int fails = 0, runs = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int lay = 0; lay < 2; lay++)
            for (int be = BALM_LINEAR_REF; be <= BALM_LINEAR_ONEDNN; be++) {
                int r = gradcheck_fcm(11 + s, shapes[s].T, shapes[s].B, shapes[s].d,
                                      shapes[s].dg, (balm_layout)lay, (balm_linear_backend)be);
                if (r < 0)
                    continue; /* backend not in this build */
                runs++;
                if (!r) {
                    fprintf(stderr, "FCM gradcheck failed: shape %zu layout %d backend %d\n", s,
                            lay, be);
                    fails++;
                }
            }
    assert_true(runs >= 8);
    assert_int_equal(fails, 0);
}

/* loss_gm(wf) = (1/M) sum |coeff_m cos_m(wf)|, double; norms clamped at 1e-8 */
static double gm_loss(size_t n, size_t M, double *const *w, const double *wf,
                      const double *coeff)
{
    double nf = 0, L = 0;
    for (size_t i = 0; i < n; i++)
        nf += wf[i] * wf[i];
    nf = fmax(sqrt(nf), 1e-8);
    for (size_t m = 0; m < M; m++) {
        double dot = 0, nw = 0;
        for (size_t i = 0; i < n; i++) {
            dot += w[m][i] * wf[i];
            nw += w[m][i] * w[m][i];
        }
        L += fabs(coeff[m] * dot / (fmax(sqrt(nw), 1e-8) * nf));
    }
    return L / (double)M;
}

static void test_direction_gradcheck(void **st)
{
    (void)st;
    static const size_t ns[] = {1, 2, 7, 33, 130};
    uint64_t k = 0;
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++)
        for (size_t M = 1; M <= 4; M++) {
            size_t n = ns[t];
            float *w[4], *wf = malloc(n * sizeof(float)), *dwf = malloc(n * sizeof(float));
            double *wd[4], *wfd = malloc(n * sizeof(double)), coeffd[4];
            float coeff[4], cos[4];
            for (size_t i = 0; i < n; i++)
                wfd[i] = wf[i] = 2.0f * balm_uniform(77, k++) - 1.0f;
            for (size_t m = 0; m < M; m++) {
                w[m] = malloc(n * sizeof(float));
                wd[m] = malloc(n * sizeof(double));
                for (size_t i = 0; i < n; i++)
                    wd[m][i] = w[m][i] = 2.0f * balm_uniform(78, k++) - 1.0f;
                /* coefficients of both signs, as GRM can produce */
                coeffd[m] = coeff[m] = 3.0f * balm_uniform(79, k++) - 1.0f;
                assert_int_equal(balm_cos(n, w[m], wf, &cos[m], NULL, NULL), BALM_OK);
                if (n > 1 && fabsf(cos[m]) < 0.02f) /* keep away from the |.| kink */
                    for (size_t i = 0; i < n; i++)
                        wd[m][i] = w[m][i] = 0.5f * w[m][i] + 0.5f * wf[i];
                assert_int_equal(balm_cos(n, w[m], wf, &cos[m], NULL, NULL), BALM_OK);
            }
            assert_int_equal(balm_direction_grad(n, M, (const float *const *)w, wf, coeff, cos,
                                                 dwf, 0), BALM_OK);
            double *num = malloc(n * sizeof(double));
            for (size_t i = 0; i < n; i++) {
                const double h = 1e-6, v = wfd[i];
                wfd[i] = v + h;
                double lp = gm_loss(n, M, wd, wfd, coeffd);
                wfd[i] = v - h;
                double lm = gm_loss(n, M, wd, wfd, coeffd);
                wfd[i] = v;
                num[i] = (lp - lm) / (2 * h);
            }
            /* n = 1: cos = +-1 is flat in wf, the gradient is ~0; compare absolutely */
            double big = 0, diff = 0;
            for (size_t i = 0; i < n; i++) {
                if (fabs(num[i]) > big)
                    big = fabs(num[i]);
                if (fabs(dwf[i] - num[i]) > diff)
                    diff = fabs(dwf[i] - num[i]);
            }
            if (n == 1)
                assert_true(diff <= 1e-5);
            else if (!(diff <= 1e-4 * big)) {
                fprintf(stderr, "direction grad n=%zu M=%zu: diff %g, max %g\n", n, M, diff, big);
                fail();
            }
            for (size_t m = 0; m < M; m++) {
                free(w[m]);
                free(wd[m]);
            }
            free(wf); free(dwf); free(wfd); free(num);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fcm_gradcheck),
        cmocka_unit_test(test_direction_gradcheck),
    };
    fprintf(stderr, "gradient checks under ISA %s\n", balm_isa_name(balm_isa_active()));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
