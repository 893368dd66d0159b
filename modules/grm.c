/* GRM module: unimodal heads with their Adam, and the per-step rebalancing
 * built on the GRM kernels of balm.h. See include/balm/grm.h for the order of
 * operations; everything is computed into scratch first and the state (heads,
 * Adam, prev_KL, noise offset, registered gradients) changes only once the
 * whole step is known to succeed. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "linear.h"
#include "balm/grm.h"

#define GRM_NOISE_KEY 0x9E3779B97F4A7C15ull

typedef struct grm_head {
    balm_linear *l1, *l2;
    float *p[BALM_GRM_NPARAM], *g[BALM_GRM_NPARAM], *am[BALM_GRM_NPARAM], *av[BALM_GRM_NPARAM];
    size_t n[BALM_GRM_NPARAM];
    float *h, *u, *logq, *du, *dh; /* [N][H], [N][C], [N][C], [N][C], [N][H] */
} grm_head;

typedef struct grm_reg {
    int mod;
    float *grad;
    size_t n;
    float sd; /* std of grad in this step (its moments pass is also the finite check) */
    char name[48];
} grm_reg;

struct balm_grm {
    balm_grm_config cfg;
    grm_head head[BALM_NMOD];
    float *p;               /* fused softmax [N][C] (classification) */
    grm_reg *reg;
    size_t nreg, capreg;
    balm_grm_state st;
};

balm_grm_config balm_grm_config_default(void)
{
    balm_grm_config c;
    memset(&c, 0, sizeof c);
    c.rho = 1.4f;
    c.tau = 0.3f;
    c.start_epoch = 0;
    c.end_epoch = INT_MAX;
    c.noise = 1;
    c.lr = 3e-4f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.weight_decay = 3e-5f;
    c.backend = BALM_LINEAR_AUTO;
    return c;
}

static float *alloc_f(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

void balm_grm_destroy(balm_grm *g)
{
    if (!g)
        return;
    for (int m = 0; m < BALM_NMOD; m++) {
        grm_head *h = &g->head[m];
        balm_linear_destroy(h->l1);
        balm_linear_destroy(h->l2);
        for (int i = 0; i < BALM_GRM_NPARAM; i++) {
            free(h->p[i]);
            free(h->g[i]);
            free(h->am[i]);
            free(h->av[i]);
        }
        free(h->h);
        free(h->u);
        free(h->logq);
        free(h->du);
        free(h->dh);
    }
    free(g->p);
    free(g->reg);
    free(g);
}

balm_status balm_grm_create(const balm_grm_config *cfg, balm_grm **out)
{
    static const char *fn = "balm_grm_create";
    if (!out)
        return balm_fail(BALM_ERR_NULL, "%s: out is NULL", fn);
    *out = NULL;
    if (!cfg)
        return balm_fail(BALM_ERR_NULL, "%s: cfg is NULL", fn);
    if (cfg->C == 0 || cfg->H == 0 || cfg->max_N == 0)
        return balm_fail(BALM_ERR_SIZE, "%s: C=%zu, H=%zu, max_N=%zu must be >= 1", fn, cfg->C,
                         cfg->H, cfg->max_N);
    for (int m = 0; m < BALM_NMOD; m++)
        if (cfg->enc[m] == 0)
            return balm_fail(BALM_ERR_SIZE, "%s: cfg->enc[%d] is 0", fn, m);
    if (!isfinite(cfg->rho) || !isfinite(cfg->tau))
        return balm_fail(BALM_ERR_NONFINITE, "%s: rho=%g, tau=%g must be finite", fn,
                         (double)cfg->rho, (double)cfg->tau);
    if (cfg->noise != 0 && cfg->noise != 1)
        return balm_fail(BALM_ERR_ARG, "%s: cfg->noise=%d must be 0 or 1", fn, cfg->noise);
    if (!(cfg->lr >= 0.0f) || !isfinite(cfg->lr) || !(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f) ||
        !(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f) || !(cfg->eps >= 0.0f) ||
        !isfinite(cfg->eps) || !(cfg->weight_decay >= 0.0f) || !isfinite(cfg->weight_decay))
        return balm_fail(BALM_ERR_ARG,
                         "%s: Adam settings out of range (lr=%g >= 0, betas=(%g, %g) in [0, 1), "
                         "eps=%g >= 0, weight_decay=%g >= 0)", fn, (double)cfg->lr,
                         (double)cfg->beta1, (double)cfg->beta2, (double)cfg->eps,
                         (double)cfg->weight_decay);
    if ((unsigned)cfg->backend > (unsigned)BALM_LINEAR_ONEDNN)
        return balm_fail(BALM_ERR_ARG, "%s: cfg->backend=%d is not a balm_linear_backend", fn,
                         (int)cfg->backend);
    if (!balm_linear_backend_available(cfg->backend))
        return balm_fail(BALM_ERR_UNSUPPORTED, "%s: cfg->backend=onednn: built without oneDNN",
                         fn);
    size_t t;
    const size_t C = cfg->C, H = cfg->H, N = cfg->max_N;
    int ovf = balm_mul_ovf(N, H > C ? H : C, &t) || balm_mul_ovf(C, H, &t);
    for (int m = 0; m < BALM_NMOD; m++)
        ovf |= balm_mul_ovf(H, cfg->enc[m], &t);
    if (ovf)
        return balm_fail(BALM_ERR_SIZE, "%s: sizes overflow size_t", fn);

    balm_grm *g = calloc(1, sizeof *g);
    if (!g)
        return balm_fail(BALM_ERR_NOMEM, "%s: out of memory", fn);
    g->cfg = *cfg;
    int bad = !(g->p = alloc_f(N * C));
    balm_status s = BALM_OK;
    uint64_t k = 0;
    for (int m = 0; m < BALM_NMOD && !bad && s == BALM_OK; m++) {
        grm_head *h = &g->head[m];
        h->n[BALM_GRM_W1] = H * cfg->enc[m];
        h->n[BALM_GRM_B1] = H;
        h->n[BALM_GRM_W2] = C * H;
        h->n[BALM_GRM_B2] = C;
        for (int i = 0; i < BALM_GRM_NPARAM; i++) {
            h->p[i] = alloc_f(h->n[i]);
            h->g[i] = alloc_f(h->n[i]);
            h->am[i] = alloc_f(h->n[i]);
            h->av[i] = alloc_f(h->n[i]);
            bad |= !h->p[i] || !h->g[i] || !h->am[i] || !h->av[i];
        }
        h->h = alloc_f(N * H);
        h->dh = alloc_f(N * H);
        h->u = alloc_f(N * C);
        h->logq = alloc_f(N * C);
        h->du = alloc_f(N * C);
        bad |= !h->h || !h->dh || !h->u || !h->logq || !h->du;
        if (bad)
            break;
        s = balm_linear_create(cfg->enc[m], H, N, cfg->backend, &h->l1);
        if (s == BALM_OK)
            s = balm_linear_create(H, C, N, cfg->backend, &h->l2);
        /* PyTorch's default Linear init from one Philox stream */
        for (int i = 0; i < BALM_GRM_NPARAM && s == BALM_OK; i++) {
            size_t fan_in = i <= BALM_GRM_B1 ? cfg->enc[m] : H;
            float bound = (float)(1.0 / sqrt((double)fan_in));
            for (size_t j = 0; j < h->n[i]; j++)
                h->p[i][j] = bound * (2.0f * balm_uniform(cfg->seed, k++) - 1.0f);
        }
    }
    if (bad || s != BALM_OK) {
        balm_grm_destroy(g);
        return bad ? balm_fail(BALM_ERR_NOMEM, "%s: out of memory", fn) : s;
    }
    *out = g;
    return BALM_OK;
}

float balm_grm_tau(const balm_grm *g)
{
    return g ? g->cfg.tau : 0.0f;
}

balm_status balm_grm_register(balm_grm *g, int modality, float *grad, size_t n,
                              const char *name, size_t *index)
{
    static const char *fn = "balm_grm_register";
    if (!g)
        return balm_fail(BALM_ERR_NULL, "%s: g is NULL", fn);
    if (modality < 0 || modality >= BALM_NMOD)
        return balm_fail(BALM_ERR_ARG, "%s: modality=%d must be 0 (l), 1 (a) or 2 (v)", fn,
                         modality);
    if (!grad && n)
        return balm_fail(BALM_ERR_NULL, "%s: grad is NULL", fn);
    /* a tensor registered twice would be rescaled twice */
    for (size_t j = 0; j < g->nreg; j++)
        if (balm_ranges_overlap(grad, n, g->reg[j].grad, g->reg[j].n))
            return balm_fail(BALM_ERR_ARG, "%s: grad overlaps registered tensor %zu ('%s')", fn,
                             j, g->reg[j].name);
    if (g->nreg == g->capreg) {
        size_t cap = g->capreg ? 2 * g->capreg : 16;
        grm_reg *r = realloc(g->reg, cap * sizeof *r);
        if (!r)
            return balm_fail(BALM_ERR_NOMEM, "%s: out of memory", fn);
        g->reg = r;
        g->capreg = cap;
    }
    grm_reg *r = &g->reg[g->nreg];
    r->mod = modality;
    r->grad = grad;
    r->n = n;
    r->name[0] = 0;
    if (name) {
        strncpy(r->name, name, sizeof r->name - 1);
        r->name[sizeof r->name - 1] = 0;
    }
    if (index)
        *index = g->nreg;
    g->nreg++;
    return BALM_OK;
}

void balm_grm_clear_registered(balm_grm *g)
{
    if (g)
        g->nreg = 0;
}

/* log_softmax of one row in double; returns log-sum-exp. */
static void log_softmax_row(size_t C, const float *u, float *out)
{
    double mx = u[0];
    for (size_t c = 1; c < C; c++)
        if (u[c] > mx)
            mx = u[c];
    double s = 0.0;
    for (size_t c = 0; c < C; c++)
        s += exp((double)u[c] - mx);
    double lse = mx + log(s);
    for (size_t c = 0; c < C; c++)
        out[c] = (float)((double)u[c] - lse);
}

/* Heads forward + backward for modality m into the head's scratch and
 * gradients (the parameters and Adam state are not touched). */
static balm_status head_step(balm_grm *g, int m, const balm_grm_input *in, float *loss,
                             float *acc)
{
    grm_head *h = &g->head[m];
    const size_t N = in->N, C = g->cfg.C, H = g->cfg.H;
    balm_status s = balm_linear_forward(h->l1, N, in->feat[m], h->p[BALM_GRM_W1],
                                        h->p[BALM_GRM_B1], h->h);
    if (s != BALM_OK)
        return s;
    for (size_t i = 0; i < N * H; i++)
        h->h[i] = h->h[i] > 0.0f ? h->h[i] : 0.0f;
    s = balm_linear_forward(h->l2, N, h->h, h->p[BALM_GRM_W2], h->p[BALM_GRM_B2], h->u);
    if (s != BALM_OK)
        return s;
    double L = 0.0;
    size_t hits = 0;
    if (C == 1) {
        /* MSE: mean (u - y)^2, du = 2 (u - y) / N */
        for (size_t n = 0; n < N; n++) {
            double r = (double)h->u[n] - in->targets[n];
            L += r * r;
            h->du[n] = (float)(2.0 * r / (double)N);
            hits += (h->u[n] > 0.0f) == (in->targets[n] > 0.0f);
        }
    } else {
        /* NLL of log_softmax: du = (softmax(u) - onehot) / N */
        for (size_t n = 0; n < N; n++) {
            const float *u = h->u + n * C;
            float *lq = h->logq + n * C, *du = h->du + n * C;
            log_softmax_row(C, u, lq);
            size_t y = (size_t)in->labels[n], best = 0;
            for (size_t c = 0; c < C; c++) {
                du[c] = (float)((exp((double)lq[c]) - (c == y ? 1.0 : 0.0)) / (double)N);
                if (u[c] > u[best])
                    best = c;
            }
            L -= lq[y];
            hits += best == y;
        }
    }
    *loss = (float)(L / (double)N);
    *acc = (float)((double)hits / (double)N);
    s = balm_linear_backward_weights(h->l2, N, h->du, h->h, h->g[BALM_GRM_W2],
                                     h->g[BALM_GRM_B2], 0);
    if (s == BALM_OK)
        s = balm_linear_backward_data(h->l2, N, h->du, h->p[BALM_GRM_W2], h->dh, 0);
    if (s != BALM_OK)
        return s;
    for (size_t i = 0; i < N * H; i++)
        if (!(h->h[i] > 0.0f))
            h->dh[i] = 0.0f;
    return balm_linear_backward_weights(h->l1, N, h->dh, in->feat[m], h->g[BALM_GRM_W1],
                                        h->g[BALM_GRM_B1], 0);
}

static void adam_step(balm_grm *g, uint64_t t)
{
    const balm_grm_config *c = &g->cfg;
    const double bc1 = 1.0 - pow((double)c->beta1, (double)t);
    const double bc2 = 1.0 - pow((double)c->beta2, (double)t);
    const float step = (float)((double)c->lr / bc1), sbc2 = (float)sqrt(bc2);
    const float b1 = c->beta1, b2 = c->beta2, wd = c->weight_decay, eps = c->eps;
    for (int m = 0; m < BALM_NMOD; m++) {
        grm_head *h = &g->head[m];
        for (int i = 0; i < BALM_GRM_NPARAM; i++) {
            float *p = h->p[i], *mo = h->am[i], *v = h->av[i];
            const float *gr = h->g[i];
            for (size_t j = 0; j < h->n[i]; j++) {
                float gj = gr[j] + wd * p[j];
                mo[j] = b1 * mo[j] + (1.0f - b1) * gj;
                v[j] = b2 * v[j] + (1.0f - b2) * gj * gj;
                p[j] -= step * mo[j] / (sqrtf(v[j]) / sbc2 + eps);
            }
        }
    }
}

balm_status balm_grm_step(balm_grm *g, const balm_grm_input *in, float *dfused_w,
                          balm_grm_report *report)
{
    static const char *fn = "balm_grm_step";
    if (!g)
        return balm_fail(BALM_ERR_NULL, "%s: g is NULL", fn);
    if (!in || !dfused_w)
        return balm_fail(BALM_ERR_NULL, "%s: %s is NULL", fn, !in ? "in" : "dfused_w");
    const size_t N = in->N, C = g->cfg.C, H = g->cfg.H;
    const int reg = C == 1;
    if (N == 0 || N > g->cfg.max_N)
        return balm_fail(BALM_ERR_SIZE, "%s: in->N=%zu must be in 1..max_N=%zu", fn, N,
                         g->cfg.max_N);
    for (int m = 0; m < BALM_NMOD; m++)
        if (!in->feat[m])
            return balm_fail(BALM_ERR_NULL, "%s: in->feat[%d] is NULL", fn, m);
    if (!in->fused_out || !in->fused_w)
        return balm_fail(BALM_ERR_NULL, "%s: in->%s is NULL", fn,
                         !in->fused_out ? "fused_out" : "fused_w");
    if (reg ? !in->targets : !in->labels)
        return balm_fail(BALM_ERR_NULL, "%s: in->%s is NULL (C=%zu)", fn,
                         reg ? "targets" : "labels", C);
    size_t bad;
    /* A NaN feature would reach the heads' weights through Adam: refuse it
     * before anything is modified. */
    for (int m = 0; m < BALM_NMOD; m++)
        if ((bad = balm_find_nonfinite(in->feat[m], N * g->cfg.enc[m])) != SIZE_MAX)
            return balm_fail(BALM_ERR_NONFINITE, "%s: in->feat[%d][%zu] is not finite", fn, m,
                             bad);
    bad = balm_find_nonfinite(in->fused_out, N * C);
    if (bad != SIZE_MAX)
        return balm_fail(BALM_ERR_NONFINITE, "%s: in->fused_out[%zu] is not finite", fn, bad);
    if ((bad = balm_find_nonfinite(in->fused_w, C * H)) != SIZE_MAX)
        return balm_fail(BALM_ERR_NONFINITE, "%s: in->fused_w[%zu] is not finite", fn, bad);
    if (reg) {
        if ((bad = balm_find_nonfinite(in->targets, N)) != SIZE_MAX)
            return balm_fail(BALM_ERR_NONFINITE, "%s: in->targets[%zu] is not finite", fn, bad);
    } else {
        for (size_t n = 0; n < N; n++)
            if (in->labels[n] < 0 || (size_t)in->labels[n] >= C)
                return balm_fail(BALM_ERR_ARG, "%s: in->labels[%zu]=%d outside 0..%zu", fn, n,
                                 (int)in->labels[n], C - 1);
    }
    if (balm_ranges_overlap(dfused_w, C * H, in->fused_w, C * H))
        return balm_fail(BALM_ERR_ARG, "%s: dfused_w overlaps in->fused_w", fn);
    if (balm_ranges_overlap(dfused_w, C * H, in->fused_out, N * C))
        return balm_fail(BALM_ERR_ARG, "%s: dfused_w overlaps in->fused_out", fn);
    const int window = in->epoch >= g->cfg.start_epoch && in->epoch <= g->cfg.end_epoch;
    /* One pass over each registered gradient: its moments give the noise sd
     * and find any non-finite value before anything is modified; the commit
     * below is then the second and last pass. */
    if (window)
        for (size_t j = 0; j < g->nreg; j++) {
            grm_reg *r = &g->reg[j];
            balm_status ss = balm_std(r->n, r->grad, &r->sd);
            if (ss == BALM_OK)
                continue;
            if ((bad = balm_find_nonfinite(r->grad, r->n)) == SIZE_MAX)
                return ss;
            return balm_fail(BALM_ERR_NONFINITE,
                             "%s: registered gradient %zu ('%s') of modality %d (%c) has a "
                             "non-finite value at [%zu]; nothing modified",
                             fn, j, r->name, r->mod, "lav"[r->mod], bad);
        }

    balm_grm_report rep;
    memset(&rep, 0, sizeof rep);
    balm_status s = BALM_OK;
    /* 1: heads forward and backward (gradients only) */
    for (int m = 0; m < BALM_NMOD && s == BALM_OK; m++)
        s = head_step(g, m, in, &rep.head_loss[m], &rep.head_acc[m]);
    if (s != BALM_OK)
        return s;
    /* 2: cosines of the heads' output weights against the fused weight */
    const float *w2[BALM_NMOD];
    for (int m = 0; m < BALM_NMOD && s == BALM_OK; m++) {
        w2[m] = g->head[m].p[BALM_GRM_W2];
        s = balm_cos(C * H, w2[m], in->fused_w, &rep.cos[m], NULL, NULL);
    }
    /* 3: KL of each head against the fused prediction */
    if (!reg && s == BALM_OK)
        for (size_t n = 0; n < N; n++) {
            log_softmax_row(C, in->fused_out + n * C, g->p + n * C);
            for (size_t c = 0; c < C; c++)
                g->p[n * C + c] = expf(g->p[n * C + c]);
        }
    for (int m = 0; m < BALM_NMOD && s == BALM_OK; m++)
        s = reg ? balm_kl_reg(N, in->fused_out, g->head[m].u, &rep.kl[m])
                : balm_kl_cls(N, C, g->p, g->head[m].logq, &rep.kl[m]);
    /* 4, 5: coefficients, loss_gm and its gradient w.r.t. the fused weight */
    if (s == BALM_OK)
        s = balm_grm_coeff(BALM_NMOD, g->st.have_prev ? g->st.prev_kl : NULL, rep.kl, rep.coeff);
    if (s == BALM_OK)
        s = balm_grm_loss(BALM_NMOD, rep.coeff, rep.cos, &rep.loss_gm);
    if (s != BALM_OK)
        return s;
    float scale[BALM_NMOD];
    for (int m = 0; m < BALM_NMOD; m++) {
        scale[m] = rep.coeff[m] * g->cfg.rho;
        if (window && !isfinite(scale[m]))
            return balm_fail(BALM_ERR_NONFINITE,
                             "%s: rescaling factor coeff[%d] * rho = %g is not finite", fn, m,
                             (double)scale[m]);
    }
    /* inputs are validated and finite, so this cannot fail half-way */
    s = balm_direction_grad(C * H, BALM_NMOD, w2, in->fused_w, rep.coeff, rep.cos, dfused_w, 0);
    if (s != BALM_OK)
        return s;
    /* commit: 6, rescale (and perturb) the registered gradients */
    rep.rescaled = window;
    if (window) {
        const uint64_t key = g->cfg.seed ^ GRM_NOISE_KEY;
        for (size_t j = 0; j < g->nreg; j++) {
            grm_reg *r = &g->reg[j];
            if (r->n == 0)
                continue;
            /* as balm_grad_rescale: sd = std(g * scale) + 1e-8 */
            s = g->cfg.noise ? balm_scale_noise(r->n, r->grad, scale[r->mod],
                                                fabsf(scale[r->mod]) * r->sd + 1e-8f, key,
                                                g->st.noise_offset)
                             : balm_scale(r->n, r->grad, scale[r->mod]);
            if (s != BALM_OK) /* cannot happen: inputs checked above */
                return s;
            if (g->cfg.noise)
                g->st.noise_offset += (r->n + 3) / 4 * 4;
        }
    }
    /* 7: the heads' optimizer; then prev_KL for the next step */
    g->st.adam_steps++;
    adam_step(g, g->st.adam_steps);
    memcpy(g->st.prev_kl, rep.kl, sizeof rep.kl);
    g->st.have_prev = 1;
    if (report)
        *report = rep;
    return BALM_OK;
}

balm_status balm_grm_param(balm_grm *g, int modality, balm_grm_param_id id, float **param,
                           float **grad, float **adam_m, float **adam_v, size_t *count)
{
    static const char *fn = "balm_grm_param";
    if (!g)
        return balm_fail(BALM_ERR_NULL, "%s: g is NULL", fn);
    if (modality < 0 || modality >= BALM_NMOD)
        return balm_fail(BALM_ERR_ARG, "%s: modality=%d must be 0 (l), 1 (a) or 2 (v)", fn,
                         modality);
    if ((unsigned)id >= BALM_GRM_NPARAM)
        return balm_fail(BALM_ERR_ARG, "%s: id=%d is not a balm_grm_param_id", fn, (int)id);
    grm_head *h = &g->head[modality];
    if (param)
        *param = h->p[id];
    if (grad)
        *grad = h->g[id];
    if (adam_m)
        *adam_m = h->am[id];
    if (adam_v)
        *adam_v = h->av[id];
    if (count)
        *count = h->n[id];
    return BALM_OK;
}

balm_status balm_grm_get_state(const balm_grm *g, balm_grm_state *s)
{
    if (!g || !s)
        return balm_fail(BALM_ERR_NULL, "balm_grm_get_state: %s is NULL", !g ? "g" : "s");
    *s = g->st;
    return BALM_OK;
}

balm_status balm_grm_set_state(balm_grm *g, const balm_grm_state *s)
{
    static const char *fn = "balm_grm_set_state";
    if (!g || !s)
        return balm_fail(BALM_ERR_NULL, "%s: %s is NULL", fn, !g ? "g" : "s");
    if (s->have_prev != 0 && s->have_prev != 1)
        return balm_fail(BALM_ERR_ARG, "%s: s->have_prev=%d must be 0 or 1", fn, s->have_prev);
    for (int m = 0; m < BALM_NMOD; m++)
        if (!isfinite(s->prev_kl[m]))
            return balm_fail(BALM_ERR_NONFINITE, "%s: s->prev_kl[%d] is not finite", fn, m);
    g->st = *s;
    return BALM_OK;
}
