/* The trainer's backbone: FCM (optional) -> per-modality encoders -> fused
 * classifier, on balm_linear layers; Adam and gradient clipping. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "balm/fcm.h"
#include "internal.h"
#include "linear.h"
#include "trainer.h"

#define MAX_PARAMS (4 * BALM_NMOD + 2 + BALM_FCM_NPARAM)

struct balm_model {
    balm_model_cfg cfg;
    size_t C, h, max_rows;
    float *W[BALM_NMOD], *b[BALM_NMOD], *gW[BALM_NMOD], *gb[BALM_NMOD];
    float *fW, *fb, *gfW, *gfb;
    balm_linear *lin_enc[BALM_NMOD], *lin_fused;
    balm_fcm *fcm;
    balm_param params[MAX_PARAMS];
    size_t nparams;
    /* step-major batch for the FCM: x, mask, y, dy, dx [T*B][d] */
    float *xb[BALM_NMOD], *mb[BALM_NMOD], *yb[BALM_NMOD], *dyb[BALM_NMOD], *dxb[BALM_NMOD];
    /* the N real utterances, dialogue by dialogue */
    float *xg[BALM_NMOD], *hg[BALM_NMOD], *dh[BALM_NMOD], *dxg[BALM_NMOD];
    float *H, *dH, *logits, *prob, *dlogits, *labels;
    size_t *rowpos; /* row r sits at step-major position t*B + b */
    size_t N, T, B;
    double t_fcm, t_dense;
};

double balm_now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *falloc(size_t n, int *bad)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p)
        *bad = 1;
    return p;
}

void balm_model_destroy(balm_model *m)
{
    if (!m)
        return;
    for (int k = 0; k < BALM_NMOD; k++) {
        free(m->W[k]);
        free(m->b[k]);
        free(m->gW[k]);
        free(m->gb[k]);
        balm_linear_destroy(m->lin_enc[k]);
        free(m->xb[k]);
        free(m->mb[k]);
        free(m->yb[k]);
        free(m->dyb[k]);
        free(m->dxb[k]);
        free(m->xg[k]);
        free(m->hg[k]);
        free(m->dh[k]);
        free(m->dxg[k]);
    }
    free(m->fW);
    free(m->fb);
    free(m->gfW);
    free(m->gfb);
    balm_linear_destroy(m->lin_fused);
    balm_fcm_destroy(m->fcm);
    free(m->H);
    free(m->dH);
    free(m->logits);
    free(m->prob);
    free(m->dlogits);
    free(m->labels);
    free(m->rowpos);
    free(m);
}

/* PyTorch's default Linear init: W and b uniform in +-1/sqrt(fan_in). */
static void init_linear(balm_rng *r, float *W, float *b, size_t in, size_t out)
{
    float bound = 1.0f / sqrtf((float)in);
    for (size_t i = 0; i < in * out; i++)
        W[i] = balm_rng_sym(r, bound);
    for (size_t i = 0; i < out; i++)
        b[i] = balm_rng_sym(r, bound);
}

static void add_param(balm_model *m, const char *name, float *p, float *g, size_t n, int mod)
{
    balm_param *q = &m->params[m->nparams++];
    q->name = name;
    q->p = p;
    q->g = g;
    q->n = n;
    q->modality = mod;
}

balm_status balm_model_create(const balm_model_cfg *cfg, balm_model **out)
{
    static const char *fn = "balm_model_create";
    static const char *wname[BALM_NMOD] = {"enc_l.weight", "enc_a.weight", "enc_v.weight"};
    static const char *bname[BALM_NMOD] = {"enc_l.bias", "enc_a.bias", "enc_v.bias"};
    static const char *fcm_name[BALM_FCM_NPARAM] = {"fcm.wg", "fcm.bg", "fcm.wl", "fcm.bl",
                                                    "fcm.wa", "fcm.ba", "fcm.wv", "fcm.bv"};
    balm_status st = BALM_OK;
    int bad = 0;
    *out = NULL;
    if (!cfg->hidden || !cfg->n_classes || !cfg->max_T || !cfg->max_B)
        return balm_fail(BALM_ERR_SIZE, "%s: hidden, n_classes, max_T and max_B must be >= 1", fn);
    for (int k = 0; k < BALM_NMOD; k++)
        if (!cfg->d[k])
            return balm_fail(BALM_ERR_SIZE, "%s: d[%d] is 0", fn, k);
    size_t rows;
    if (balm_mul_ovf(cfg->max_T, cfg->max_B, &rows))
        return balm_fail(BALM_ERR_SIZE, "%s: max_T * max_B overflows", fn);
    balm_model *m = calloc(1, sizeof *m);
    if (!m)
        return balm_fail(BALM_ERR_NOMEM, "%s: no memory", fn);
    m->cfg = *cfg;
    m->C = cfg->n_classes;
    m->h = cfg->hidden;
    m->max_rows = rows;
    size_t h = m->h, C = m->C, F = BALM_NMOD * h;
    balm_rng r = {cfg->seed ^ 0x6d6f64656cull, 0};
    for (int k = 0; k < BALM_NMOD; k++) {
        size_t d = cfg->d[k];
        m->W[k] = falloc(h * d, &bad);
        m->b[k] = falloc(h, &bad);
        m->gW[k] = falloc(h * d, &bad);
        m->gb[k] = falloc(h, &bad);
        m->xg[k] = falloc(rows * d, &bad);
        m->hg[k] = falloc(rows * h, &bad);
        m->dh[k] = falloc(rows * h, &bad);
        if (cfg->balm) {
            m->xb[k] = falloc(rows * d, &bad);
            m->mb[k] = falloc(rows, &bad);
            m->yb[k] = falloc(rows * d, &bad);
            m->dyb[k] = falloc(rows * d, &bad);
            m->dxb[k] = falloc(rows * d, &bad);
            m->dxg[k] = falloc(rows * d, &bad);
        }
        if (!bad)
            init_linear(&r, m->W[k], m->b[k], d, h);
    }
    m->fW = falloc(C * F, &bad);
    m->fb = falloc(C, &bad);
    m->gfW = falloc(C * F, &bad);
    m->gfb = falloc(C, &bad);
    m->H = falloc(rows * F, &bad);
    m->dH = falloc(rows * F, &bad);
    m->logits = falloc(rows * C, &bad);
    m->prob = falloc(rows * C, &bad);
    m->dlogits = falloc(rows * C, &bad);
    m->labels = falloc(rows, &bad);
    m->rowpos = calloc(rows, sizeof *m->rowpos);
    if (bad || !m->rowpos) {
        balm_model_destroy(m);
        return balm_fail(BALM_ERR_NOMEM, "%s: no memory for %zu rows", fn, rows);
    }
    init_linear(&r, m->fW, m->fb, F, C);
    for (int k = 0; k < BALM_NMOD && !st; k++)
        st = balm_linear_create(cfg->d[k], h, rows, BALM_LINEAR_AUTO, &m->lin_enc[k]);
    if (!st)
        st = balm_linear_create(F, C, rows, BALM_LINEAR_AUTO, &m->lin_fused);
    if (!st && cfg->balm) {
        balm_fcm_config fc;
        memset(&fc, 0, sizeof fc);
        for (int k = 0; k < BALM_NMOD; k++)
            fc.d[k] = cfg->d[k];
        fc.d_global = cfg->d_global ? cfg->d_global : (cfg->d[0] + cfg->d[1] + cfg->d[2]) / 4;
        if (!fc.d_global)
            fc.d_global = 1;
        fc.max_T = cfg->max_T;
        fc.max_B = cfg->max_B;
        fc.layout = BALM_LAYOUT_TBD;
        fc.backend = BALM_LINEAR_AUTO;
        fc.seed = cfg->seed ^ 0x66636dull;
        m->cfg.d_global = fc.d_global;
        st = balm_fcm_create(&fc, &m->fcm);
    }
    if (st) {
        balm_model_destroy(m);
        return st;
    }
    for (int k = 0; k < BALM_NMOD; k++) {
        add_param(m, wname[k], m->W[k], m->gW[k], h * cfg->d[k], k);
        add_param(m, bname[k], m->b[k], m->gb[k], h, k);
    }
    add_param(m, "fused.weight", m->fW, m->gfW, C * F, -1);
    add_param(m, "fused.bias", m->fb, m->gfb, C, -1);
    if (m->fcm)
        for (int i = 0; i < BALM_FCM_NPARAM; i++) {
            float *p, *g;
            size_t n;
            balm_fcm_param(m->fcm, (balm_fcm_param_id)i, &p, &g, &n);
            add_param(m, fcm_name[i], p, g, n, -1);
        }
    *out = m;
    return BALM_OK;
}

size_t balm_model_params(balm_model *m, const balm_param **list)
{
    *list = m->params;
    return m->nparams;
}

size_t balm_model_fused_in(const balm_model *m)
{
    return BALM_NMOD * m->h;
}

const float *balm_model_logits(const balm_model *m)
{
    return m->logits;
}

const float *balm_model_labels(const balm_model *m)
{
    return m->labels;
}

const float *balm_model_features(const balm_model *m, int modality)
{
    return m->hg[modality];
}

balm_status balm_model_forward(balm_model *m, const balm_split *s, const size_t *dlg, size_t B,
                               size_t *n_out)
{
    static const char *fn = "balm_model_forward";
    size_t T = 0, N = 0, h = m->h, C = m->C, F = BALM_NMOD * h;
    balm_status st = BALM_OK;
    if (B == 0 || B > m->cfg.max_B)
        return balm_fail(BALM_ERR_SIZE, "%s: B = %zu not in 1..%zu", fn, B, m->cfg.max_B);
    for (size_t b = 0; b < B; b++) {
        if (dlg[b] >= s->n_dialogs)
            return balm_fail(BALM_ERR_ARG, "%s: dialogue %zu of %zu", fn, dlg[b], s->n_dialogs);
        size_t len = s->dialog[dlg[b] + 1] - s->dialog[dlg[b]];
        T = len > T ? len : T;
        N += len;
    }
    if (T > m->cfg.max_T)
        return balm_fail(BALM_ERR_SIZE, "%s: dialogue of %zu utterances, the model takes %zu", fn, T,
                         m->cfg.max_T);
    m->T = T;
    m->B = B;
    m->N = N;
    /* rows dialogue by dialogue; rowpos maps them into the step-major batch */
    size_t r = 0;
    for (size_t b = 0; b < B; b++) {
        size_t a = s->dialog[dlg[b]], len = s->dialog[dlg[b] + 1] - a;
        for (size_t t = 0; t < len; t++, r++) {
            m->rowpos[r] = t * B + b;
            m->labels[r] = s->y[a + t];
        }
    }
    for (int k = 0; k < BALM_NMOD; k++) {
        size_t d = m->cfg.d[k];
        if (m->fcm) {
            memset(m->xb[k], 0, T * B * d * sizeof(float));
            memset(m->mb[k], 0, T * B * sizeof(float)); /* padding: mask 0 */
            r = 0;
            for (size_t b = 0; b < B; b++) {
                size_t a = s->dialog[dlg[b]], len = s->dialog[dlg[b] + 1] - a;
                for (size_t t = 0; t < len; t++, r++) {
                    memcpy(m->xb[k] + (t * B + b) * d, s->x[k] + (a + t) * d, d * sizeof(float));
                    m->mb[k][t * B + b] = s->mask[k][a + t];
                }
            }
        } else {
            r = 0;
            for (size_t b = 0; b < B; b++) {
                size_t a = s->dialog[dlg[b]], len = s->dialog[dlg[b] + 1] - a;
                memcpy(m->xg[k] + r * d, s->x[k] + a * d, len * d * sizeof(float));
                r += len;
            }
        }
    }
    if (m->fcm) {
        const float *x[BALM_NMOD] = {m->xb[0], m->xb[1], m->xb[2]};
        const float *mk[BALM_NMOD] = {m->mb[0], m->mb[1], m->mb[2]};
        float *y[BALM_NMOD] = {m->yb[0], m->yb[1], m->yb[2]};
        double tf = balm_now_s();
        if ((st = balm_fcm_forward(m->fcm, T, B, x, mk, y)))
            return st;
        m->t_fcm += balm_now_s() - tf;
        for (int k = 0; k < BALM_NMOD; k++) {
            size_t d = m->cfg.d[k];
            for (r = 0; r < N; r++)
                memcpy(m->xg[k] + r * d, m->yb[k] + m->rowpos[r] * d, d * sizeof(float));
        }
    }
    double t1 = balm_now_s();
    for (int k = 0; k < BALM_NMOD; k++) {
        if ((st = balm_linear_forward(m->lin_enc[k], N, m->xg[k], m->W[k], m->b[k], m->hg[k])))
            return st;
        float *hk = m->hg[k];
        for (size_t i = 0; i < N * h; i++)
            hk[i] = hk[i] > 0.0f ? hk[i] : 0.0f;
        for (r = 0; r < N; r++)
            memcpy(m->H + r * F + (size_t)k * h, hk + r * h, h * sizeof(float));
    }
    if ((st = balm_linear_forward(m->lin_fused, N, m->H, m->fW, m->fb, m->logits)))
        return st;
    m->t_dense += balm_now_s() - t1;
    if (C > 1)
        for (r = 0; r < N; r++) {
            const float *z = m->logits + r * C;
            float *p = m->prob + r * C, mx = z[0];
            for (size_t c = 1; c < C; c++)
                mx = z[c] > mx ? z[c] : mx;
            double sum = 0;
            for (size_t c = 0; c < C; c++)
                sum += (p[c] = expf(z[c] - mx));
            for (size_t c = 0; c < C; c++)
                p[c] = (float)(p[c] / sum);
        }
    *n_out = N;
    return BALM_OK;
}

const float *balm_model_probs(const balm_model *m)
{
    return m->prob;
}

balm_status balm_model_backward(balm_model *m, double *loss_out, int grad)
{
    size_t N = m->N, C = m->C, h = m->h, F = BALM_NMOD * h;
    balm_status st;
    double loss = 0;
    float inv = N ? 1.0f / (float)N : 0.0f;
    for (size_t r = 0; r < N; r++) {
        const float *z = m->logits + r * C;
        float *dz = m->dlogits + r * C;
        if (C == 1) {
            float e = z[0] - m->labels[r];
            loss += (double)e * e;
            dz[0] = 2.0f * e * inv;
        } else {
            size_t y = (size_t)m->labels[r];
            const float *p = m->prob + r * C;
            float mx = z[0];
            double sum = 0;
            for (size_t c = 1; c < C; c++)
                mx = z[c] > mx ? z[c] : mx;
            for (size_t c = 0; c < C; c++)
                sum += exp((double)(z[c] - mx));
            loss += log(sum) - (double)(z[y] - mx); /* log-sum-exp: finite for any logits */
            for (size_t c = 0; c < C; c++)
                dz[c] = (p[c] - (c == y ? 1.0f : 0.0f)) * inv;
        }
    }
    *loss_out = N ? loss / (double)N : 0.0;
    if (!grad)
        return BALM_OK;
    double t1 = balm_now_s();
    if ((st = balm_linear_backward_weights(m->lin_fused, N, m->dlogits, m->H, m->gfW, m->gfb, 0)) ||
        (st = balm_linear_backward_data(m->lin_fused, N, m->dlogits, m->fW, m->dH, 0)))
        return st;
    for (int k = 0; k < BALM_NMOD; k++) {
        const float *hk = m->hg[k];
        float *dk = m->dh[k];
        for (size_t r = 0; r < N; r++)
            for (size_t j = 0; j < h; j++)
                dk[r * h + j] = hk[r * h + j] > 0.0f ? m->dH[r * F + (size_t)k * h + j] : 0.0f;
        if ((st = balm_linear_backward_weights(m->lin_enc[k], N, dk, m->xg[k], m->gW[k], m->gb[k], 0)))
            return st;
        if (m->fcm &&
            (st = balm_linear_backward_data(m->lin_enc[k], N, dk, m->W[k], m->dxg[k], 0)))
            return st;
    }
    m->t_dense += balm_now_s() - t1;
    if (m->fcm) {
        double tf = balm_now_s();
        size_t T = m->T, B = m->B;
        for (int k = 0; k < BALM_NMOD; k++) {
            size_t d = m->cfg.d[k];
            memset(m->dyb[k], 0, T * B * d * sizeof(float)); /* padding gets no gradient */
            for (size_t r = 0; r < N; r++)
                memcpy(m->dyb[k] + m->rowpos[r] * d, m->dxg[k] + r * d, d * sizeof(float));
        }
        const float *dy[BALM_NMOD] = {m->dyb[0], m->dyb[1], m->dyb[2]};
        float *dx[BALM_NMOD] = {m->dxb[0], m->dxb[1], m->dxb[2]};
        if ((st = balm_fcm_backward(m->fcm, dy, dx, 0)))
            return st;
        m->t_fcm += balm_now_s() - tf;
    }
    return BALM_OK;
}

void balm_model_predict(const balm_model *m, int *pred)
{
    size_t C = m->C;
    for (size_t r = 0; r < m->N; r++) {
        const float *z = m->logits + r * C;
        if (C == 1) {
            pred[r] = z[0] > 0.0f;
            continue;
        }
        size_t best = 0;
        for (size_t c = 1; c < C; c++)
            if (z[c] > z[best])
                best = c;
        pred[r] = (int)best;
    }
}

void balm_model_timing(balm_model *m, double *fcm_s, double *dense_s, int reset)
{
    *fcm_s = m->t_fcm;
    *dense_s = m->t_dense;
    if (reset)
        m->t_fcm = m->t_dense = 0;
}

/* ------------------------------------------------------------------ Adam */
struct balm_adam {
    const balm_param *list;
    size_t n;
    float lr, l2;
    float **mom, **var;
    long step;
};

void balm_adam_destroy(balm_adam *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        if (a->mom)
            free(a->mom[i]);
        if (a->var)
            free(a->var[i]);
    }
    free(a->mom);
    free(a->var);
    free(a);
}

balm_status balm_adam_create(const balm_param *list, size_t n, float lr, float l2, balm_adam **out)
{
    int bad = 0;
    balm_adam *a = calloc(1, sizeof *a);
    if (!a)
        return balm_fail(BALM_ERR_NOMEM, "balm_adam_create: no memory");
    a->list = list;
    a->n = n;
    a->lr = lr;
    a->l2 = l2;
    a->mom = calloc(n ? n : 1, sizeof *a->mom);
    a->var = calloc(n ? n : 1, sizeof *a->var);
    bad = !a->mom || !a->var;
    for (size_t i = 0; i < n && !bad; i++) {
        a->mom[i] = falloc(list[i].n, &bad);
        a->var[i] = falloc(list[i].n, &bad);
    }
    if (bad) {
        balm_adam_destroy(a);
        return balm_fail(BALM_ERR_NOMEM, "balm_adam_create: no memory for the moments");
    }
    *out = a;
    return BALM_OK;
}

void balm_adam_step(balm_adam *a)
{
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    a->step++;
    float bc1 = 1.0f - powf(b1, (float)a->step), bc2 = 1.0f - powf(b2, (float)a->step);
    float step_size = a->lr / bc1, sq2 = sqrtf(bc2);
    for (size_t i = 0; i < a->n; i++) {
        float *p = a->list[i].p, *g = a->list[i].g, *mo = a->mom[i], *v = a->var[i];
        for (size_t k = 0; k < a->list[i].n; k++) {
            float gk = g[k] + a->l2 * p[k]; /* L2 added to the gradient, as torch.optim.Adam */
            mo[k] = b1 * mo[k] + (1.0f - b1) * gk;
            v[k] = b2 * v[k] + (1.0f - b2) * gk * gk;
            p[k] -= step_size * mo[k] / (sqrtf(v[k]) / sq2 + eps);
        }
    }
}

float *balm_adam_moment(balm_adam *a, size_t i, int second)
{
    return i < a->n ? (second ? a->var[i] : a->mom[i]) : NULL;
}

uint64_t balm_adam_get_step(const balm_adam *a)
{
    return (uint64_t)a->step;
}

void balm_adam_set_step(balm_adam *a, uint64_t step)
{
    a->step = (long)step;
}

double balm_clip_grad_norm(const balm_param *list, size_t n, double max_norm)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < list[i].n; k++)
            ss += (double)list[i].g[k] * list[i].g[k];
    double norm = sqrt(ss), coef = max_norm / (norm + 1e-6);
    if (coef < 1.0)
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < list[i].n; k++)
                list[i].g[k] *= (float)coef;
    return norm;
}
