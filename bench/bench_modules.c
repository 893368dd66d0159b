/* Whole modules: FCM forward and backward (include/balm/fcm.h) and one GRM
 * step (include/balm/grm.h), for each linear-layer backend (impl "ref" =
 * plain C, "onednn"); the kernels are the dispatched (active) ISA, named in
 * the label. Names: fcm/{fwd,bwd}/<backend>/<dataset>, grm/step/<backend>/<dataset>. */
#include <stdlib.h>
#include <string.h>
#include "bench_data.h"

#ifdef BALM_BENCH_HAVE_FCM
#include "balm/fcm.h"
#endif
#ifdef BALM_BENCH_HAVE_GRM
#include "balm/grm.h"
#endif

typedef struct dataset {
    const char *name;
    size_t T, B, d[BALM_NMOD], d_global;
    size_t C; /* GRM classes (1: regression, MOSEI's sentiment) */
} dataset;

/* Upstream's shapes; H = 900 is the fused classifier's input width, so
 * C x H = 5400 as in the cos/.../n5400 benchmarks. */
static const dataset datasets[] = {
    {"iemocap", 110, 16, {1024, 1582, 342}, 737, 6},
    {"mosei", 50, 32, {1024, 512, 1024}, 640, 1},
};
#define GRM_H 900

static const char *backend_name(int be) { return be == 0 ? "ref" : "onednn"; }

static char label_buf[128];

#ifdef BALM_BENCH_HAVE_FCM
typedef struct fcm_state {
    balm_fcm *f;
    size_t T, B;
    float *x[BALM_NMOD], *m[BALM_NMOD], *y[BALM_NMOD], *dy[BALM_NMOD], *dx[BALM_NMOD];
} fcm_state;

static void fcm_teardown(void *p)
{
    fcm_state *s = p;
    if (!s) return;
    balm_fcm_destroy(s->f);
    for (int k = 0; k < BALM_NMOD; k++) {
        balm_bench_free(s->x[k]);
        balm_bench_free(s->m[k]);
        balm_bench_free(s->y[k]);
        balm_bench_free(s->dy[k]);
        balm_bench_free(s->dx[k]);
    }
    free(s);
}

/* The module owns its primitives, so each backend has its own data. */
static void *fcm_setup(const balm_bench_def *d, char *err, size_t errlen)
{
    const dataset *ds = &datasets[d->p[0]];
    fcm_state *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->T = ds->T;
    s->B = ds->B;
    for (int k = 0; k < BALM_NMOD; k++) {
        size_t n = ds->T * ds->B * ds->d[k];
        s->x[k] = balm_bench_alloc(n);
        s->m[k] = balm_bench_alloc(ds->T * ds->B);
        s->y[k] = balm_bench_alloc(n);
        s->dy[k] = balm_bench_alloc(n);
        s->dx[k] = balm_bench_alloc(n);
        if (!s->x[k] || !s->m[k] || !s->y[k] || !s->dy[k] || !s->dx[k]) goto nomem;
        balm_bench_fill(s->x[k], n, -1.0f, 1.0f, 50 + (uint64_t)k);
        balm_bench_fill(s->dy[k], n, -1.0f, 1.0f, 60 + (uint64_t)k);
        balm_bench_mask(s->m[k], ds->T, ds->B, ds->B, 1, BALM_BENCH_MASK_SEED + (uint64_t)k);
        memset(s->y[k], 0, n * sizeof(float));
        memset(s->dx[k], 0, n * sizeof(float));
    }
    balm_fcm_config cfg;
    memset(&cfg, 0, sizeof cfg);
    for (int k = 0; k < BALM_NMOD; k++)
        cfg.d[k] = ds->d[k];
    cfg.d_global = ds->d_global;
    cfg.max_T = ds->T;
    cfg.max_B = ds->B;
    cfg.layout = BALM_LAYOUT_TBD;
    cfg.backend = d->flag == 0 ? BALM_LINEAR_REF : BALM_LINEAR_ONEDNN;
    cfg.seed = 7;
    if (balm_fcm_create(&cfg, &s->f) != BALM_OK) {
        balm_bench_fmt(err, errlen, "balm_fcm_create: %s", balm_last_error());
        fcm_teardown(s);
        return NULL;
    }
    balm_fcm_set_threads(1);
    /* One forward so that backward has something to differentiate. */
    if (balm_fcm_forward(s->f, s->T, s->B, (const float *const *)s->x,
                         (const float *const *)s->m, s->y) != BALM_OK) {
        balm_bench_fmt(err, errlen, "balm_fcm_forward: %s", balm_last_error());
        fcm_teardown(s);
        return NULL;
    }
    return s;
nomem:
    fcm_teardown(s);
    balm_bench_fmt(err, errlen, "out of memory for %s", d->name);
    return NULL;
}

static void run_fcm_fwd(const balm_bench_def *d, void *p, uint64_t it)
{
    fcm_state *s = p;
    (void)d, (void)it;
    balm_fcm_forward(s->f, s->T, s->B, (const float *const *)s->x, (const float *const *)s->m,
                     s->y);
}

static void run_fcm_bwd(const balm_bench_def *d, void *p, uint64_t it)
{
    fcm_state *s = p;
    (void)d, (void)it;
    balm_fcm_backward(s->f, (const float *const *)s->dy, s->dx, 0);
}

static const char *fcm_label(void *p)
{
    (void)p;
    balm_bench_fmt(label_buf, sizeof label_buf, "kernels:%s", balm_isa_name(balm_isa_active()));
    return label_buf;
}
#endif

#ifdef BALM_BENCH_HAVE_GRM
typedef struct grm_state {
    balm_grm *g;
    balm_grm_input in;
    float *feat[BALM_NMOD], *fused_out, *targets, *fused_w, *dfused;
    int32_t *labels;
    float *encw[BALM_NMOD], *encb[BALM_NMOD]; /* registered encoder gradients */
    float *encw0[BALM_NMOD], *encb0[BALM_NMOD]; /* their values before a step */
    balm_grm_state st0;                       /* the state before a step */
} grm_state;

static void grm_teardown(void *p)
{
    grm_state *s = p;
    if (!s) return;
    balm_grm_destroy(s->g);
    for (int k = 0; k < BALM_NMOD; k++) {
        balm_bench_free(s->feat[k]);
        balm_bench_free(s->encw[k]);
        balm_bench_free(s->encb[k]);
        balm_bench_free(s->encw0[k]);
        balm_bench_free(s->encb0[k]);
    }
    balm_bench_free(s->fused_out);
    balm_bench_free(s->targets);
    balm_bench_free(s->fused_w);
    balm_bench_free(s->dfused);
    free(s->labels);
    free(s);
}

static void *grm_setup(const balm_bench_def *d, char *err, size_t errlen)
{
    const dataset *ds = &datasets[d->p[0]];
    size_t N = ds->B, C = ds->C;
    grm_state *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    for (int k = 0; k < BALM_NMOD; k++) {
        s->feat[k] = balm_bench_alloc(N * ds->d[k]);
        s->encw[k] = balm_bench_alloc(ds->d[k] * GRM_H);
        s->encb[k] = balm_bench_alloc(GRM_H);
        s->encw0[k] = balm_bench_alloc(ds->d[k] * GRM_H);
        s->encb0[k] = balm_bench_alloc(GRM_H);
        if (!s->feat[k] || !s->encw[k] || !s->encb[k] || !s->encw0[k] || !s->encb0[k])
            goto nomem;
        balm_bench_fill(s->feat[k], N * ds->d[k], -1.0f, 1.0f, 70 + (uint64_t)k);
        balm_bench_fill(s->encw0[k], ds->d[k] * GRM_H, -1e-3f, 1e-3f, 73 + (uint64_t)k);
        balm_bench_fill(s->encb0[k], GRM_H, -1e-3f, 1e-3f, 76 + (uint64_t)k);
    }
    s->fused_out = balm_bench_alloc(N * C);
    s->targets = balm_bench_alloc(N);
    s->fused_w = balm_bench_alloc(C * GRM_H);
    s->dfused = balm_bench_alloc(C * GRM_H);
    s->labels = calloc(N, sizeof *s->labels);
    if (!s->fused_out || !s->targets || !s->fused_w || !s->dfused || !s->labels) goto nomem;
    balm_bench_fill(s->fused_out, N * C, -2.0f, 2.0f, 80);
    balm_bench_fill(s->targets, N, -3.0f, 3.0f, 81);
    balm_bench_fill(s->fused_w, C * GRM_H, -0.05f, 0.05f, 82);
    for (size_t i = 0; i < N; i++)
        s->labels[i] = (int32_t)(i % C);

    balm_grm_config cfg = balm_grm_config_default();
    cfg.C = C;
    cfg.H = GRM_H;
    for (int k = 0; k < BALM_NMOD; k++)
        cfg.enc[k] = ds->d[k];
    cfg.max_N = N;
    cfg.backend = d->flag == 0 ? BALM_LINEAR_REF : BALM_LINEAR_ONEDNN;
    if (balm_grm_create(&cfg, &s->g) != BALM_OK) {
        balm_bench_fmt(err, errlen, "balm_grm_create: %s", balm_last_error());
        grm_teardown(s);
        return NULL;
    }
    for (int k = 0; k < BALM_NMOD; k++) {
        if (balm_grm_register(s->g, k, s->encw[k], ds->d[k] * GRM_H, "enc.weight", NULL) ||
            balm_grm_register(s->g, k, s->encb[k], GRM_H, "enc.bias", NULL)) {
            balm_bench_fmt(err, errlen, "balm_grm_register: %s", balm_last_error());
            grm_teardown(s);
            return NULL;
        }
    }
    s->in.N = N;
    for (int k = 0; k < BALM_NMOD; k++)
        s->in.feat[k] = s->feat[k];
    s->in.fused_out = s->fused_out;
    s->in.labels = C > 1 ? s->labels : NULL;
    s->in.targets = C > 1 ? NULL : s->targets;
    s->in.fused_w = s->fused_w;
    s->in.epoch = 1;
    /* One step first, so that the timed steps are steady-state ones (with a
     * previous KL); every timed step starts from the same gradients and state. */
    for (int k = 0; k < BALM_NMOD; k++) {
        memcpy(s->encw[k], s->encw0[k], ds->d[k] * GRM_H * sizeof(float));
        memcpy(s->encb[k], s->encb0[k], GRM_H * sizeof(float));
    }
    if (balm_grm_step(s->g, &s->in, s->dfused, NULL) != BALM_OK ||
        balm_grm_get_state(s->g, &s->st0) != BALM_OK) {
        balm_bench_fmt(err, errlen, "balm_grm_step: %s", balm_last_error());
        grm_teardown(s);
        return NULL;
    }
    return s;
nomem:
    grm_teardown(s);
    balm_bench_fmt(err, errlen, "out of memory for %s", d->name);
    return NULL;
}

/* A step rescales the registered gradients in place: restore them (and the
 * KL history) untimed, so that repeated steps neither overflow nor decay
 * into denormals. */
static void reset_grm(const balm_bench_def *d, void *p)
{
    grm_state *s = p;
    const dataset *ds = &datasets[d->p[0]];
    for (int k = 0; k < BALM_NMOD; k++) {
        memcpy(s->encw[k], s->encw0[k], ds->d[k] * GRM_H * sizeof(float));
        memcpy(s->encb[k], s->encb0[k], GRM_H * sizeof(float));
    }
    balm_grm_set_state(s->g, &s->st0);
}

static void run_grm_step(const balm_bench_def *d, void *p, uint64_t it)
{
    grm_state *s = p;
    (void)d, (void)it;
    balm_grm_step(s->g, &s->in, s->dfused, NULL);
}

static const char *grm_label(void *p)
{
    (void)p;
    balm_bench_fmt(label_buf, sizeof label_buf, "kernels:%s", balm_isa_name(balm_isa_active()));
    return label_buf;
}
#endif

void balm_bench_register_modules(void)
{
    for (size_t i = 0; i < sizeof datasets / sizeof datasets[0]; i++) {
        const dataset *ds = &datasets[i];
        double x = 0, w;
        for (int k = 0; k < BALM_NMOD; k++)
            x += (double)ds->T * ds->B * ds->d[k] * 4;
        /* weights of the bottleneck: Wg and the three W_m, each dg x sum d */
        w = 2.0 * (double)ds->d_global * (ds->d[0] + ds->d[1] + ds->d[2]) * 4;
        for (int be = 0; be < 2; be++) {
            for (int op = 0; op < 2; op++) {
                balm_bench_def d;
                memset(&d, 0, sizeof d);
                balm_bench_fmt(d.name, sizeof d.name, "fcm/%s/%s/%s", op ? "bwd" : "fwd",
                               backend_name(be), ds->name);
                balm_bench_fmt(d.data_key, sizeof d.data_key, "fcm/%s/%s", backend_name(be),
                               ds->name);
                /* fwd: x read, y written, weights read; bwd: x and dy read,
                 * dx written, weights read and their gradients written. */
                d.bytes = op ? 3 * x + 2 * w : 2 * x + w;
                d.items = x / 4;
                d.p[0] = i;
                d.flag = be;
#ifdef BALM_BENCH_HAVE_FCM
                d.setup = fcm_setup;
                d.teardown = fcm_teardown;
                d.run = op ? run_fcm_bwd : run_fcm_fwd;
                d.label = fcm_label;
#else
                balm_bench_fmt(d.skip, sizeof d.skip, "FCM module not in this build");
#endif
                balm_bench_add(&d);
            }
            balm_bench_def d;
            memset(&d, 0, sizeof d);
            balm_bench_fmt(d.name, sizeof d.name, "grm/step/%s/%s", backend_name(be), ds->name);
            balm_bench_fmt(d.data_key, sizeof d.data_key, "grm/%s/%s", backend_name(be),
                           ds->name);
            /* the registered encoder gradients dominate: read+write twice */
            double g = 0;
            for (int k = 0; k < BALM_NMOD; k++)
                g += (double)ds->d[k] * GRM_H * 4;
            d.bytes = 4 * g;
            d.items = g / 4;
            d.p[0] = i;
            d.flag = be;
#ifdef BALM_BENCH_HAVE_GRM
            d.setup = grm_setup;
            d.teardown = grm_teardown;
            d.run = run_grm_step;
            d.reset = reset_grm;
            d.label = grm_label;
#else
            balm_bench_fmt(d.skip, sizeof d.skip, "GRM module not in this build");
#endif
            balm_bench_add(&d);
        }
    }
}
