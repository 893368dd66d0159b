/* FCM module: pooling and gating through the public kernels of balm.h, the
 * bottleneck (Wg, Wl, Wa, Wv) through a balm_linear backend. Owns parameters,
 * gradients and all scratch, sized at create time for (max_T, max_B). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"
#include "linear.h"
#include "balm/fcm.h"

struct balm_fcm {
    balm_fcm_config cfg;
    size_t dsum;                          /* d_l + d_a + d_v */
    float *param[BALM_FCM_NPARAM], *grad[BALM_FCM_NPARAM];
    size_t count[BALM_FCM_NPARAM];
    balm_linear *lin_g, *lin_m[BALM_NMOD];
    float *s[BALM_NMOD], *c, *z, *e[BALM_NMOD];   /* forward intermediates */
    float *ds[BALM_NMOD], *dc, *dz, *de[BALM_NMOD]; /* backward scratch */
    float *xcopy[BALM_NMOD];              /* x saved when y aliases x (lazy) */
    /* the last forward */
    int have_fwd;
    size_t T, B;
    const float *x[BALM_NMOD], *mask[BALM_NMOD];
    /* timing */
    double t_linear, t_total;
    uint64_t calls;
};

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static balm_seq fcm_seq(const balm_fcm *f, size_t T, size_t B, size_t D)
{
    return f->cfg.layout == BALM_LAYOUT_TBD ? balm_seq_tbd(T, B, D) : balm_seq_btd(T, B, D);
}

/* Checked element count a*b (0 on overflow reported through *ovf). */
static size_t mul(size_t a, size_t b, int *ovf)
{
    size_t r = 0;
    if (balm_mul_ovf(a, b, &r))
        *ovf = 1;
    return r;
}

void balm_fcm_destroy(balm_fcm *f)
{
    if (!f)
        return;
    for (int i = 0; i < BALM_FCM_NPARAM; i++) {
        free(f->param[i]);
        free(f->grad[i]);
    }
    balm_linear_destroy(f->lin_g);
    for (int m = 0; m < BALM_NMOD; m++) {
        balm_linear_destroy(f->lin_m[m]);
        free(f->s[m]);
        free(f->e[m]);
        free(f->ds[m]);
        free(f->de[m]);
        free(f->xcopy[m]);
    }
    free(f->c);
    free(f->z);
    free(f->dc);
    free(f->dz);
    free(f);
}

static float *alloc_f(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

balm_fcm_config balm_fcm_config_default(size_t d_l, size_t d_a, size_t d_v)
{
    balm_fcm_config c;
    memset(&c, 0, sizeof c);
    c.d[BALM_L] = d_l;
    c.d[BALM_A] = d_a;
    c.d[BALM_V] = d_v;
    c.d_global = (d_l + d_a + d_v) / 4;
    c.max_T = 1;
    c.max_B = 1;
    c.layout = BALM_LAYOUT_TBD;
    c.backend = BALM_LINEAR_AUTO;
    return c;
}

balm_status balm_fcm_create(const balm_fcm_config *cfg, balm_fcm **out)
{
    static const char *fn = "balm_fcm_create";
    if (!out)
        return balm_fail(BALM_ERR_NULL, "%s: out is NULL", fn);
    *out = NULL;
    if (!cfg)
        return balm_fail(BALM_ERR_NULL, "%s: cfg is NULL", fn);
    for (int m = 0; m < BALM_NMOD; m++)
        if (cfg->d[m] == 0)
            return balm_fail(BALM_ERR_SIZE, "%s: cfg->d[%d] is 0", fn, m);
    if (cfg->d_global == 0 || cfg->max_T == 0 || cfg->max_B == 0)
        return balm_fail(BALM_ERR_SIZE, "%s: d_global=%zu, max_T=%zu, max_B=%zu must be >= 1", fn,
                         cfg->d_global, cfg->max_T, cfg->max_B);
    if (cfg->layout != BALM_LAYOUT_TBD && cfg->layout != BALM_LAYOUT_BTD)
        return balm_fail(BALM_ERR_ARG, "%s: cfg->layout=%d is not a balm_layout", fn,
                         (int)cfg->layout);
    if ((unsigned)cfg->backend > (unsigned)BALM_LINEAR_ONEDNN)
        return balm_fail(BALM_ERR_ARG, "%s: cfg->backend=%d is not a balm_linear_backend", fn,
                         (int)cfg->backend);
    if (!balm_linear_backend_available(cfg->backend))
        return balm_fail(BALM_ERR_UNSUPPORTED, "%s: cfg->backend=onednn: built without oneDNN",
                         fn);
    int ovf = 0;
    size_t dsum = cfg->d[0] + cfg->d[1];
    ovf |= dsum < cfg->d[0];
    ovf |= dsum + cfg->d[2] < dsum;
    dsum += cfg->d[2];
    const size_t dg = cfg->d_global, B = cfg->max_B;
    size_t cnt[BALM_FCM_NPARAM];
    cnt[BALM_FCM_WG] = mul(dg, dsum, &ovf);
    cnt[BALM_FCM_BG] = dg;
    for (int m = 0; m < BALM_NMOD; m++) {
        cnt[BALM_FCM_WL + 2 * m] = mul(cfg->d[m], dg, &ovf);
        cnt[BALM_FCM_BL + 2 * m] = cfg->d[m];
    }
    size_t bsum = mul(B, dsum, &ovf), bdg = mul(B, dg, &ovf);
    (void)mul(mul(cfg->max_T, bsum, &ovf), sizeof(float), &ovf);
    if (ovf)
        return balm_fail(BALM_ERR_SIZE, "%s: sizes overflow size_t", fn);

    balm_fcm *f = calloc(1, sizeof *f);
    if (!f)
        return balm_fail(BALM_ERR_NOMEM, "%s: out of memory", fn);
    f->cfg = *cfg;
    f->dsum = dsum;
    int bad = 0;
    for (int i = 0; i < BALM_FCM_NPARAM; i++) {
        f->count[i] = cnt[i];
        f->param[i] = alloc_f(cnt[i]);
        f->grad[i] = alloc_f(cnt[i]);
        bad |= !f->param[i] || !f->grad[i];
    }
    f->c = alloc_f(bsum);
    f->dc = alloc_f(bsum);
    f->z = alloc_f(bdg);
    f->dz = alloc_f(bdg);
    bad |= !f->c || !f->dc || !f->z || !f->dz;
    for (int m = 0; m < BALM_NMOD; m++) {
        size_t n = B * cfg->d[m]; /* <= bsum: no overflow */
        f->s[m] = alloc_f(n);
        f->e[m] = alloc_f(n);
        f->ds[m] = alloc_f(n);
        f->de[m] = alloc_f(n);
        bad |= !f->s[m] || !f->e[m] || !f->ds[m] || !f->de[m];
    }
    if (bad) {
        balm_fcm_destroy(f);
        return balm_fail(BALM_ERR_NOMEM, "%s: out of memory", fn);
    }
    balm_status st = balm_linear_create(dsum, dg, B, cfg->backend, &f->lin_g);
    for (int m = 0; m < BALM_NMOD && st == BALM_OK; m++)
        st = balm_linear_create(dg, cfg->d[m], B, cfg->backend, &f->lin_m[m]);
    if (st != BALM_OK) {
        balm_fcm_destroy(f);
        return st;
    }
    /* PyTorch's default Linear init: weight and bias U(-1/sqrt(fan_in), +1/sqrt(fan_in)),
     * one Philox stream over all eight tensors in parameter order. */
    uint64_t k = 0;
    for (int i = 0; i < BALM_FCM_NPARAM; i++) {
        size_t fan_in = i <= BALM_FCM_BG ? dsum : dg;
        float bound = (float)(1.0 / sqrt((double)fan_in));
        for (size_t j = 0; j < cnt[i]; j++)
            f->param[i][j] = bound * (2.0f * balm_uniform(cfg->seed, k++) - 1.0f);
    }
    *out = f;
    return BALM_OK;
}

balm_linear_backend balm_fcm_backend(const balm_fcm *f)
{
    return f ? balm_linear_get_backend(f->lin_g) : BALM_LINEAR_AUTO;
}

balm_status balm_fcm_param(balm_fcm *f, balm_fcm_param_id id, float **param, float **grad,
                           size_t *count)
{
    static const char *fn = "balm_fcm_param";
    if (!f)
        return balm_fail(BALM_ERR_NULL, "%s: f is NULL", fn);
    if ((unsigned)id >= BALM_FCM_NPARAM)
        return balm_fail(BALM_ERR_ARG, "%s: id=%d is not a balm_fcm_param_id", fn, (int)id);
    if (param)
        *param = f->param[id];
    if (grad)
        *grad = f->grad[id];
    if (count)
        *count = f->count[id];
    return BALM_OK;
}

balm_status balm_fcm_forward(balm_fcm *f, size_t T, size_t B, const float *const x[BALM_NMOD],
                             const float *const mask[BALM_NMOD], float *const y[BALM_NMOD])
{
    static const char *fn = "balm_fcm_forward";
    if (!f)
        return balm_fail(BALM_ERR_NULL, "%s: f is NULL", fn);
    if (!x || !mask || !y)
        return balm_fail(BALM_ERR_NULL, "%s: %s is NULL", fn, !x ? "x" : !mask ? "mask" : "y");
    if (T > f->cfg.max_T || B > f->cfg.max_B)
        return balm_fail(BALM_ERR_SIZE, "%s: T=%zu, B=%zu above the created max_T=%zu, max_B=%zu",
                         fn, T, B, f->cfg.max_T, f->cfg.max_B);
    const int empty = T == 0 || B == 0;
    for (int m = 0; m < BALM_NMOD && !empty; m++)
        if (!x[m] || !mask[m] || !y[m])
            return balm_fail(BALM_ERR_NULL, "%s: %s[%d] is NULL", fn,
                             !x[m] ? "x" : !mask[m] ? "mask" : "y", m);
    /* y[m] may be x[m] itself; otherwise no output may touch any input or
     * another output (x and masks must survive until backward) */
    for (int m = 0; m < BALM_NMOD && !empty; m++) {
        const size_t n = T * B * f->cfg.d[m];
        for (int k = 0; k < BALM_NMOD; k++) {
            const size_t nk = T * B * f->cfg.d[k];
            if (!(k == m && y[m] == x[m]) && balm_ranges_overlap(y[m], n, x[k], nk))
                return balm_fail(BALM_ERR_ARG, "%s: y[%d] overlaps x[%d]%s", fn, m, k,
                                 k == m ? " without being equal" : "");
            if (balm_ranges_overlap(y[m], n, mask[k], T * B))
                return balm_fail(BALM_ERR_ARG, "%s: y[%d] overlaps mask[%d]", fn, m, k);
            if (k > m && balm_ranges_overlap(y[m], n, y[k], nk))
                return balm_fail(BALM_ERR_ARG, "%s: y[%d] overlaps y[%d]", fn, m, k);
        }
    }
    /* every mask checked before anything is written, the error naming the
     * modality (the kernels would name only their own argument) */
    for (int m = 0; m < BALM_NMOD && !empty; m++) {
        balm_seq L = fcm_seq(f, T, B, f->cfg.d[m]);
        for (size_t t = 0; t < T; t++)
            for (size_t b = 0; b < B; b++) {
                float v = mask[m][t * L.m_step + b * L.m_sample];
                if (v != 0.0f && v != 1.0f)
                    return balm_fail(BALM_ERR_MASK,
                                     "%s: mask[%d] (%c)[t=%zu][b=%zu] = %.9g, expected 0 or 1",
                                     fn, m, "lav"[m], t, b, (double)v);
            }
    }
    double t0 = now_s(), tl = balm_linear_time(0);
    f->have_fwd = 0;
    balm_status st = BALM_OK;
    /* pool all three before any y is written */
    for (int m = 0; m < BALM_NMOD && st == BALM_OK; m++) {
        balm_seq L = fcm_seq(f, T, B, f->cfg.d[m]);
        st = balm_pool_fwd(&L, x[m], mask[m], f->s[m]);
    }
    if (st != BALM_OK)
        return st;
    /* keep x for the gate backward when y overwrites it */
    for (int m = 0; m < BALM_NMOD && !empty; m++) {
        if (y[m] != x[m])
            continue;
        size_t n = f->cfg.max_T * f->cfg.max_B * f->cfg.d[m];
        if (!f->xcopy[m] && !(f->xcopy[m] = malloc(n * sizeof(float))))
            return balm_fail(BALM_ERR_NOMEM, "%s: out of memory (copy of x[%d])", fn, m);
    }
    size_t off = 0;
    for (int m = 0; m < BALM_NMOD; m++) {
        const size_t d = f->cfg.d[m];
        for (size_t b = 0; b < B; b++)
            memcpy(f->c + b * f->dsum + off, f->s[m] + b * d, d * sizeof(float));
        off += d;
    }
    const float *const *P = (const float *const *)f->param;
    st = balm_linear_forward(f->lin_g, B, f->c, P[BALM_FCM_WG], P[BALM_FCM_BG], f->z);
    if (st != BALM_OK)
        return st;
    for (size_t i = 0; i < B * f->cfg.d_global; i++)
        f->z[i] = f->z[i] > 0.0f ? f->z[i] : 0.0f;
    for (int m = 0; m < BALM_NMOD && st == BALM_OK; m++)
        st = balm_linear_forward(f->lin_m[m], B, f->z, P[BALM_FCM_WL + 2 * m],
                                 P[BALM_FCM_BL + 2 * m], f->e[m]);
    if (st != BALM_OK)
        return st;
    for (int m = 0; m < BALM_NMOD; m++) {
        balm_seq L = fcm_seq(f, T, B, f->cfg.d[m]);
        f->x[m] = x[m];
        f->mask[m] = mask[m];
        if (!empty && y[m] == x[m]) {
            memcpy(f->xcopy[m], x[m], T * B * f->cfg.d[m] * sizeof(float));
            f->x[m] = f->xcopy[m];
        }
        st = balm_gate_fwd(&L, x[m], mask[m], f->e[m], y[m]);
        if (st != BALM_OK)
            return st;
    }
    f->T = T;
    f->B = B;
    f->have_fwd = 1;
    f->t_linear += balm_linear_time(0) - tl;
    f->t_total += now_s() - t0;
    f->calls++;
    return BALM_OK;
}

balm_status balm_fcm_backward(balm_fcm *f, const float *const dy[BALM_NMOD],
                              float *const dx[BALM_NMOD], int accumulate)
{
    static const char *fn = "balm_fcm_backward";
    if (!f)
        return balm_fail(BALM_ERR_NULL, "%s: f is NULL", fn);
    if (!dy || !dx)
        return balm_fail(BALM_ERR_NULL, "%s: %s is NULL", fn, !dy ? "dy" : "dx");
    if (accumulate != 0 && accumulate != 1)
        return balm_fail(BALM_ERR_ARG, "%s: accumulate=%d must be 0 or 1", fn, accumulate);
    if (!f->have_fwd)
        return balm_fail(BALM_ERR_STATE, "%s: no forward to differentiate (call balm_fcm_forward "
                         "first)", fn);
    const size_t T = f->T, B = f->B;
    const int empty = T == 0 || B == 0;
    for (int m = 0; m < BALM_NMOD && !empty; m++)
        if (!dy[m] || !dx[m])
            return balm_fail(BALM_ERR_NULL, "%s: %s[%d] is NULL", fn, !dy[m] ? "dy" : "dx", m);
    for (int m = 0; m < BALM_NMOD && !empty; m++) {
        const size_t n = T * B * f->cfg.d[m];
        for (int k = 0; k < BALM_NMOD; k++) {
            const size_t nk = T * B * f->cfg.d[k];
            const char *what = balm_ranges_overlap(dx[m], n, dy[k], nk) ? "dy"
                               : balm_ranges_overlap(dx[m], n, f->x[k], nk) ? "the forward's x"
                               : balm_ranges_overlap(dx[m], n, f->mask[k], T * B) ? "mask"
                               : k > m && balm_ranges_overlap(dx[m], n, dx[k], nk) ? "dx"
                                                                                   : NULL;
            if (what)
                return balm_fail(BALM_ERR_ARG, "%s: dx[%d] overlaps %s[%d]", fn, m, what, k);
        }
    }
    double t0 = now_s(), tl = balm_linear_time(0);
    balm_status st = BALM_OK;
    /* gate path: dx (overwritten) and de */
    for (int m = 0; m < BALM_NMOD && st == BALM_OK; m++) {
        balm_seq L = fcm_seq(f, T, B, f->cfg.d[m]);
        st = balm_gate_bwd(&L, f->x[m], f->mask[m], f->e[m], dy[m], dx[m], f->de[m]);
    }
    if (st != BALM_OK)
        return st;
    float **P = f->param, **G = f->grad;
    /* e_m = W_m z + b_m: weight gradients and dz = sum_m de_m W_m */
    for (int m = 0; m < BALM_NMOD && st == BALM_OK; m++) {
        st = balm_linear_backward_weights(f->lin_m[m], B, f->de[m], f->z, G[BALM_FCM_WL + 2 * m],
                                          G[BALM_FCM_BL + 2 * m], accumulate);
        if (st == BALM_OK)
            st = balm_linear_backward_data(f->lin_m[m], B, f->de[m], P[BALM_FCM_WL + 2 * m],
                                           f->dz, m > 0);
    }
    if (st != BALM_OK)
        return st;
    /* relu: z holds the post-relu value, so z > 0 is exactly the pass mask */
    for (size_t i = 0; i < B * f->cfg.d_global; i++)
        if (!(f->z[i] > 0.0f))
            f->dz[i] = 0.0f;
    st = balm_linear_backward_weights(f->lin_g, B, f->dz, f->c, G[BALM_FCM_WG], G[BALM_FCM_BG],
                                      accumulate);
    if (st == BALM_OK)
        st = balm_linear_backward_data(f->lin_g, B, f->dz, P[BALM_FCM_WG], f->dc, 0);
    if (st != BALM_OK)
        return st;
    /* split d concat into ds_l, ds_a, ds_v and add the pooling path */
    size_t off = 0;
    for (int m = 0; m < BALM_NMOD && st == BALM_OK; m++) {
        const size_t d = f->cfg.d[m];
        for (size_t b = 0; b < B; b++)
            memcpy(f->ds[m] + b * d, f->dc + b * f->dsum + off, d * sizeof(float));
        off += d;
        balm_seq L = fcm_seq(f, T, B, d);
        st = balm_pool_bwd(&L, f->mask[m], f->ds[m], dx[m], 1);
    }
    f->t_linear += balm_linear_time(0) - tl;
    f->t_total += now_s() - t0;
    return st;
}

balm_status balm_fcm_intermediates(const balm_fcm *f, const float *s[BALM_NMOD],
                                   const float **z, const float *e[BALM_NMOD])
{
    static const char *fn = "balm_fcm_intermediates";
    if (!f)
        return balm_fail(BALM_ERR_NULL, "%s: f is NULL", fn);
    if (!f->have_fwd)
        return balm_fail(BALM_ERR_STATE, "%s: no forward yet", fn);
    for (int m = 0; m < BALM_NMOD; m++) {
        if (s)
            s[m] = f->s[m];
        if (e)
            e[m] = f->e[m];
    }
    if (z)
        *z = f->z;
    return BALM_OK;
}

balm_status balm_fcm_set_threads(int n)
{
    if (n < 0)
        return balm_fail(BALM_ERR_ARG, "balm_fcm_set_threads: n=%d must be >= 0", n);
    balm_linear_set_threads(n);
    return BALM_OK;
}

balm_status balm_fcm_timing(balm_fcm *f, double *linear_s, double *total_s, uint64_t *calls,
                            int reset)
{
    if (!f)
        return balm_fail(BALM_ERR_NULL, "balm_fcm_timing: f is NULL");
    if (linear_s)
        *linear_s = f->t_linear;
    if (total_s)
        *total_s = f->t_total;
    if (calls)
        *calls = f->calls;
    if (reset) {
        f->t_linear = f->t_total = 0.0;
        f->calls = 0;
    }
    return BALM_OK;
}
