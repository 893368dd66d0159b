/* FCM module against the PyTorch golden cases (fcm_*), with every linear
 * backend this build has, both layouts, y aliasing x, accumulate on/off, and
 * bad input. The kernels run under the active ISA; main() re-runs this
 * executable once per other supported ISA (BALM_ISA=<name>), so one ctest
 * entry covers every ISA; when BALM_ISA is already set (the CI legs run the
 * whole suite once per cap, also under qemu) it does not re-run itself.
 *
 * Tolerances (BALM-SPEC, golden/README): |got - want| <= 1e-5 * max|want| per
 * array; 1e-4 * max|want| for the weight gradients dW*, where the summation
 * order over B*T terms and long dot products differs from PyTorch's. */
#define _POSIX_C_SOURCE 200809L /* WEXITSTATUS */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "balm/fcm.h"
#include "balm/npy.h"
#include "linear.h" /* the internal linear layer under the module */

static const char *const mod_name[3] = {"l", "a", "v"};

typedef struct gcase {
    size_t T, B, d[3], dg;
    balm_array x[3], mask[3], w[8], out[3], dout[3], s[3], z, e[3], dx[3], dw[8];
} gcase;

static int load(const char dir[static 1024], const char *name, balm_array *a)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    balm_status st = balm_npy_read(path, a);
    if (st != BALM_OK)
        fprintf(stderr, "cannot read %s: %s\n", path, balm_last_error());
    return st == BALM_OK;
}

/* Parameter order of fcm.h: wg bg wl bl wa ba wv bv. */
static const char *const pname[8] = {"wg", "bg", "wl", "bl", "wa", "ba", "wv", "bv"};

static int load_case(const char *name, gcase *c)
{
    char dir[1024];
    memset(c, 0, sizeof *c);
    snprintf(dir, sizeof dir, "%s/%s", BALM_GOLDEN_DIR, name);
    int ok = 1;
    for (int m = 0; m < 3; m++) {
        char n[32];
        ok &= load(dir, mod_name[m], &c->x[m]);
        snprintf(n, sizeof n, "%smask", mod_name[m]);
        ok &= load(dir, n, &c->mask[m]);
        snprintf(n, sizeof n, "%s_out", mod_name[m]);
        ok &= load(dir, n, &c->out[m]);
        snprintf(n, sizeof n, "d%s_out", mod_name[m]);
        ok &= load(dir, n, &c->dout[m]);
        snprintf(n, sizeof n, "s%s", mod_name[m]);
        ok &= load(dir, n, &c->s[m]);
        snprintf(n, sizeof n, "e%s", mod_name[m]);
        ok &= load(dir, n, &c->e[m]);
        snprintf(n, sizeof n, "d%s", mod_name[m]);
        ok &= load(dir, n, &c->dx[m]);
    }
    ok &= load(dir, "z", &c->z);
    for (int i = 0; i < 8; i++) {
        char n[32];
        ok &= load(dir, pname[i], &c->w[i]);
        snprintf(n, sizeof n, "d%s", pname[i]);
        ok &= load(dir, n, &c->dw[i]);
    }
    if (!ok)
        return 0;
    c->T = c->x[0].shape[0];
    c->B = c->x[0].shape[1];
    for (int m = 0; m < 3; m++)
        c->d[m] = c->x[m].shape[2];
    c->dg = c->w[1].count;
    return 1;
}

static void free_case(gcase *c)
{
    balm_array *all = (balm_array *)c;
    (void)all;
    for (int m = 0; m < 3; m++) {
        balm_array_free(&c->x[m]);
        balm_array_free(&c->mask[m]);
        balm_array_free(&c->out[m]);
        balm_array_free(&c->dout[m]);
        balm_array_free(&c->s[m]);
        balm_array_free(&c->e[m]);
        balm_array_free(&c->dx[m]);
    }
    balm_array_free(&c->z);
    for (int i = 0; i < 8; i++) {
        balm_array_free(&c->w[i]);
        balm_array_free(&c->dw[i]);
    }
}

/* max|got - want| / max|want| (0/0 = 0); NaN anywhere gives +inf. */
static double rel_err(const float *got, const float *want, size_t n)
{
    double big = 0.0, diff = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(want[i]))
            return INFINITY;
        big = fmax(big, fabs((double)want[i]));
        diff = fmax(diff, fabs((double)got[i] - want[i]));
    }
    return big > 0 ? diff / big : diff;
}

static int check(const char *what, const float *got, const float *want, size_t n, double tol)
{
    double r = rel_err(got, want, n);
    if (!(r <= tol)) {
        fprintf(stderr, "  %s: relative error %.3g above %.0e\n", what, r, tol);
        return 0;
    }
    return 1;
}

/* [T][B][D] -> [B][T][D] (D = 1 for masks). */
static float *to_btd(const float *x, size_t T, size_t B, size_t D)
{
    size_t n = T * B * D;
    float *y = malloc((n > 0 ? n : 1) * sizeof *y);
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            memcpy(y + (b * T + t) * D, x + (t * B + b) * D, D * sizeof *y);
    return y;
}

/* Runs one golden case through one backend and layout; returns failures. */
static int run_case(const gcase *c, balm_linear_backend be, balm_layout lay, int alias)
{
    balm_fcm_config cfg = {{c->d[0], c->d[1], c->d[2]}, c->dg, c->T + 2, c->B + 1, lay, be, 7};
    balm_fcm *f = NULL;
    assert_int_equal(balm_fcm_create(&cfg, &f), BALM_OK);
    assert_int_equal(balm_fcm_backend(f), be);
    for (int i = 0; i < 8; i++) {
        float *p, *g;
        size_t n;
        assert_int_equal(balm_fcm_param(f, (balm_fcm_param_id)i, &p, &g, &n), BALM_OK);
        assert_int_equal(n, c->w[i].count);
        memcpy(p, c->w[i].data, n * sizeof *p);
        for (size_t k = 0; k < n; k++)
            g[k] = 1e6f; /* accumulate = 0 must overwrite this */
    }
    const size_t T = c->T, B = c->B;
    float *x[3], *mk[3], *y[3], *dy[3], *dx[3];
    for (int m = 0; m < 3; m++) {
        size_t n = T * B * c->d[m];
        if (lay == BALM_LAYOUT_TBD) {
            x[m] = malloc(n * sizeof(float) + 4);
            memcpy(x[m], c->x[m].data, n * sizeof(float));
            mk[m] = to_btd(c->mask[m].data, 1, T * B, 1); /* a copy */
            dy[m] = to_btd(c->dout[m].data, 1, n, 1);
        } else {
            x[m] = to_btd(c->x[m].data, T, B, c->d[m]);
            mk[m] = to_btd(c->mask[m].data, T, B, 1);
            dy[m] = to_btd(c->dout[m].data, T, B, c->d[m]);
        }
        y[m] = alias ? x[m] : malloc(n * sizeof(float) + 4);
        dx[m] = malloc(n * sizeof(float) + 4);
    }
    assert_int_equal(balm_fcm_forward(f, T, B, (const float *const *)x, (const float *const *)mk,
                                      y), BALM_OK);
    assert_int_equal(balm_fcm_backward(f, (const float *const *)dy, dx, 0), BALM_OK);
    int ok = 1;
    const float *s[3], *z, *e[3];
    assert_int_equal(balm_fcm_intermediates(f, s, &z, e), BALM_OK);
    for (int m = 0; m < 3; m++) {
        char w[32];
        size_t n = T * B * c->d[m];
        float *yo = lay == BALM_LAYOUT_TBD ? y[m] : to_btd(y[m], B, T, c->d[m]);
        float *dxo = lay == BALM_LAYOUT_TBD ? dx[m] : to_btd(dx[m], B, T, c->d[m]);
        snprintf(w, sizeof w, "s%s", mod_name[m]);
        ok &= check(w, s[m], c->s[m].data, B * c->d[m], 1e-5);
        snprintf(w, sizeof w, "e%s", mod_name[m]);
        ok &= check(w, e[m], c->e[m].data, B * c->d[m], 1e-5);
        snprintf(w, sizeof w, "%s_out", mod_name[m]);
        ok &= check(w, yo, c->out[m].data, n, 1e-5);
        snprintf(w, sizeof w, "d%s", mod_name[m]);
        ok &= check(w, dxo, c->dx[m].data, n, 1e-5);
        if (yo != y[m])
            free(yo);
        if (dxo != dx[m])
            free(dxo);
    }
    ok &= check("z", z, c->z.data, B * c->dg, 1e-5);
    float *g0[8];
    for (int i = 0; i < 8; i++) {
        float *g;
        size_t n;
        char w[32];
        balm_fcm_param(f, (balm_fcm_param_id)i, NULL, &g, &n);
        snprintf(w, sizeof w, "d%s", pname[i]);
        ok &= check(w, g, c->dw[i].data, n, (i % 2 == 0) ? 1e-4 : 1e-5);
        g0[i] = malloc(n * sizeof(float));
        memcpy(g0[i], g, n * sizeof(float));
    }
    /* accumulate = 1 adds a second, identical backward: exactly twice the
     * first (x + x is exact in float), both backends compute it the same way */
    assert_int_equal(balm_fcm_backward(f, (const float *const *)dy, dx, 1), BALM_OK);
    for (int i = 0; i < 8; i++) {
        float *g;
        size_t n;
        balm_fcm_param(f, (balm_fcm_param_id)i, NULL, &g, &n);
        for (size_t k = 0; k < n; k++)
            if (fabsf(g[k] - 2.0f * g0[i][k]) > 1e-6f * fabsf(g0[i][k]) + 1e-30f) {
                fprintf(stderr, "  accumulate: d%s[%zu] = %g, want %g\n", pname[i], k, g[k],
                        2.0f * g0[i][k]);
                ok = 0;
                break;
            }
        free(g0[i]);
    }
    for (int m = 0; m < 3; m++) {
        free(x[m]);
        free(mk[m]);
        free(dy[m]);
        free(dx[m]);
        if (!alias)
            free(y[m]);
    }
    balm_fcm_destroy(f);
    return ok ? 0 : 1;
}

static void golden(const char *name)
{
    gcase c;
    if (!load_case(name, &c)) {
        free_case(&c);
        fprintf(stderr, "golden case %s not found under %s: skipped\n", name, BALM_GOLDEN_DIR);
        skip();
    }
    int fails = 0;
    for (int be = BALM_LINEAR_REF; be <= BALM_LINEAR_ONEDNN; be++) {
        balm_fcm_config probe = {{1, 1, 1}, 1, 1, 1, BALM_LAYOUT_TBD, (balm_linear_backend)be, 0};
        balm_fcm *f = NULL;
        if (balm_fcm_create(&probe, &f) == BALM_ERR_UNSUPPORTED)
            continue;
        balm_fcm_destroy(f);
        for (int lay = 0; lay < 2; lay++)
            for (int alias = 0; alias < 2; alias++) {
                int r = run_case(&c, (balm_linear_backend)be, (balm_layout)lay, alias);
                if (r)
                    fprintf(stderr, "%s: backend %d layout %d alias %d failed (isa %s)\n", name,
                            be, lay, alias, balm_isa_name(balm_isa_active()));
                fails += r;
            }
    }
    free_case(&c);
    assert_int_equal(fails, 0);
}

static void test_fcm_tiny(void **st) { (void)st; golden("fcm_tiny"); }
static void test_fcm_odd(void **st) { (void)st; golden("fcm_odd"); }
static void test_fcm_saturated(void **st) { (void)st; golden("fcm_saturated"); }
static void test_fcm_iemocap_dims(void **st) { (void)st; golden("fcm_iemocap_dims"); }

/* Init: PyTorch default, U(+-1/sqrt(fan_in)), deterministic from the seed. */
static void test_init(void **st)
{
    (void)st;
    balm_fcm_config cfg = {{30, 20, 10}, 15, 4, 3, BALM_LAYOUT_TBD, BALM_LINEAR_REF, 42};
    balm_fcm *f1, *f2, *f3;
    assert_int_equal(balm_fcm_create(&cfg, &f1), BALM_OK);
    assert_int_equal(balm_fcm_create(&cfg, &f2), BALM_OK);
    cfg.seed = 43;
    assert_int_equal(balm_fcm_create(&cfg, &f3), BALM_OK);
    int differ = 0;
    for (int i = 0; i < 8; i++) {
        float *p1, *p2, *p3;
        size_t n;
        balm_fcm_param(f1, (balm_fcm_param_id)i, &p1, NULL, &n);
        balm_fcm_param(f2, (balm_fcm_param_id)i, &p2, NULL, NULL);
        balm_fcm_param(f3, (balm_fcm_param_id)i, &p3, NULL, NULL);
        double bound = 1.0 / sqrt(i < 2 ? 60.0 : 15.0), mx = 0;
        for (size_t k = 0; k < n; k++) {
            assert_true(fabs(p1[k]) <= bound);
            mx = fmax(mx, fabs(p1[k]));
            differ |= p1[k] != p3[k];
        }
        assert_memory_equal(p1, p2, n * sizeof(float));
        if (n >= 15)
            assert_true(mx > 0.5 * bound); /* spread over the range, not all ~0 */
    }
    assert_true(differ);
    balm_fcm_destroy(f1);
    balm_fcm_destroy(f2);
    balm_fcm_destroy(f3);
}

/* Fewer rows than max_B and then a larger batch: the same primitives serve
 * any B <= max_B; oneDNN agrees with the plain C oracle (rel 1e-5). */
static void backends_agree(int threads)
{
    /* the thread count applies to objects created afterwards */
    assert_int_equal(balm_fcm_set_threads(threads), BALM_OK);
    balm_fcm_config cfg = {{9, 6, 5}, 7, 5, 6, BALM_LAYOUT_TBD, BALM_LINEAR_REF, 3};
    balm_fcm *fr, *fo;
    assert_int_equal(balm_fcm_create(&cfg, &fr), BALM_OK);
    cfg.backend = BALM_LINEAR_AUTO;
    assert_int_equal(balm_fcm_create(&cfg, &fo), BALM_OK);
    size_t Bs[3] = {2, 6, 1};
    for (int it = 0; it < 3; it++) {
        size_t T = 4 + (size_t)it % 2, B = Bs[it];
        float *x[3], *mk[3], *y1[3], *y2[3], *dx1[3], *dx2[3];
        uint64_t k = 1000 * (uint64_t)it;
        for (int m = 0; m < 3; m++) {
            size_t n = T * B * cfg.d[m];
            x[m] = malloc(n * sizeof(float));
            y1[m] = malloc(n * sizeof(float));
            y2[m] = malloc(n * sizeof(float));
            dx1[m] = malloc(n * sizeof(float));
            dx2[m] = malloc(n * sizeof(float));
            mk[m] = malloc(T * B * sizeof(float));
            for (size_t i = 0; i < n; i++)
                x[m][i] = 4.0f * balm_uniform(9, k++) - 2.0f;
            for (size_t i = 0; i < T * B; i++)
                mk[m][i] = balm_uniform(10, k++) < 0.7f ? 1.0f : 0.0f;
        }
        assert_int_equal(balm_fcm_forward(fr, T, B, (const float *const *)x,
                                          (const float *const *)mk, y1), BALM_OK);
        assert_int_equal(balm_fcm_forward(fo, T, B, (const float *const *)x,
                                          (const float *const *)mk, y2), BALM_OK);
        /* dy = x: any fixed gradient will do */
        assert_int_equal(balm_fcm_backward(fr, (const float *const *)x, dx1, it > 0), BALM_OK);
        assert_int_equal(balm_fcm_backward(fo, (const float *const *)x, dx2, it > 0), BALM_OK);
        for (int m = 0; m < 3; m++) {
            size_t n = T * B * cfg.d[m];
            assert_true(rel_err(y2[m], y1[m], n) <= 1e-5);
            assert_true(rel_err(dx2[m], dx1[m], n) <= 1e-5);
            free(x[m]); free(y1[m]); free(y2[m]); free(dx1[m]); free(dx2[m]); free(mk[m]);
        }
        for (int i = 0; i < 8; i++) {
            float *g1, *g2;
            size_t n;
            balm_fcm_param(fr, (balm_fcm_param_id)i, NULL, &g1, &n);
            balm_fcm_param(fo, (balm_fcm_param_id)i, NULL, &g2, NULL);
            assert_true(rel_err(g2, g1, n) <= 1e-5);
        }
    }
    balm_fcm_destroy(fr);
    balm_fcm_destroy(fo);
    assert_int_equal(balm_fcm_set_threads(1), BALM_OK);
}

static void test_backends_agree_varying_batch(void **st)
{
    (void)st;
    backends_agree(1);
}

/* Two oneDNN threads, and the OpenMP runtime's own setting (0). */
static void test_backends_agree_threads(void **st)
{
    (void)st;
    backends_agree(2);
    backends_agree(0);
}

/* The linear layer alone, every backend, against a double computation
 * (rel 1e-5 of the array's max magnitude): rows below max_rows, with and
 * without bias, overwrite and accumulate; then its argument errors. */
static void test_linear_layer(void **st)
{
    (void)st;
    static const size_t shapes[][3] = {{1, 1, 1}, {37, 23, 16}, {5, 300, 7}};
    for (int be = BALM_LINEAR_REF; be <= BALM_LINEAR_ONEDNN; be++) {
        if (!balm_linear_backend_available((balm_linear_backend)be))
            continue;
        for (size_t sh = 0; sh < 3; sh++) {
            const size_t in = shapes[sh][0], out = shapes[sh][1], R = shapes[sh][2];
            balm_linear *l;
            assert_int_equal(balm_linear_create(in, out, R, (balm_linear_backend)be, &l), BALM_OK);
            assert_int_equal(balm_linear_get_backend(l), be);
            float *W = malloc(in * out * sizeof(float)), *b = malloc(out * sizeof(float));
            float *x = malloc(R * in * sizeof(float)), *dy = malloc(R * out * sizeof(float));
            float *y = malloc(R * out * sizeof(float)), *dx = malloc(R * in * sizeof(float));
            float *dW = malloc(in * out * sizeof(float)), *db = malloc(out * sizeof(float));
            uint64_t k = 0;
            for (size_t i = 0; i < in * out; i++) W[i] = 2 * balm_uniform(21, k++) - 1;
            for (size_t i = 0; i < out; i++) b[i] = 2 * balm_uniform(21, k++) - 1;
            for (size_t i = 0; i < R * in; i++) x[i] = 2 * balm_uniform(21, k++) - 1;
            for (size_t i = 0; i < R * out; i++) dy[i] = 2 * balm_uniform(21, k++) - 1;
            const size_t rowset[3] = {1, R / 2 + 1, R};
            for (int ri = 0; ri < 3; ri++)
                for (int acc = 0; acc < 2; acc++) {
                    const size_t rows = rowset[ri];
                    const float *bias = acc ? NULL : b;
                    for (size_t i = 0; i < R * in; i++) dx[i] = 0.5f;
                    for (size_t i = 0; i < in * out; i++) dW[i] = 0.25f;
                    for (size_t i = 0; i < out; i++) db[i] = -0.5f;
                    assert_int_equal(balm_linear_forward(l, rows, x, W, bias, y), BALM_OK);
                    assert_int_equal(balm_linear_backward_data(l, rows, dy, W, dx, acc), BALM_OK);
                    assert_int_equal(balm_linear_backward_weights(l, rows, dy, x, dW, db, acc),
                                     BALM_OK);
                    float *got = malloc((rows * out + rows * in + in * out + out) * sizeof(float));
                    double *want = malloc((rows * out + rows * in + in * out + out) * sizeof(double));
                    size_t n = 0;
                    for (size_t r = 0; r < rows; r++)
                        for (size_t o = 0; o < out; o++, n++) {
                            double a = bias ? bias[o] : 0;
                            for (size_t q = 0; q < in; q++) a += (double)x[r * in + q] * W[o * in + q];
                            want[n] = a;
                            got[n] = y[r * out + o];
                        }
                    for (size_t r = 0; r < rows; r++)
                        for (size_t q = 0; q < in; q++, n++) {
                            double a = acc ? 0.5 : 0;
                            for (size_t o = 0; o < out; o++) a += (double)dy[r * out + o] * W[o * in + q];
                            want[n] = a;
                            got[n] = dx[r * in + q];
                        }
                    for (size_t o = 0; o < out; o++)
                        for (size_t q = 0; q < in; q++, n++) {
                            double a = acc ? 0.25 : 0;
                            for (size_t r = 0; r < rows; r++) a += (double)dy[r * out + o] * x[r * in + q];
                            want[n] = a;
                            got[n] = dW[o * in + q];
                        }
                    for (size_t o = 0; o < out; o++, n++) {
                        double a = acc ? -0.5 : 0;
                        for (size_t r = 0; r < rows; r++) a += dy[r * out + o];
                        want[n] = a;
                        got[n] = db[o];
                    }
                    /* per block: y, dx, dW, db */
                    size_t blk[4] = {rows * out, rows * in, in * out, out}, off = 0;
                    for (int q = 0; q < 4; q++) {
                        double big = 0, diff = 0;
                        for (size_t i = off; i < off + blk[q]; i++) {
                            big = fmax(big, fabs(want[i]));
                            diff = fmax(diff, fabs(got[i] - want[i]));
                        }
                        if (!(diff <= 1e-5 * big + 1e-30)) {
                            fprintf(stderr, "linear be=%d in=%zu out=%zu rows=%zu acc=%d block %d: "
                                    "diff %g max %g\n", be, in, out, rows, acc, q, diff, big);
                            fail();
                        }
                        off += blk[q];
                    }
                    free(got);
                    free(want);
                }
            /* rows = 0: nothing to add; overwriting gradients zeroes them */
            assert_int_equal(balm_linear_backward_weights(l, 0, NULL, NULL, dW, db, 0), BALM_OK);
            for (size_t i = 0; i < in * out; i++) assert_true(dW[i] == 0.0f);
            assert_int_equal(balm_linear_forward(l, 0, NULL, W, b, NULL), BALM_OK);
            /* errors */
            assert_int_equal(balm_linear_forward(l, R + 1, x, W, b, y), BALM_ERR_SIZE);
            assert_non_null(strstr(balm_last_error(), "max_rows"));
            assert_int_equal(balm_linear_forward(l, 1, NULL, W, b, y), BALM_ERR_NULL);
            assert_int_equal(balm_linear_backward_data(l, 1, dy, W, dx, 3), BALM_ERR_ARG);
            assert_int_equal(balm_linear_backward_weights(l, 1, dy, x, NULL, db, 0), BALM_ERR_NULL);
            free(W); free(b); free(x); free(dy); free(y); free(dx); free(dW); free(db);
            balm_linear_destroy(l);
        }
    }
    balm_linear *l = NULL;
    assert_int_equal(balm_linear_create(0, 3, 1, BALM_LINEAR_REF, &l), BALM_ERR_SIZE);
    assert_null(l);
    assert_int_equal(balm_linear_create(3, 3, 1, (balm_linear_backend)7, &l), BALM_ERR_ARG);
    if (!balm_linear_backend_available(BALM_LINEAR_ONEDNN))
        assert_int_equal(balm_linear_create(3, 3, 1, BALM_LINEAR_ONEDNN, &l), BALM_ERR_UNSUPPORTED);
}

static void test_bad_input(void **st)
{
    (void)st;
    balm_fcm_config cfg = {{4, 3, 2}, 3, 5, 2, BALM_LAYOUT_TBD, BALM_LINEAR_AUTO, 1};
    balm_fcm *f = NULL;
    balm_fcm_config bad = cfg;
    bad.d[1] = 0;
    assert_int_equal(balm_fcm_create(&bad, &f), BALM_ERR_SIZE);
    assert_null(f);
    assert_non_null(strstr(balm_last_error(), "d[1]"));
    bad = cfg;
    bad.max_B = 0;
    assert_int_equal(balm_fcm_create(&bad, &f), BALM_ERR_SIZE);
    bad = cfg;
    bad.layout = (balm_layout)5;
    assert_int_equal(balm_fcm_create(&bad, &f), BALM_ERR_ARG);
    bad = cfg;
    bad.backend = (balm_linear_backend)9;
    assert_int_equal(balm_fcm_create(&bad, &f), BALM_ERR_ARG);
    assert_int_equal(balm_fcm_create(NULL, &f), BALM_ERR_NULL);
    assert_int_equal(balm_fcm_create(&cfg, NULL), BALM_ERR_NULL);
    assert_int_equal(balm_fcm_create(&cfg, &f), BALM_OK);

    float xl[5 * 2 * 4], xa[5 * 2 * 3], xv[5 * 2 * 2], m1[10], yl[40], ya[30], yv[20];
    float dxl[40], dxa[30], dxv[20];
    for (size_t i = 0; i < 40; i++) xl[i] = 0.1f * (float)i;
    for (size_t i = 0; i < 30; i++) xa[i] = -0.1f * (float)i;
    for (size_t i = 0; i < 20; i++) xv[i] = 0.05f * (float)i;
    for (size_t i = 0; i < 10; i++) m1[i] = 1.0f;
    const float *x[3] = {xl, xa, xv}, *mk[3] = {m1, m1, m1};
    float *y[3] = {yl, ya, yv}, *dx[3] = {dxl, dxa, dxv};
    const float *dy[3] = {xl, xa, xv};

    /* backward before forward */
    assert_int_equal(balm_fcm_backward(f, dy, dx, 0), BALM_ERR_STATE);
    assert_non_null(strstr(balm_last_error(), "balm_fcm_backward"));
    const float *s[3];
    assert_int_equal(balm_fcm_intermediates(f, s, NULL, NULL), BALM_ERR_STATE);
    /* T or B above the created maximum */
    assert_int_equal(balm_fcm_forward(f, 6, 2, x, mk, y), BALM_ERR_SIZE);
    assert_non_null(strstr(balm_last_error(), "max_T"));
    assert_int_equal(balm_fcm_forward(f, 5, 3, x, mk, y), BALM_ERR_SIZE);
    /* NULL arrays */
    assert_int_equal(balm_fcm_forward(f, 5, 2, NULL, mk, y), BALM_ERR_NULL);
    const float *xn[3] = {xl, NULL, xv};
    assert_int_equal(balm_fcm_forward(f, 5, 2, xn, mk, y), BALM_ERR_NULL);
    assert_non_null(strstr(balm_last_error(), "x[1]"));
    /* a bad mask in v: nothing written to any y */
    float mbad[10];
    memcpy(mbad, m1, sizeof mbad);
    mbad[7] = 0.5f;
    const float *mkb[3] = {m1, m1, mbad};
    for (size_t i = 0; i < 40; i++) yl[i] = -7.0f;
    assert_int_equal(balm_fcm_forward(f, 5, 2, x, mkb, y), BALM_ERR_MASK);
    for (size_t i = 0; i < 40; i++) assert_true(yl[i] == -7.0f);
    /* a failed forward leaves no forward to differentiate */
    assert_int_equal(balm_fcm_backward(f, dy, dx, 0), BALM_ERR_STATE);
    /* y partly overlapping x */
    float big[64];
    memcpy(big, xl, sizeof xl);
    const float *xo[3] = {big, xa, xv};
    float *yo[3] = {big + 1, ya, yv};
    assert_int_equal(balm_fcm_forward(f, 5, 2, xo, mk, yo), BALM_ERR_ARG);
    float *ycross[3] = {yl, (float *)xl, yv}; /* y[a] over x[l] */
    assert_int_equal(balm_fcm_forward(f, 5, 2, x, mk, ycross), BALM_ERR_ARG);
    assert_non_null(strstr(balm_last_error(), "y[1] overlaps x[0]"));
    float *ysame[3] = {yl, yl, yv}; /* two outputs in one buffer */
    assert_int_equal(balm_fcm_forward(f, 5, 2, x, mk, ysame), BALM_ERR_ARG);
    /* a good forward, then bad backward arguments */
    assert_int_equal(balm_fcm_forward(f, 5, 2, x, mk, y), BALM_OK);
    assert_int_equal(balm_fcm_backward(f, dy, dx, 2), BALM_ERR_ARG);
    float *dxn[3] = {dxl, dxa, NULL};
    assert_int_equal(balm_fcm_backward(f, dy, dxn, 0), BALM_ERR_NULL);
    float *dxa_alias[3] = {dxl, (float *)xa, dxv}; /* dx over the forward's x */
    assert_int_equal(balm_fcm_backward(f, dy, dxa_alias, 0), BALM_ERR_ARG);
    float *dx_dy[3] = {dxl, dxa, (float *)xl}; /* dx[v] over dy[l] */
    assert_int_equal(balm_fcm_backward(f, dy, dx_dy, 0), BALM_ERR_ARG);
    assert_non_null(strstr(balm_last_error(), "dx[2] overlaps dy[0]"));
    assert_int_equal(balm_fcm_backward(f, dy, dx, 0), BALM_OK);
    assert_int_equal(balm_fcm_param(f, BALM_FCM_NPARAM, NULL, NULL, NULL), BALM_ERR_ARG);
    /* an empty batch is valid */
    assert_int_equal(balm_fcm_forward(f, 0, 2, x, mk, y), BALM_OK);
    assert_int_equal(balm_fcm_backward(f, dy, dx, 1), BALM_OK);
    assert_int_equal(balm_fcm_set_threads(-1), BALM_ERR_ARG);
    balm_fcm_destroy(f);
}

/* Re-run this executable under every other supported ISA; 0 if all pass. */
static int run_other_isas(const char *self)
{
    if (getenv("BALM_FCM_TEST_CHILD") || getenv("BALM_ISA"))
        return 0;
    int fails = 0;
    balm_isa active = balm_isa_active();
    for (int i = 0; i < BALM_ISA_COUNT; i++) {
        if (i == (int)active || !balm_isa_supported((balm_isa)i))
            continue;
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "BALM_ISA=%s BALM_FCM_TEST_CHILD=1 '%s'",
                 balm_isa_name((balm_isa)i), self);
        fprintf(stderr, "--- re-running under BALM_ISA=%s\n", balm_isa_name((balm_isa)i));
        int rc = system(cmd);
        if (rc != -1 && WIFEXITED(rc) && (WEXITSTATUS(rc) == 126 || WEXITSTATUS(rc) == 127)) {
            fprintf(stderr, "--- cannot re-execute %s here: other ISAs not covered\n", self);
            continue;
        }
        if (rc != 0) {
            fprintf(stderr, "--- BALM_ISA=%s failed (%d)\n", balm_isa_name((balm_isa)i), rc);
            fails++;
        }
    }
    return fails;
}

int main(int argc, char **argv)
{
    (void)argc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fcm_tiny),
        cmocka_unit_test(test_fcm_odd),
        cmocka_unit_test(test_fcm_saturated),
        cmocka_unit_test(test_fcm_iemocap_dims),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_backends_agree_varying_batch),
        cmocka_unit_test(test_backends_agree_threads),
        cmocka_unit_test(test_linear_layer),
        cmocka_unit_test(test_bad_input),
    };
    fprintf(stderr, "FCM module tests under ISA %s\n", balm_isa_name(balm_isa_active()));
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    return r + run_other_isas(argv[0]);
}
