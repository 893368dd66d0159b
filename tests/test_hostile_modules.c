/* Hostile inputs to the FCM and GRM modules (include/balm/fcm.h, grm.h),
 * beyond test_fcm_module and test_grm_module: NULL objects for every entry
 * point, configurations whose sizes overflow, bad enum values, masks and
 * features with bad values in the last modality, outputs aliasing inputs of
 * another modality, NaN features. A refused call returns its specific status
 * with a message naming the function and argument, and modifies nothing: no
 * output array, no parameter, gradient or optimizer state.
 *
 * Each case prints "hostile: <case> -> <status>: <message>". */
#include <limits.h>
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
#include "balm/grm.h"

static void report(const char *what, balm_status st)
{
    printf("hostile: %s -> %s: %s\n", what, balm_status_str(st),
           st == BALM_OK ? "(accepted)" : balm_last_error());
}

#define EXPECT(what, call, status, needle)                                                  \
    do {                                                                                    \
        balm_status st_ = (call);                                                           \
        report(what, st_);                                                                  \
        assert_int_equal(st_, (status));                                                    \
        assert_non_null(strstr(balm_last_error(), (needle)));                               \
    } while (0)

/* ------------------------------------------------------------------ FCM */

enum { FT = 5, FB = 3, DL = 6, DA = 4, DV = 3, DG = 4 };
static const size_t fd[3] = {DL, DA, DV};

static balm_fcm *make_fcm(void)
{
    balm_fcm_config cfg = {{DL, DA, DV}, DG, FT, FB, BALM_LAYOUT_TBD, BALM_LINEAR_REF, 5};
    balm_fcm *f = NULL;
    assert_int_equal(balm_fcm_create(&cfg, &f), BALM_OK);
    return f;
}

/* Inputs, outputs and a snapshot of everything the object owns. */
typedef struct fcm_io {
    float x[3][FT * FB * DL], m[3][FT * FB], y[3][FT * FB * DL], dy[3][FT * FB * DL],
        dx[3][FT * FB * DL];
} fcm_io;

static void fill_io(fcm_io *io)
{
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < FT * FB * DL; i++) {
            io->x[k][i] = 0.05f * (float)((i * 7 + k) % 23) - 0.5f;
            io->dy[k][i] = 0.03f * (float)((i * 5 + k) % 17) - 0.2f;
            io->y[k][i] = -777.0f;
            io->dx[k][i] = -777.0f;
        }
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < FT * FB; i++)
            io->m[k][i] = (i + k) % 4 == 1 ? 0.0f : 1.0f;
}

static float *snapshot_fcm(balm_fcm *f)
{
    size_t total = 0, c;
    for (int i = 0; i < BALM_FCM_NPARAM; i++) {
        assert_int_equal(balm_fcm_param(f, (balm_fcm_param_id)i, NULL, NULL, &c), BALM_OK);
        total += 2 * c;
    }
    float *s = malloc(total * sizeof(float)), *p, *g, *at = s;
    assert_non_null(s);
    for (int i = 0; i < BALM_FCM_NPARAM; i++) {
        balm_fcm_param(f, (balm_fcm_param_id)i, &p, &g, &c);
        memcpy(at, p, c * sizeof(float));
        memcpy(at + c, g, c * sizeof(float));
        at += 2 * c;
    }
    return s;
}

static void same_fcm(balm_fcm *f, const float *snap)
{
    float *now = snapshot_fcm(f);
    size_t total = 0, c;
    for (int i = 0; i < BALM_FCM_NPARAM; i++) {
        balm_fcm_param(f, (balm_fcm_param_id)i, NULL, NULL, &c);
        total += 2 * c;
    }
    assert_memory_equal(now, snap, total * sizeof(float));
    free(now);
}

static void test_fcm_null_objects(void **state)
{
    (void)state;
    float *p;
    size_t c;
    double a, b;
    uint64_t n;
    const float *s[3];
    const float *const x[3] = {0};
    float *const y[3] = {0};
    balm_fcm_destroy(NULL); /* no-op */
    assert_int_equal(balm_fcm_backend(NULL), BALM_LINEAR_AUTO);
    EXPECT("fcm_param f = NULL", balm_fcm_param(NULL, BALM_FCM_WG, &p, &p, &c), BALM_ERR_NULL,
           "balm_fcm_param");
    EXPECT("fcm_forward f = NULL", balm_fcm_forward(NULL, 1, 1, x, x, y), BALM_ERR_NULL,
           "balm_fcm_forward");
    EXPECT("fcm_backward f = NULL", balm_fcm_backward(NULL, x, y, 0), BALM_ERR_NULL,
           "balm_fcm_backward");
    EXPECT("fcm_intermediates f = NULL", balm_fcm_intermediates(NULL, s, NULL, NULL),
           BALM_ERR_NULL, "balm_fcm_intermediates");
    EXPECT("fcm_timing f = NULL", balm_fcm_timing(NULL, &a, &b, &n, 0), BALM_ERR_NULL,
           "balm_fcm_timing");
    EXPECT("fcm_set_threads(-1)", balm_fcm_set_threads(-1), BALM_ERR_ARG, "balm_fcm_set_threads");
    EXPECT("fcm_set_threads(INT_MIN)", balm_fcm_set_threads(INT_MIN), BALM_ERR_ARG,
           "balm_fcm_set_threads");
}

static void test_fcm_bad_configs(void **state)
{
    (void)state;
    balm_fcm_config good = {{DL, DA, DV}, DG, FT, FB, BALM_LAYOUT_TBD, BALM_LINEAR_REF, 5};
    balm_fcm *f = (balm_fcm *)&good; /* must become NULL on failure */
    balm_fcm_config c;
    c = good;
    c.d[0] = SIZE_MAX;
    EXPECT("fcm_create d_l = SIZE_MAX (d sum overflows)", balm_fcm_create(&c, &f), BALM_ERR_SIZE,
           "overflow");
    assert_null(f);
    c = good;
    c.d[2] = SIZE_MAX - DL - DA + 1; /* d_l + d_a + d_v = 2^64 exactly: wraps to 0 */
    EXPECT("fcm_create d_l + d_a + d_v = 2^64", balm_fcm_create(&c, &f), BALM_ERR_SIZE,
           "overflow");
    c = good;
    c.d_global = (size_t)1 << 61;
    EXPECT("fcm_create d_global = 2^61 (weights overflow)", balm_fcm_create(&c, &f),
           BALM_ERR_SIZE, "overflow");
    c = good;
    c.max_T = SIZE_MAX / 8;
    c.max_B = 16;
    EXPECT("fcm_create max_T*max_B*dsum overflows", balm_fcm_create(&c, &f), BALM_ERR_SIZE,
           "overflow");
    c = good;
    c.d_global = (size_t)1 << 40; /* fits size_t, cannot be allocated */
    balm_status st = balm_fcm_create(&c, &f);
    report("fcm_create d_global = 2^40 (4 TiB of weights)", st);
    assert_true(st == BALM_ERR_NOMEM || st == BALM_ERR_SIZE);
    assert_null(f);
    c = good;
    c.d_global = 0;
    EXPECT("fcm_create d_global = 0", balm_fcm_create(&c, &f), BALM_ERR_SIZE, "d_global");
    c = good;
    c.max_T = 0;
    EXPECT("fcm_create max_T = 0", balm_fcm_create(&c, &f), BALM_ERR_SIZE, "max_T");
    c = good;
    c.layout = (balm_layout)-1;
    EXPECT("fcm_create layout = -1", balm_fcm_create(&c, &f), BALM_ERR_ARG, "layout");
    c = good;
    c.backend = (balm_linear_backend)-1;
    EXPECT("fcm_create backend = -1", balm_fcm_create(&c, &f), BALM_ERR_ARG, "backend");
}

static void test_fcm_forward_hostile(void **state)
{
    (void)state;
    balm_fcm *f = make_fcm();
    fcm_io *io = calloc(1, sizeof *io), *ref = calloc(1, sizeof *ref);
    assert_non_null(io);
    assert_non_null(ref);
    fill_io(io);
    const float *x[3] = {io->x[0], io->x[1], io->x[2]};
    const float *m[3] = {io->m[0], io->m[1], io->m[2]};
    float *y[3] = {io->y[0], io->y[1], io->y[2]};
    float *snap = snapshot_fcm(f);
    memcpy(ref, io, sizeof *io);

    /* A bad mask in the last modality, last entry: nothing written anywhere. */
    io->m[2][FT * FB - 1] = 0.999f;
    memcpy(ref, io, sizeof *io);
    EXPECT("fcm_forward mask[2] last entry 0.999", balm_fcm_forward(f, FT, FB, x, m, y),
           BALM_ERR_MASK, "[t=4][b=2]");
    assert_memory_equal(io, ref, sizeof *io);
    io->m[2][FT * FB - 1] = 1.0f;
    memcpy(ref, io, sizeof *io);
    /* The mask of modality 1 given as NULL. */
    const float *m_null[3] = {m[0], NULL, m[2]};
    EXPECT("fcm_forward mask[1] = NULL", balm_fcm_forward(f, FT, FB, x, m_null, y), BALM_ERR_NULL,
           "mask[1]");
    float *y_null[3] = {y[0], y[1], NULL};
    EXPECT("fcm_forward y[2] = NULL", balm_fcm_forward(f, FT, FB, x, m, y_null), BALM_ERR_NULL,
           "y[2]");
    /* y of one modality overlapping its own mask (and nothing else). */
    static float ym[FT * FB * DA + 10];
    memcpy(ym + FT * FB * DA - 10, m[1], FT * FB * sizeof(float));
    const float *m_in_y[3] = {m[0], ym + FT * FB * DA - 10, m[2]};
    float *y_on_mask[3] = {y[0], ym, y[2]};
    EXPECT("fcm_forward y[1] overlapping mask[1]",
           balm_fcm_forward(f, FT, FB, x, m_in_y, y_on_mask), BALM_ERR_ARG, "mask[1]");
    assert_memory_equal(io, ref, sizeof *io);
    /* T and B far above the maximum, and their product overflowing. */
    EXPECT("fcm_forward T = SIZE_MAX", balm_fcm_forward(f, SIZE_MAX, 1, x, m, y), BALM_ERR_SIZE,
           "max_T");
    EXPECT("fcm_forward B = max_B + 1", balm_fcm_forward(f, 1, FB + 1, x, m, y), BALM_ERR_SIZE,
           "max_B");
    same_fcm(f, snap);
    assert_memory_equal(io, ref, sizeof *io);

    /* NaN and Inf in x where the mask is 0 must not reach any output. */
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < FT * FB; i++)
            if (io->m[k][i] == 0.0f)
                for (size_t d = 0; d < fd[k]; d++)
                    io->x[k][i * fd[k] + d] = d % 2 ? NAN : -INFINITY;
    balm_status st = balm_fcm_forward(f, FT, FB, x, m, y);
    report("fcm_forward with NaN/-inf in x under every masked step", st);
    assert_int_equal(st, BALM_OK);
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < FT * FB * fd[k]; i++) {
            assert_true(isfinite(io->y[k][i]));
            if (io->m[k][i / fd[k]] == 0.0f)
                assert_true(io->y[k][i] == 0.0f);
        }
    /* NaN where the mask is 1 is data, not a caller error: it propagates
     * (documented behaviour is "never crash"; the status is what it is). */
    io->x[0][0] = NAN;
    io->m[0][0] = 1.0f;
    st = balm_fcm_forward(f, FT, FB, x, m, y);
    report("fcm_forward with NaN in x[0] at a present step", st);
    free(snap);
    free(io);
    free(ref);
    balm_fcm_destroy(f);
}

/* Outputs of one modality aliasing inputs of another. The header only allows
 * y[m] == x[m]; anything else must be refused before the first store (or,
 * if accepted, give the same numbers as without the alias). Regression test:
 * before e173a8e, y[0] over x[1] was accepted and silently corrupted y[1],
 * and y[0] over mask[1] wrote y[0], then failed with BALM_ERR_MASK. */
static void test_fcm_cross_modality_alias(void **state)
{
    (void)state;
    balm_fcm *f = make_fcm();
    fcm_io *io = calloc(1, sizeof *io), *ref = calloc(1, sizeof *ref);
    assert_non_null(io);
    assert_non_null(ref);
    fill_io(io);
    /* x[1] and mask[1] also live in a scratch buffer big enough for y[0]. */
    static float xa[FT * FB * DL], ma[FT * FB * DL];
    memcpy(xa, io->x[1], sizeof xa);
    memcpy(ma, io->m[1], FT * FB * sizeof(float));
    const float *x[3] = {io->x[0], io->x[1], io->x[2]};
    const float *m[3] = {io->m[0], io->m[1], io->m[2]};
    float *y[3] = {io->y[0], io->y[1], io->y[2]};
    assert_int_equal(balm_fcm_forward(f, FT, FB, x, m, y), BALM_OK);
    memcpy(ref, io, sizeof *io); /* ref->y: the right answer */

    const float *xal[3] = {io->x[0], xa, io->x[2]};
    float *yal[3] = {xa, io->y[1], io->y[2]}; /* y[0] written over x[1] */
    for (int k = 1; k < 3; k++)
        memset(io->y[k], 0, sizeof io->y[k]);
    balm_status st = balm_fcm_forward(f, FT, FB, xal, m, yal);
    report("fcm_forward y[0] == x[1] (another modality's input)", st);
    int wrong = st == BALM_OK && memcmp(io->y[1], ref->y[1], sizeof io->y[1]) != 0;
    if (wrong)
        printf("hostile: ... accepted, and y[1] differs from the unaliased result\n");

    const float *mal[3] = {io->m[0], ma, io->m[2]};
    static float ysave[FT * FB * DL];
    memcpy(ysave, ma, sizeof ysave);
    float *ymal[3] = {ma, io->y[1], io->y[2]}; /* y[0] written over mask[1] */
    st = balm_fcm_forward(f, FT, FB, x, mal, ymal);
    report("fcm_forward y[0] overlapping mask[1]", st);
    int written = st != BALM_OK && memcmp(ysave, ma, sizeof ysave) != 0;
    if (written)
        printf("hostile: ... refused after writing y[0] over mask[1]\n");
    free(io);
    free(ref);
    balm_fcm_destroy(f);
    if (wrong || written)
        fail_msg("cross-modality aliasing not refused (%s%s)",
                 wrong ? "y[0] == x[1] corrupts y[1]" : "",
                 written ? "; y[0] over mask[1] written before BALM_ERR_MASK" : "");
}

/* Empty batches are valid and write nothing. */
static void test_fcm_empty_batch(void **state)
{
    (void)state;
    balm_fcm *f = make_fcm();
    const float *const nx[3] = {NULL, NULL, NULL};
    float *const ny[3] = {NULL, NULL, NULL};
    balm_status st = balm_fcm_forward(f, 0, FB, nx, nx, ny);
    report("fcm_forward T = 0 with NULL arrays", st);
    assert_int_equal(st, BALM_OK);
    st = balm_fcm_backward(f, nx, ny, 0);
    report("fcm_backward after T = 0, NULL arrays", st);
    assert_int_equal(st, BALM_OK);
    balm_fcm_destroy(f);
}

static void test_fcm_backward_hostile(void **state)
{
    (void)state;
    balm_fcm *f = make_fcm();
    fcm_io *io = calloc(1, sizeof *io), *ref = calloc(1, sizeof *ref);
    assert_non_null(io);
    assert_non_null(ref);
    fill_io(io);
    const float *x[3] = {io->x[0], io->x[1], io->x[2]};
    const float *m[3] = {io->m[0], io->m[1], io->m[2]};
    const float *dy[3] = {io->dy[0], io->dy[1], io->dy[2]};
    float *y[3] = {io->y[0], io->y[1], io->y[2]};
    float *dx[3] = {io->dx[0], io->dx[1], io->dx[2]};
    assert_int_equal(balm_fcm_forward(f, FT, FB, x, m, y), BALM_OK);
    float *snap = snapshot_fcm(f);
    memcpy(ref, io, sizeof *io);
    EXPECT("fcm_backward accumulate = 7", balm_fcm_backward(f, dy, dx, 7), BALM_ERR_ARG,
           "accumulate");
    float *dx_on_dy[3] = {dx[0], io->dy[1] + 2, dx[2]};
    EXPECT("fcm_backward dx[1] overlapping dy[1]", balm_fcm_backward(f, dy, dx_on_dy, 0),
           BALM_ERR_ARG, "dx[1]");
    float *dx_on_x[3] = {dx[0], dx[1], io->x[2]};
    EXPECT("fcm_backward dx[2] = the forward's x[2]", balm_fcm_backward(f, dy, dx_on_x, 0),
           BALM_ERR_ARG, "dx[2]");
    const float *dy_null[3] = {dy[0], NULL, dy[2]};
    EXPECT("fcm_backward dy[1] = NULL", balm_fcm_backward(f, dy_null, dx, 0), BALM_ERR_NULL,
           "dy[1]");
    assert_memory_equal(io, ref, sizeof *io);
    same_fcm(f, snap);
    /* A good backward still works after all the refusals. */
    assert_int_equal(balm_fcm_backward(f, dy, dx, 0), BALM_OK);
    free(snap);
    free(io);
    free(ref);
    balm_fcm_destroy(f);
}

/* ------------------------------------------------------------------ GRM */

enum { GC = 3, GH = 4, GN = 4 };
static const size_t genc[3] = {5, 3, 2};

static balm_grm *make_grm(void)
{
    balm_grm_config cfg = balm_grm_config_default();
    cfg.C = GC;
    cfg.H = GH;
    cfg.enc[0] = genc[0];
    cfg.enc[1] = genc[1];
    cfg.enc[2] = genc[2];
    cfg.max_N = GN;
    cfg.backend = BALM_LINEAR_REF;
    balm_grm *g = NULL;
    assert_int_equal(balm_grm_create(&cfg, &g), BALM_OK);
    return g;
}

typedef struct grm_io {
    float feat[3][GN * 5], fused_out[GN * GC], fused_w[GC * GH], dfw[GC * GH];
    int32_t labels[GN];
    float grad_l[7], grad_v[3];
} grm_io;

static void fill_grm(grm_io *io, balm_grm_input *in)
{
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < GN * 5; i++)
            io->feat[k][i] = 0.1f * (float)((i * 3 + k) % 11);
    for (int i = 0; i < GN * GC; i++)
        io->fused_out[i] = 0.2f * (float)(i % 5) - 0.4f;
    for (int i = 0; i < GC * GH; i++) {
        io->fused_w[i] = 0.1f * (float)(i % 7) - 0.3f;
        io->dfw[i] = 99.0f;
    }
    for (int i = 0; i < GN; i++)
        io->labels[i] = i % GC;
    for (int i = 0; i < 7; i++)
        io->grad_l[i] = 0.01f * (float)i;
    for (int i = 0; i < 3; i++)
        io->grad_v[i] = -0.02f * (float)i;
    memset(in, 0, sizeof *in);
    in->N = GN;
    for (int k = 0; k < 3; k++)
        in->feat[k] = io->feat[k];
    in->fused_out = io->fused_out;
    in->labels = io->labels;
    in->fused_w = io->fused_w;
    in->epoch = 1;
}

/* Everything a step may change: heads, their Adam moments, the scalar state. */
static size_t grm_snapshot(balm_grm *g, float *buf, size_t cap, balm_grm_state *st)
{
    size_t at = 0;
    for (int m = 0; m < 3; m++)
        for (int id = 0; id < BALM_GRM_NPARAM; id++) {
            float *p, *am, *av;
            size_t c;
            assert_int_equal(
                balm_grm_param(g, m, (balm_grm_param_id)id, &p, NULL, &am, &av, &c), BALM_OK);
            assert_true(at + 3 * c <= cap);
            memcpy(buf + at, p, c * sizeof(float));
            memcpy(buf + at + c, am, c * sizeof(float));
            memcpy(buf + at + 2 * c, av, c * sizeof(float));
            at += 3 * c;
        }
    assert_int_equal(balm_grm_get_state(g, st), BALM_OK);
    return at;
}

static void test_grm_null_objects(void **state)
{
    (void)state;
    balm_grm_state s;
    balm_grm_input in;
    float dfw[4];
    memset(&in, 0, sizeof in);
    balm_grm_destroy(NULL);
    balm_grm_clear_registered(NULL);
    assert_true(balm_grm_tau(NULL) == 0.0f);
    EXPECT("grm_register g = NULL", balm_grm_register(NULL, 0, dfw, 4, "x", NULL), BALM_ERR_NULL,
           "balm_grm_register");
    EXPECT("grm_step g = NULL", balm_grm_step(NULL, &in, dfw, NULL), BALM_ERR_NULL,
           "balm_grm_step");
    EXPECT("grm_param g = NULL", balm_grm_param(NULL, 0, BALM_GRM_W1, NULL, NULL, NULL, NULL, NULL),
           BALM_ERR_NULL, "balm_grm_param");
    EXPECT("grm_get_state g = NULL", balm_grm_get_state(NULL, &s), BALM_ERR_NULL,
           "balm_grm_get_state");
    EXPECT("grm_set_state g = NULL", balm_grm_set_state(NULL, &s), BALM_ERR_NULL,
           "balm_grm_set_state");
    balm_grm *g = make_grm();
    EXPECT("grm_get_state s = NULL", balm_grm_get_state(g, NULL), BALM_ERR_NULL,
           "balm_grm_get_state");
    EXPECT("grm_set_state s = NULL", balm_grm_set_state(g, NULL), BALM_ERR_NULL,
           "balm_grm_set_state");
    EXPECT("grm_step in = NULL", balm_grm_step(g, NULL, dfw, NULL), BALM_ERR_NULL, "in");
    balm_grm *g2 = g;
    EXPECT("grm_create cfg = NULL", balm_grm_create(NULL, &g2), BALM_ERR_NULL, "balm_grm_create");
    assert_null(g2); /* *out is cleared on failure */
    balm_grm_destroy(g);
}

static void test_grm_bad_configs(void **state)
{
    (void)state;
    balm_grm_config good = balm_grm_config_default(), c;
    good.C = GC;
    good.H = GH;
    good.enc[0] = 5;
    good.enc[1] = 3;
    good.enc[2] = 2;
    good.max_N = GN;
    balm_grm *g = (balm_grm *)&good;
    c = good;
    c.C = (size_t)1 << 33;
    c.H = (size_t)1 << 33;
    EXPECT("grm_create C*H = 2^66", balm_grm_create(&c, &g), BALM_ERR_SIZE, "balm_grm_create");
    assert_null(g);
    c = good;
    c.enc[1] = SIZE_MAX;
    EXPECT("grm_create enc[1] = SIZE_MAX", balm_grm_create(&c, &g), BALM_ERR_SIZE,
           "balm_grm_create");
    c = good;
    c.max_N = SIZE_MAX / 2;
    EXPECT("grm_create max_N = SIZE_MAX/2", balm_grm_create(&c, &g), BALM_ERR_SIZE,
           "balm_grm_create");
    c = good;
    c.lr = -1e-3f;
    EXPECT("grm_create lr < 0", balm_grm_create(&c, &g), BALM_ERR_ARG, "balm_grm_create");
    c = good;
    c.beta2 = 1.0f;
    EXPECT("grm_create beta2 = 1", balm_grm_create(&c, &g), BALM_ERR_ARG, "balm_grm_create");
    c = good;
    c.eps = NAN;
    balm_status st = balm_grm_create(&c, &g);
    report("grm_create eps = NaN", st);
    assert_true(st == BALM_ERR_ARG || st == BALM_ERR_NONFINITE);
    c = good;
    c.tau = INFINITY;
    EXPECT("grm_create tau = inf", balm_grm_create(&c, &g), BALM_ERR_NONFINITE,
           "balm_grm_create");
    c = good;
    c.noise = 2;
    EXPECT("grm_create noise = 2", balm_grm_create(&c, &g), BALM_ERR_ARG, "noise");
    c = good;
    c.backend = (balm_linear_backend)42;
    EXPECT("grm_create backend = 42", balm_grm_create(&c, &g), BALM_ERR_ARG, "backend");
}

static void test_grm_step_hostile(void **state)
{
    (void)state;
    balm_grm *g = make_grm();
    grm_io *io = calloc(1, sizeof *io), *ref = calloc(1, sizeof *ref);
    assert_non_null(io);
    assert_non_null(ref);
    balm_grm_input in;
    fill_grm(io, &in);
    assert_int_equal(balm_grm_register(g, BALM_L, io->grad_l, 7, "enc_l.w", NULL), BALM_OK);
    assert_int_equal(balm_grm_register(g, BALM_V, io->grad_v, 3, "enc_v.b", NULL), BALM_OK);
    /* A name longer than the 47 characters kept: copied truncated. */
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    size_t idx = 99;
    balm_status st = balm_grm_register(g, BALM_A, io->grad_l, 0, longname, &idx);
    report("grm_register a 299-character name, n = 0", st);
    assert_int_equal(st, BALM_OK);
    assert_int_equal(idx, 2);
    EXPECT("grm_register modality = -1", balm_grm_register(g, -1, io->grad_l, 7, "x", NULL),
           BALM_ERR_ARG, "modality");
    EXPECT("grm_register grad = NULL, n = 3", balm_grm_register(g, 0, NULL, 3, "x", NULL),
           BALM_ERR_NULL, "grad");

    static float snap0[4096], snap1[4096];
    balm_grm_state s0, s1;
    size_t ns = grm_snapshot(g, snap0, 4096, &s0);
    memcpy(ref, io, sizeof *io);
    balm_grm_input bad;
#define REFUSED(what, status, needle)                                                       \
    do {                                                                                    \
        EXPECT(what, balm_grm_step(g, &bad, io->dfw, NULL), status, needle);                \
        assert_memory_equal(io, ref, sizeof *io);                                           \
        grm_snapshot(g, snap1, 4096, &s1);                                                  \
        assert_memory_equal(snap0, snap1, ns * sizeof(float));                              \
        assert_memory_equal(&s0, &s1, sizeof s0);                                           \
    } while (0)
    bad = in;
    bad.N = SIZE_MAX;
    REFUSED("grm_step N = SIZE_MAX", BALM_ERR_SIZE, "N=");
    bad = in;
    bad.labels = NULL;
    REFUSED("grm_step labels = NULL (classification)", BALM_ERR_NULL, "labels");
    bad = in;
    int32_t neg[GN] = {0, 1, -1, 2};
    bad.labels = neg;
    REFUSED("grm_step label -1 at [2]", BALM_ERR_ARG, "labels[2]");
    int32_t big[GN] = {0, 1, 2, INT32_MAX};
    bad.labels = big;
    REFUSED("grm_step label INT32_MAX at [3]", BALM_ERR_ARG, "labels[3]");
    bad = in;
    bad.fused_w = NULL;
    REFUSED("grm_step fused_w = NULL", BALM_ERR_NULL, "fused_w");
    /* fused_w with an Inf in its last element. */
    io->fused_w[GC * GH - 1] = INFINITY;
    memcpy(ref, io, sizeof *io);
    bad = in;
    REFUSED("grm_step fused_w[11] = inf", BALM_ERR_NONFINITE, "fused_w[11]");
    io->fused_w[GC * GH - 1] = 0.1f;
    memcpy(ref, io, sizeof *io);
    /* NaN in a registered gradient's last element, inside the window. */
    io->grad_v[2] = NAN;
    memcpy(ref, io, sizeof *io);
    bad = in;
    REFUSED("grm_step NaN in registered grad enc_v.b[2]", BALM_ERR_NONFINITE, "enc_v.b");
    io->grad_v[2] = 0.0f;
    memcpy(ref, io, sizeof *io);
    /* dfused_w overlapping the fused output. */
    bad = in;
    st = balm_grm_step(g, &bad, io->fused_out, NULL);
    report("grm_step dfused_w overlapping in->fused_out", st);
    /* A NaN encoder feature: the heads would learn NaN. Regression test: it
     * was accepted and the heads went NaN until 83acbd5. */
    io->feat[1][GN * genc[1] - 1] = NAN;
    memcpy(ref, io, sizeof *io);
    bad = in;
    st = balm_grm_step(g, &bad, io->dfw, NULL);
    report("grm_step NaN in feat[1] (last element)", st);
    if (st == BALM_OK) {
        /* Accepted: then the heads must at least not have turned NaN silently. */
        float *w1;
        size_t c;
        balm_grm_param(g, BALM_A, BALM_GRM_W1, &w1, NULL, NULL, NULL, &c);
        int nan_seen = 0;
        for (size_t i = 0; i < c; i++)
            nan_seen |= isnan(w1[i]);
        printf("hostile: ... the audio head's W1 %s NaN after that step\n",
               nan_seen ? "contains" : "has no");
        fail_msg("balm_grm_step accepted a NaN encoder feature (in->feat[1][5]); expected "
                 "BALM_ERR_NONFINITE and nothing modified");
    }
    assert_memory_equal(io, ref, sizeof *io);
#undef REFUSED
    free(io);
    free(ref);
    balm_grm_destroy(g);
}

/* Two registered tensors sharing memory would be rescaled (and noised)
 * twice: refused (since 112aea5). */
static void test_grm_register_overlap(void **state)
{
    (void)state;
    balm_grm *g = make_grm();
    float grad[16] = {0};
    assert_int_equal(balm_grm_register(g, BALM_L, grad, 8, "a", NULL), BALM_OK);
    EXPECT("grm_register the same tensor twice", balm_grm_register(g, BALM_L, grad, 8, "b", NULL),
           BALM_ERR_ARG, "balm_grm_register");
    EXPECT("grm_register a tensor overlapping by one element (other modality)",
           balm_grm_register(g, BALM_V, grad + 7, 8, "c", NULL), BALM_ERR_ARG,
           "balm_grm_register");
    balm_status st = balm_grm_register(g, BALM_V, grad + 8, 8, "d", NULL);
    report("grm_register the adjacent, disjoint tensor", st);
    assert_int_equal(st, BALM_OK);
    balm_grm_destroy(g);
}

static void test_grm_state_and_params(void **state)
{
    (void)state;
    balm_grm *g = make_grm();
    balm_grm_state s0, s;
    assert_int_equal(balm_grm_get_state(g, &s0), BALM_OK);
    s = s0;
    s.prev_kl[2] = NAN;
    EXPECT("grm_set_state prev_kl[2] = NaN", balm_grm_set_state(g, &s), BALM_ERR_NONFINITE,
           "prev_kl");
    s = s0;
    s.have_prev = -1;
    EXPECT("grm_set_state have_prev = -1", balm_grm_set_state(g, &s), BALM_ERR_ARG, "have_prev");
    balm_grm_get_state(g, &s);
    assert_memory_equal(&s, &s0, sizeof s);
    float *p;
    EXPECT("grm_param modality = 3", balm_grm_param(g, 3, BALM_GRM_W1, &p, NULL, NULL, NULL, NULL),
           BALM_ERR_ARG, "modality");
    EXPECT("grm_param modality = -1",
           balm_grm_param(g, -1, BALM_GRM_W1, &p, NULL, NULL, NULL, NULL), BALM_ERR_ARG,
           "modality");
    EXPECT("grm_param id = -1",
           balm_grm_param(g, 0, (balm_grm_param_id)-1, &p, NULL, NULL, NULL, NULL), BALM_ERR_ARG,
           "balm_grm_param");
    balm_grm_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fcm_null_objects),
        cmocka_unit_test(test_fcm_bad_configs),
        cmocka_unit_test(test_fcm_forward_hostile),
        cmocka_unit_test(test_fcm_empty_batch),
        cmocka_unit_test(test_fcm_cross_modality_alias),
        cmocka_unit_test(test_fcm_backward_hostile),
        cmocka_unit_test(test_grm_null_objects),
        cmocka_unit_test(test_grm_bad_configs),
        cmocka_unit_test(test_grm_step_hostile),
        cmocka_unit_test(test_grm_register_overlap),
        cmocka_unit_test(test_grm_state_and_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
