/* The training run: data, missing patterns, model, GRM, epochs, evaluation,
 * progress output, JSONL log, checkpoints and the --check-isa shadow check.
 *
 * Step (upstream's order): forward; task loss (+ tau * loss_gm of the
 * previous step, whose gradient goes to the fused weight only); backward; GRM
 * (heads step, KL, cos, coefficients, encoder gradients rescaled inside the
 * epoch window); backbone gradients clipped to L2 norm 2.0; Adam. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "balm/grm.h"
#include "internal.h"
#include "trainer.h"

#define CLIP_NORM 2.0
#define BALM_EPOCHS_MAX 100000 /* --epochs' upper bound (options.c) */

void balm_f1_acc(size_t n, size_t C, const int *pred, const int *truth, double *f1, double *acc)
{
    size_t correct = 0;
    size_t *tp = calloc(C, sizeof *tp), *np = calloc(C, sizeof *np), *nt = calloc(C, sizeof *nt);
    if (!tp || !np || !nt || n == 0) {
        *f1 = *acc = 0;
        free(tp);
        free(np);
        free(nt);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        np[pred[i]]++;
        nt[truth[i]]++;
        if (pred[i] == truth[i]) {
            tp[pred[i]]++;
            correct++;
        }
    }
    double w = 0;
    for (size_t c = 0; c < C; c++)
        if (nt[c] && tp[c]) /* F1_c = 2 tp / (pred_c + true_c); 0 without hits */
            w += (double)nt[c] * (2.0 * (double)tp[c] / (double)(np[c] + nt[c]));
    *f1 = w / (double)n;
    *acc = (double)correct / (double)n;
    free(tp);
    free(np);
    free(nt);
}

/* ------------------------------------------------------------ run state */
/* Words of the checkpoint's "run.state" tensor (u64, stored bit-for-bit as
 * 2 floats each; doubles and floats as their bit patterns). The ST_O_* words
 * are the training flags a resumed run must repeat. */
enum {
    ST_EPOCHS, ST_BEST_EPOCH, ST_BEST_F1, ST_BEST_ACC, ST_LAST_LOSS, ST_LAST_VF1, ST_LAST_VACC,
    ST_ADAM_T, ST_HAVE_DGM, ST_LOSS_GM, ST_GRM_HAVE_PREV, ST_GRM_T, ST_GRM_NOISE, ST_GRM_KL,
    ST_O_SEED = ST_GRM_KL + BALM_NMOD, ST_O_BATCH, ST_O_LIMIT, ST_O_LR, ST_O_L2, ST_O_TAU, ST_O_RHO,
    ST_O_NOISE, ST_O_MASK, ST_O_START, ST_O_END, ST_O_RATES,
    ST_WORDS = ST_O_RATES + BALM_NMOD
};

typedef struct run {
    const balm_train_opts *o;
    balm_dataset ds;
    balm_model *model;
    balm_grm *grm;
    balm_adam *adam;
    const balm_param *params;
    size_t nparams, max_T, max_rows, C;
    int32_t *lab32;
    float *dgm, *dgm_next; /* direction-loss gradient for the fused weight */
    int have_dgm;
    float loss_gm;
    const balm_param *fused; /* the fused classifier's weight */
    int *pred, *truth, *hpred;
    size_t *order;
    float *hbuf;           /* head hidden activations [rows][3h] */
    float **best;          /* snapshot of the best-validation weights */
    float **cur;           /* the last epoch's weights, for checkpoints */
    balm_tensor_ref *tensors; /* the live weights: backbone, then GRM heads */
    size_t ntensors, nheads;
    balm_tensor_ref *ck;   /* checkpoint list (see ck_build) */
    char **ck_names;
    size_t nck, ck_dgm;
    uint64_t state[ST_WORDS]; /* the run's scalars, saved as tensor "run.state" */
    FILE *log;             /* --log, written to log_tmp and renamed when whole */
    char log_tmp[4200];
    int tty;
    double t_grm;
} run;

/* Splits the metrics and per-modality GRM values of one pass. */
typedef struct pass_stats {
    double loss, f1, acc;
    double kl[BALM_NMOD], coeff[BALM_NMOD], cos[BALM_NMOD];
    double head_acc[BALM_NMOD];
    size_t n, steps;
} pass_stats;

/* The library's messages begin with the internal function's name
 * ("balm_holdout: ..."), which means nothing to the CLI user: drop it. */
static const char *user_msg(const char *m)
{
    const char *p = m;
    if (strncmp(p, "balm_", 5) != 0)
        return m;
    for (p += 5; (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'; p++)
        ;
    return p[0] == ':' && p[1] == ' ' ? p + 2 : m;
}

static int fail_status(const char *what)
{
    fprintf(stderr, "balm train: %s: %s\n", what, user_msg(balm_last_error()));
    return 1;
}

/* A data set that cannot be loaded: the message, and what to do about the
 * common cases. */
static int fail_data(const balm_train_opts *o)
{
    const char *m = balm_last_error();
    fail_status("loading data");
    if (strstr(m, "to hold out validation")) {
        if (o->limit && o->data_dir)
            fprintf(stderr, "balm train: --limit %zu keeps too few training dialogues to hold out a validation "
                            "split; raise --limit\n", o->limit);
        else if (o->limit) /* Fashion-MNIST's dialogues: 4..24 images */
            fprintf(stderr, "balm train: --limit %zu keeps too few training images to hold out a validation "
                            "split; raise --limit to %d or more\n", o->limit, 2 * BALM_DIALOG_MAX);
        else
            fprintf(stderr, "balm train: the training split needs at least 2 dialogues, or give a validation "
                            "split (valid_*.npy) in --data\n");
    } else if (!o->data_dir && strstr(m, "cannot open")) {
        fprintf(stderr, "balm train: Fashion-MNIST is read from %s (Debian package dataset-fashion-mnist): "
                        "install it, or give --data DIR\n", o->fmnist_dir);
    }
    return 1;
}

/* Head prediction (argmax of W2 relu(W1 x + b1) + b2) for N rows of the
 * features of modality k. */
static void head_predict(run *R, int k, const float *x, size_t N, int *pred)
{
    float *W1, *b1, *W2, *b2;
    size_t n1, n2;
    size_t enc = R->o->hidden, H = BALM_NMOD * enc, C = R->C;
    balm_grm_param(R->grm, k, BALM_GRM_W1, &W1, NULL, NULL, NULL, &n1);
    balm_grm_param(R->grm, k, BALM_GRM_B1, &b1, NULL, NULL, NULL, &n1);
    balm_grm_param(R->grm, k, BALM_GRM_W2, &W2, NULL, NULL, NULL, &n2);
    balm_grm_param(R->grm, k, BALM_GRM_B2, &b2, NULL, NULL, NULL, &n2);
    float *hid = R->hbuf;
    for (size_t r = 0; r < N; r++) {
        const float *xr = x + r * enc;
        for (size_t j = 0; j < H; j++) {
            float s = b1[j];
            for (size_t i = 0; i < enc; i++)
                s += W1[j * enc + i] * xr[i];
            hid[j] = s > 0 ? s : 0;
        }
        size_t best = 0;
        float bv = 0;
        for (size_t c = 0; c < C; c++) {
            float s = b2[c];
            for (size_t j = 0; j < H; j++)
                s += W2[c * H + j] * hid[j];
            if (c == 0 || s > bv) {
                bv = s;
                best = c;
            }
        }
        pred[r] = C == 1 ? bv > 0 : (int)best;
    }
}

static int truth_of(size_t C, float y)
{
    return C == 1 ? y > 0 : (int)y;
}

/* Evaluation pass over a split (no gradients). heads: also the GRM heads'
 * accuracy. */
static balm_status evaluate(run *R, const balm_split *s, int heads, pass_stats *ps)
{
    balm_status st;
    size_t B = R->o->batch_size, at = 0, C = R->C;
    size_t Cm = C == 1 ? 2 : C;
    size_t hit[BALM_NMOD] = {0};
    memset(ps, 0, sizeof *ps);
    for (size_t k = 0; k < s->n_dialogs; k++)
        R->order[k] = k;
    for (size_t k0 = 0; k0 < s->n_dialogs; k0 += B) {
        size_t nb = s->n_dialogs - k0 < B ? s->n_dialogs - k0 : B, N;
        double loss;
        if ((st = balm_model_forward(R->model, s, R->order + k0, nb, &N)) ||
            (st = balm_model_backward(R->model, &loss, 0)))
            return st;
        ps->loss += loss * (double)N;
        balm_model_predict(R->model, R->pred + at);
        const float *lab = balm_model_labels(R->model);
        for (size_t r = 0; r < N; r++)
            R->truth[at + r] = truth_of(C, lab[r]);
        if (heads && R->grm)
            for (int m = 0; m < BALM_NMOD; m++) {
                head_predict(R, m, balm_model_features(R->model, m), N, R->hpred);
                for (size_t r = 0; r < N; r++)
                    hit[m] += R->hpred[r] == R->truth[at + r];
            }
        at += N;
    }
    ps->n = at;
    ps->loss = at ? ps->loss / (double)at : 0;
    balm_f1_acc(at, Cm, R->pred, R->truth, &ps->f1, &ps->acc);
    for (int m = 0; m < BALM_NMOD; m++)
        ps->head_acc[m] = heads && R->grm && at ? (double)hit[m] / (double)at : -1;
    return BALM_OK;
}

static void progress(run *R, int epoch, size_t done, size_t total, double loss, double ups)
{
    if (!R->tty || R->o->quiet)
        return;
    fprintf(stdout, "\r\033[Kepoch %d/%d  %3.0f%%  loss %.4f  %.0f utt/s", epoch, R->o->epochs,
            100.0 * (double)done / (double)(total ? total : 1), loss, ups);
    fflush(stdout);
}

/* One training epoch. */
static balm_status train_epoch(run *R, int epoch, pass_stats *ps, double *ups)
{
    balm_status st;
    const balm_train_opts *o = R->o;
    balm_split *s = &R->ds.train;
    size_t B = o->batch_size, at = 0, C = R->C, Cm = C == 1 ? 2 : C;
    balm_rng rng = {o->seed ^ 0x6570636full, (uint64_t)epoch << 40};
    double t0 = balm_now_s(), last_draw = 0;
    size_t fused_n = R->fused->n;
    float *gfW = R->fused->g;
    memset(ps, 0, sizeof *ps);
    for (size_t k = 0; k < s->n_dialogs; k++)
        R->order[k] = k;
    balm_rng_shuffle(&rng, R->order, s->n_dialogs);
    for (size_t k0 = 0; k0 < s->n_dialogs; k0 += B) {
        size_t nb = s->n_dialogs - k0 < B ? s->n_dialogs - k0 : B, N;
        double loss;
        if ((st = balm_model_forward(R->model, s, R->order + k0, nb, &N)) ||
            (st = balm_model_backward(R->model, &loss, 1)))
            return st;
        balm_model_predict(R->model, R->pred + at);
        const float *lab = balm_model_labels(R->model);
        for (size_t r = 0; r < N; r++)
            R->truth[at + r] = truth_of(C, lab[r]);
        if (R->grm) {
            balm_grm_report rep;
            balm_grm_input in;
            memset(&in, 0, sizeof in);
            /* the previous step's direction loss: + tau * loss_gm, gradient on W_f */
            if (R->have_dgm)
                for (size_t i = 0; i < fused_n; i++)
                    gfW[i] += o->tau * R->dgm[i];
            in.N = N;
            for (int m = 0; m < BALM_NMOD; m++)
                in.feat[m] = balm_model_features(R->model, m);
            in.fused_out = balm_model_logits(R->model);
            if (C > 1) {
                for (size_t r = 0; r < N; r++)
                    R->lab32[r] = (int32_t)lab[r];
                in.labels = R->lab32;
            } else {
                in.targets = lab;
            }
            in.fused_w = R->fused->p; /* before this step's update */
            in.epoch = epoch;
            double tg = balm_now_s();
            st = balm_grm_step(R->grm, &in, R->dgm_next, &rep);
            R->t_grm += balm_now_s() - tg;
            if (st)
                return st;
            if (R->have_dgm)
                loss += o->tau * R->loss_gm; /* reported as upstream: task + tau * loss_gm */
            R->loss_gm = rep.loss_gm;
            float *sw = R->dgm;
            R->dgm = R->dgm_next;
            R->dgm_next = sw;
            R->have_dgm = 1;
            for (int m = 0; m < BALM_NMOD; m++) {
                ps->kl[m] += rep.kl[m];
                ps->coeff[m] += rep.coeff[m];
                ps->cos[m] += rep.cos[m];
            }
        }
        balm_clip_grad_norm(R->params, R->nparams, CLIP_NORM);
        balm_adam_step(R->adam);
        ps->loss += loss * (double)N;
        ps->steps++;
        at += N;
        double t = balm_now_s();
        if (t - last_draw > 0.25) {
            progress(R, epoch, k0 + nb, s->n_dialogs, ps->loss / (double)at, (double)at / (t - t0));
            last_draw = t;
        }
    }
    *ups = (double)at / (balm_now_s() - t0 + 1e-12);
    ps->n = at;
    ps->loss = at ? ps->loss / (double)at : 0;
    balm_f1_acc(at, Cm, R->pred, R->truth, &ps->f1, &ps->acc);
    for (int m = 0; m < BALM_NMOD; m++) {
        double k = ps->steps ? (double)ps->steps : 1;
        ps->kl[m] /= k;
        ps->coeff[m] /= k;
        ps->cos[m] /= k;
    }
    return BALM_OK;
}

static uint32_t params_crc(run *R)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t i = 0; i < R->nparams; i++)
        crc = crc32(crc, (const unsigned char *)R->params[i].p, (uInt)(R->params[i].n * sizeof(float)));
    return (uint32_t)crc;
}

/* save: live weights -> buf; else buf -> live weights. */
static void snapshot_to(run *R, float **buf, int save)
{
    for (size_t i = 0; i < R->ntensors; i++) {
        if (save)
            memcpy(buf[i], R->tensors[i].data, R->tensors[i].count * sizeof(float));
        else
            memcpy(R->tensors[i].data, buf[i], R->tensors[i].count * sizeof(float));
    }
}

static void snapshot(run *R, int save)
{
    snapshot_to(R, R->best, save);
}

/* --check-isa: print and check the shadow statistics of the epoch (epoch 0:
 * the final test pass). */
static int check_isa_report(run *R, int epoch, double *run_max)
{
    balm_shadow_stat st[64];
    size_t n = balm_shadow_stats(st, 64, 1), bad = 0;
    double emax = 0;
    if (n > 64)
        n = 64;
    if (!R->o->quiet && balm_isa_active() != BALM_ISA_SCALAR) {
        char what[32];
        snprintf(what, sizeof what, epoch ? "epoch %d" : "test pass", epoch);
        printf("  check-isa %s (%s vs scalar, tolerance %.0e):", what, balm_isa_name(balm_isa_active()),
               R->o->check_tol);
        for (size_t i = 0; i < n; i++)
            if (st[i].calls)
                printf(" %s %.2e", st[i].kernel, st[i].max_rel);
        printf("\n");
    }
    if (R->log) { /* a field of the epoch's (or the final) JSON object */
        fprintf(R->log, ",\"check_isa\":{");
        int first = 1;
        for (size_t i = 0; i < n; i++)
            if (st[i].calls) {
                fprintf(R->log, "%s\"%s\":{\"calls\":%llu,\"max_rel\":%.6g}", first ? "" : ",",
                        st[i].kernel, (unsigned long long)st[i].calls, st[i].max_rel);
                first = 0;
            }
        fprintf(R->log, "}");
    }
    for (size_t i = 0; i < n; i++) {
        if (st[i].calls && !(st[i].max_rel <= R->o->check_tol)) {
            fprintf(stderr, "balm train: --check-isa: kernel %s differs from its scalar twin by %.3e (> %.0e)\n",
                    st[i].kernel, st[i].max_rel, R->o->check_tol);
            bad++;
        }
        if (st[i].max_rel > emax || st[i].max_rel != st[i].max_rel)
            emax = st[i].max_rel;
    }
    if (emax > *run_max || emax != emax)
        *run_max = emax;
    return bad ? 1 : 0;
}

static void run_free(run *R)
{
    for (size_t i = 0; i < R->ntensors; i++) {
        if (R->best)
            free(R->best[i]);
        if (R->cur)
            free(R->cur[i]);
    }
    free(R->best);
    free(R->cur);
    if (R->ck_names)
        for (size_t i = 0; i < R->nck; i++)
            free(R->ck_names[i]);
    free(R->ck_names);
    free(R->ck);
    free(R->tensors);
    free(R->lab32);
    free(R->dgm);
    free(R->dgm_next);
    free(R->pred);
    free(R->truth);
    free(R->hpred);
    free(R->order);
    free(R->hbuf);
    balm_adam_destroy(R->adam);
    balm_grm_destroy(R->grm);
    balm_model_destroy(R->model);
    balm_dataset_free(&R->ds);
    if (R->log) { /* a failed run: the previous log stays as it was */
        fclose(R->log);
        unlink(R->log_tmp);
    }
}

/* Whether the folder that will hold `path` exists and can be written. */
static int dir_writable(const char *path)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return access(".", W_OK | X_OK) == 0;
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    return access(dir, W_OK | X_OK) == 0;
}

/* The JSON log goes to a temporary file beside it, renamed over --log once
 * the run's lines are complete: a run that fails or is killed never leaves a
 * truncated log or clobbers the previous one. */
static int log_open(run *R, const char *path)
{
    snprintf(R->log_tmp, sizeof R->log_tmp, "%s.tmp.%ld", path, (long)getpid());
    if (!(R->log = fopen(R->log_tmp, "w"))) {
        fprintf(stderr, "balm train: --log: cannot write '%s': %s\n", R->log_tmp, strerror(errno));
        return 1;
    }
    return 0;
}

static int log_commit(run *R, const char *path)
{
    int bad = fflush(R->log) != 0 || fsync(fileno(R->log)) != 0;
    bad |= fclose(R->log) != 0;
    R->log = NULL;
    if (bad || rename(R->log_tmp, path) != 0) {
        fprintf(stderr, "balm train: --log: cannot write '%s': %s\n", path, strerror(errno));
        unlink(R->log_tmp);
        return 1;
    }
    return 0;
}

static size_t longest_dialog(const balm_split *s)
{
    size_t T = 0;
    for (size_t k = 0; k < s->n_dialogs; k++)
        if (s->dialog[k + 1] - s->dialog[k] > T)
            T = s->dialog[k + 1] - s->dialog[k];
    return T;
}

static int ck_add(run *R, const char *prefix, const char *name, float *data, size_t count)
{
    size_t len = strlen(prefix) + strlen(name) + 1;
    char *nm = malloc(len);
    if (!nm)
        return 1;
    snprintf(nm, len, "%s%s", prefix, name);
    R->ck_names[R->nck] = nm;
    R->ck[R->nck].name = nm;
    R->ck[R->nck].data = data;
    R->ck[R->nck].count = count;
    R->nck++;
    return 0;
}

/* The checkpoint's tensors: the best-validation weights under the model's
 * names (what --epochs 0 evaluates), then what resuming needs: the last
 * epoch's weights ("last."), the backbone's and the heads' Adam moments
 * (written and read in place), the direction gradient carried to the next
 * step, and the run's scalars. */
static int ck_build(run *R)
{
    size_t cap = 2 * R->ntensors + 2 * R->nparams + 2 * R->nheads + 2;
    R->ck = calloc(cap, sizeof *R->ck);
    R->ck_names = calloc(cap, sizeof *R->ck_names);
    if (!R->ck || !R->ck_names)
        return 1;
    int bad = 0;
    for (size_t i = 0; i < R->ntensors; i++)
        bad |= ck_add(R, "", R->tensors[i].name, R->best[i], R->tensors[i].count);
    for (size_t i = 0; i < R->ntensors; i++)
        bad |= ck_add(R, "last.", R->tensors[i].name, R->cur[i], R->tensors[i].count);
    for (int second = 0; second < 2; second++) {
        const char *pre = second ? "adam_v." : "adam_m.";
        for (size_t i = 0; i < R->nparams; i++)
            bad |= ck_add(R, pre, R->params[i].name, balm_adam_moment(R->adam, i, second), R->params[i].n);
        for (size_t j = 0; j < R->nheads; j++) {
            float *mo, *va;
            size_t n;
            balm_grm_param(R->grm, (int)(j / BALM_GRM_NPARAM), (balm_grm_param_id)(j % BALM_GRM_NPARAM), NULL,
                           NULL, &mo, &va, &n);
            bad |= ck_add(R, pre, R->tensors[R->nparams + j].name, second ? va : mo, n);
        }
    }
    if (R->grm) { /* R->dgm swaps with dgm_next every step: fill_state re-points it */
        R->ck_dgm = R->nck;
        bad |= ck_add(R, "", "dfused_w", R->dgm, R->fused->n);
    }
    /* u64 words kept bit-for-bit in float slots: only ever memcpy'd */
    bad |= ck_add(R, "", "run.state", (float *)(void *)R->state, 2 * ST_WORDS);
    return bad;
}

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* The training flags a resumed run must repeat to continue exactly. */
static void opts_words(const balm_train_opts *o, uint64_t *w)
{
    w[ST_O_SEED] = o->seed;
    w[ST_O_BATCH] = o->batch_size;
    w[ST_O_LIMIT] = o->limit;
    w[ST_O_LR] = dbits(o->lr);
    w[ST_O_L2] = dbits(o->l2);
    w[ST_O_TAU] = dbits(o->tau);
    w[ST_O_RHO] = dbits(o->rho);
    w[ST_O_NOISE] = (uint64_t)o->noise;
    w[ST_O_MASK] = (uint64_t)o->mask_order;
    w[ST_O_START] = (uint64_t)(int64_t)o->start_epoch;
    w[ST_O_END] = (uint64_t)(int64_t)o->end_epoch;
    for (int m = 0; m < BALM_NMOD; m++)
        w[ST_O_RATES + m] = dbits(o->rates[m]);
}

/* Names the first flag that differs from the checkpoint's; 0 if none. */
static int opts_differ(const run *R, const uint64_t *now, char *msg, size_t len)
{
    static const struct {
        int word, is_double;
        const char *flag;
    } f[] = {{ST_O_SEED, 0, "--seed"},   {ST_O_BATCH, 0, "--batch-size"}, {ST_O_LIMIT, 0, "--limit"},
             {ST_O_LR, 1, "--lr"},       {ST_O_L2, 1, "--l2"},            {ST_O_TAU, 1, "--tau"},
             {ST_O_RHO, 1, "--rho"},     {ST_O_NOISE, 0, "noise (--no-noise)"},
             {ST_O_MASK, 0, "--mask-order (0 upstream, 1 shuffled)"},
             {ST_O_START, 0, "--start-epoch"}, {ST_O_END, 0, "--end-epoch (0: the last)"},
             {ST_O_RATES + BALM_A, 1, "--missing-rates (a)"}, {ST_O_RATES + BALM_L, 1, "--missing-rates (l)"},
             {ST_O_RATES + BALM_V, 1, "--missing-rates (v)"}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        uint64_t a = R->state[f[i].word], b = now[f[i].word];
        if (a == b)
            continue;
        if (f[i].is_double)
            snprintf(msg, len, "%s was %.9g, now %.9g", f[i].flag, bitsd(a), bitsd(b));
        else
            snprintf(msg, len, "%s was %llu, now %llu", f[i].flag, (unsigned long long)a,
                     (unsigned long long)b);
        return 1;
    }
    return 0;
}

static int setup(run *R)
{
    const balm_train_opts *o = R->o;
    balm_status st;
    static const char *head_name[BALM_NMOD][BALM_GRM_NPARAM] = {
        {"head_l.w1", "head_l.b1", "head_l.w2", "head_l.b2"},
        {"head_a.w1", "head_a.b1", "head_a.w2", "head_a.b2"},
        {"head_v.w1", "head_v.b1", "head_v.w2", "head_v.b2"}};

    if (o->data_dir)
        st = balm_npydata_load(o->data_dir, o->limit, o->seed, &R->ds);
    else
        st = balm_fmnist_load(o->fmnist_dir, o->limit, o->test_limit, o->seed, &R->ds);
    if (st)
        return fail_data(o);
    balm_split *sp[3] = {&R->ds.train, &R->ds.valid, &R->ds.test};
    for (int s = 0; s < 3; s++) {
        if ((st = balm_imr_apply(sp[s], R->ds.d, o->rates, o->mask_order, o->seed ^ (0x696d72ull + (uint64_t)s))))
            return fail_status("missing patterns");
        size_t T = longest_dialog(sp[s]);
        R->max_T = T > R->max_T ? T : R->max_T;
    }
    R->C = R->ds.n_classes;
    size_t maxB = o->batch_size, nmax = 0;
    for (int s = 0; s < 3; s++) {
        nmax = sp[s]->n > nmax ? sp[s]->n : nmax;
        nmax = sp[s]->n_dialogs > nmax ? sp[s]->n_dialogs : nmax;
    }
    balm_model_cfg mc;
    memset(&mc, 0, sizeof mc);
    for (int m = 0; m < BALM_NMOD; m++)
        mc.d[m] = R->ds.d[m];
    mc.hidden = o->hidden;
    mc.n_classes = R->C;
    mc.d_global = o->d_global;
    mc.max_T = R->max_T;
    mc.max_B = maxB;
    mc.balm = o->balm;
    mc.seed = o->seed;
    if ((st = balm_model_create(&mc, &R->model)))
        return fail_status("creating the model");
    R->nparams = balm_model_params(R->model, &R->params);
    for (size_t i = 0; i < R->nparams; i++)
        if (!strcmp(R->params[i].name, "fused.weight"))
            R->fused = &R->params[i];
    R->max_rows = R->max_T * maxB;
    size_t F = balm_model_fused_in(R->model);
    R->order = malloc((nmax + 1) * sizeof *R->order);
    R->pred = malloc((nmax + 1) * sizeof *R->pred);
    R->truth = malloc((nmax + 1) * sizeof *R->truth);
    R->hpred = malloc((R->max_rows + 1) * sizeof *R->hpred);
    R->lab32 = malloc((R->max_rows + 1) * sizeof *R->lab32);
    R->hbuf = malloc((F + 1) * sizeof *R->hbuf);
    R->dgm = calloc(R->C * F, sizeof(float));
    R->dgm_next = calloc(R->C * F, sizeof(float));
    if (!R->order || !R->pred || !R->truth || !R->hpred || !R->lab32 || !R->hbuf || !R->dgm ||
        !R->dgm_next) {
        fprintf(stderr, "balm train: out of memory\n");
        return 1;
    }
    if (o->balm) {
        balm_grm_config gc = balm_grm_config_default();
        gc.C = R->C;
        gc.H = F;
        for (int m = 0; m < BALM_NMOD; m++)
            gc.enc[m] = o->hidden;
        gc.max_N = R->max_rows;
        gc.rho = o->rho;
        gc.tau = o->tau;
        gc.start_epoch = o->start_epoch;
        gc.end_epoch = o->end_epoch ? o->end_epoch : (o->epochs > o->start_epoch ? o->epochs : o->start_epoch);
        gc.noise = o->noise;
        gc.seed = o->seed ^ 0x67726dull;
        gc.lr = o->lr;
        gc.weight_decay = o->l2;
        if ((st = balm_grm_create(&gc, &R->grm)))
            return fail_status("creating the GRM");
        for (size_t i = 0; i < R->nparams; i++)
            if (R->params[i].modality >= 0 &&
                (st = balm_grm_register(R->grm, R->params[i].modality, R->params[i].g, R->params[i].n,
                                        R->params[i].name, NULL)))
                return fail_status("registering encoder gradients");
    }
    if ((st = balm_adam_create(R->params, R->nparams, o->lr, o->l2, &R->adam)))
        return fail_status("creating the optimizer");
    /* checkpoint / snapshot list: the backbone, then the GRM heads */
    R->nheads = R->grm ? BALM_NMOD * BALM_GRM_NPARAM : 0;
    R->ntensors = R->nparams + R->nheads;
    R->tensors = calloc(R->ntensors, sizeof *R->tensors);
    R->best = calloc(R->ntensors, sizeof *R->best);
    R->cur = calloc(R->ntensors, sizeof *R->cur);
    if (!R->tensors || !R->best || !R->cur) {
        fprintf(stderr, "balm train: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < R->nparams; i++) {
        R->tensors[i].name = R->params[i].name;
        R->tensors[i].data = R->params[i].p;
        R->tensors[i].count = R->params[i].n;
    }
    for (int m = 0; m < BALM_NMOD && R->grm; m++)
        for (int j = 0; j < BALM_GRM_NPARAM; j++) {
            balm_tensor_ref *t = &R->tensors[R->nparams + (size_t)m * BALM_GRM_NPARAM + (size_t)j];
            t->name = head_name[m][j];
            balm_grm_param(R->grm, m, (balm_grm_param_id)j, &t->data, NULL, NULL, NULL, &t->count);
        }
    for (size_t i = 0; i < R->ntensors; i++)
        if (!(R->best[i] = malloc(R->tensors[i].count * sizeof(float) + 1)) ||
            !(R->cur[i] = malloc(R->tensors[i].count * sizeof(float) + 1))) {
            fprintf(stderr, "balm train: out of memory\n");
            return 1;
        }
    snapshot(R, 1); /* no epoch yet: the initial weights are the best */
    if (ck_build(R)) {
        fprintf(stderr, "balm train: out of memory\n");
        return 1;
    }
    return 0;
}

static void model_meta(run *R, uint64_t meta[BALM_CKPT_META])
{
    meta[0] = R->ds.d[BALM_L];
    meta[1] = R->ds.d[BALM_A];
    meta[2] = R->ds.d[BALM_V];
    meta[3] = R->o->hidden;
    meta[4] = R->C;
    size_t dg = R->o->d_global ? R->o->d_global : (R->ds.d[0] + R->ds.d[1] + R->ds.d[2]) / 4;
    meta[5] = R->o->balm ? (dg ? dg : 1) : 0; /* as balm_model_create picks it */
    meta[6] = (uint64_t)R->o->balm;
    meta[7] = 0;
}

/* The run's scalars for --save (after the test pass: nothing of the
 * training state changes in it). */
static void fill_state(run *R, const balm_train_result *res)
{
    uint64_t *w = R->state;
    memset(w, 0, ST_WORDS * sizeof *w);
    w[ST_EPOCHS] = (uint64_t)res->epochs_run;
    w[ST_BEST_EPOCH] = (uint64_t)res->best_epoch;
    w[ST_BEST_F1] = dbits(res->best_epoch ? res->best_val_f1 : -1);
    w[ST_BEST_ACC] = dbits(res->best_epoch ? res->best_val_acc : -1);
    w[ST_LAST_LOSS] = dbits(res->last_loss);
    w[ST_LAST_VF1] = dbits(res->last_val_f1);
    w[ST_LAST_VACC] = dbits(res->last_val_acc);
    w[ST_ADAM_T] = balm_adam_get_step(R->adam);
    w[ST_HAVE_DGM] = (uint64_t)R->have_dgm;
    w[ST_LOSS_GM] = dbits(R->loss_gm);
    if (R->grm) {
        balm_grm_state gs;
        balm_grm_get_state(R->grm, &gs);
        w[ST_GRM_HAVE_PREV] = (uint64_t)gs.have_prev;
        w[ST_GRM_T] = gs.adam_steps;
        w[ST_GRM_NOISE] = gs.noise_offset;
        for (int m = 0; m < BALM_NMOD; m++)
            w[ST_GRM_KL + m] = dbits(gs.prev_kl[m]);
        R->ck[R->ck_dgm].data = R->dgm;
    }
    opts_words(R->o, w);
}

/* --load: the whole training state. --epochs is the total: a checkpoint of
 * k epochs continues with epochs k+1..--epochs (the same training flags
 * needed), or with --epochs 0 (or k) only evaluates its best weights. */
static int resume(run *R, int *done, int *best_epoch, double *best_f1, double *best_acc,
                  balm_train_result *res)
{
    const balm_train_opts *o = R->o;
    uint64_t meta[BALM_CKPT_META], now[ST_WORDS];
    model_meta(R, meta);
    if (R->grm)
        R->ck[R->ck_dgm].data = R->dgm;
    if (balm_ckpt_load(o->load_path, meta, R->ck, R->nck))
        return fail_status("--load");
    const uint64_t *w = R->state;
    char why[256];
    if (w[ST_EPOCHS] > (uint64_t)BALM_EPOCHS_MAX || w[ST_BEST_EPOCH] > w[ST_EPOCHS] || w[ST_HAVE_DGM] > 1) {
        fprintf(stderr, "balm train: --load: '%s' holds an impossible training state (%llu epochs, best %llu)\n",
                o->load_path, (unsigned long long)w[ST_EPOCHS], (unsigned long long)w[ST_BEST_EPOCH]);
        return 1;
    }
    *done = (int)w[ST_EPOCHS];
    if (o->epochs && o->epochs < *done) {
        fprintf(stderr,
                "balm train: --load: '%s' has %d epochs done already; --epochs is the total: give more than %d "
                "to continue training it, or --epochs 0 to evaluate it\n",
                o->load_path, *done, *done);
        return 1;
    }
    opts_words(o, now);
    if (o->epochs > *done && opts_differ(R, now, why, sizeof why)) {
        fprintf(stderr,
                "balm train: --load: '%s' was trained with other flags (%s); resuming needs the same training "
                "flags (or --epochs 0 to evaluate it)\n",
                o->load_path, why);
        return 1;
    }
    if (R->grm) {
        balm_grm_state gs;
        memset(&gs, 0, sizeof gs);
        gs.have_prev = (int)w[ST_GRM_HAVE_PREV];
        gs.adam_steps = w[ST_GRM_T];
        gs.noise_offset = w[ST_GRM_NOISE];
        for (int m = 0; m < BALM_NMOD; m++)
            gs.prev_kl[m] = (float)bitsd(w[ST_GRM_KL + m]);
        if (w[ST_GRM_HAVE_PREV] > 1 || balm_grm_set_state(R->grm, &gs))
            return fail_status("--load: the GRM state");
    }
    balm_adam_set_step(R->adam, w[ST_ADAM_T]);
    R->have_dgm = (int)w[ST_HAVE_DGM];
    R->loss_gm = (float)bitsd(w[ST_LOSS_GM]);
    *best_epoch = (int)w[ST_BEST_EPOCH];
    *best_f1 = bitsd(w[ST_BEST_F1]);
    *best_acc = bitsd(w[ST_BEST_ACC]);
    res->last_loss = bitsd(w[ST_LAST_LOSS]);
    res->last_val_f1 = bitsd(w[ST_LAST_VF1]);
    res->last_val_acc = bitsd(w[ST_LAST_VACC]);
    snapshot_to(R, R->cur, 0); /* train on from the last epoch's weights */
    return 0;
}

static void json_mods(FILE *f, const char *key, const double *v)
{
    fprintf(f, ",\"%s\":{\"l\":%.6g,\"a\":%.6g,\"v\":%.6g}", key, v[BALM_L], v[BALM_A], v[BALM_V]);
}

int balm_train_run(const balm_train_opts *o, balm_train_result *res)
{
    run R;
    int rc = 1;
    memset(&R, 0, sizeof R);
    memset(res, 0, sizeof *res);
    R.o = o;
    R.tty = isatty(fileno(stdout));
    double t_start = balm_now_s();

    if (o->isa) {
        balm_isa cap;
        balm_status st = balm_isa_from_name(o->isa, &cap);
        if (!st && !balm_isa_supported(cap))
            st = balm_fail(BALM_ERR_ISA, "not supported by this build and CPU (see `balm info`)");
        if (!st)
            st = balm_isa_set_cap(cap);
        if (st) {
            fprintf(stderr, "balm train: --isa %s: %s\n", o->isa, balm_last_error());
            return 2;
        }
    }
    if (o->check_isa)
        balm_shadow_enable(1);
    if (setup(&R))
        goto out;
    double t_data = balm_now_s() - t_start; /* loading, views, splits, missing patterns */
    double best_f1 = -1, best_acc = -1, check_max = 0;
    int best_epoch = 0, check_bad = 0, done = 0;
    if (o->load_path && resume(&R, &done, &best_epoch, &best_f1, &best_acc, res))
        goto out;
    if (o->log_path && log_open(&R, o->log_path))
        goto out;
    if (o->save_path && !dir_writable(o->save_path)) {
        /* found now, not after the whole training run */
        fprintf(stderr, "balm train: --save: cannot write in the folder of '%s': %s\n", o->save_path,
                strerror(errno));
        goto out;
    }
    if (!o->quiet) {
        size_t c[8];
        balm_imr_counts(R.ds.train.n, o->rates, c);
        printf("balm train: %s, %zu train / %zu valid / %zu test utterances (%zu/%zu/%zu dialogues), "
               "d = %zu/%zu/%zu (l/a/v), %zu %s\n",
               R.ds.name, R.ds.train.n, R.ds.valid.n, R.ds.test.n, R.ds.train.n_dialogs, R.ds.valid.n_dialogs,
               R.ds.test.n_dialogs, R.ds.d[0], R.ds.d[1], R.ds.d[2], R.C == 1 ? (size_t)1 : R.C,
               R.C == 1 ? "output (regression)" : "classes");
        printf("  model: %s, hidden %zu, ISA %s (%s), missing rates a=%.2f l=%.2f v=%.2f (%s), seed %llu\n",
               o->balm ? "BALM (FCM + GRM)" : "baseline (--no-balm)", o->hidden,
               balm_isa_name(balm_isa_active()), balm_isa_reason(), o->rates[BALM_A], o->rates[BALM_L],
               o->rates[BALM_V], o->mask_order == BALM_MASK_UPSTREAM ? "upstream blocks" : "shuffled",
               (unsigned long long)o->seed);
        if (o->check_isa && balm_isa_active() == BALM_ISA_SCALAR)
            printf("  check-isa: the active ISA is scalar, so there is no SIMD path to compare\n");
    }
    pass_stats tr, va;
    memset(&va, 0, sizeof va);
    res->epochs_run = done;
    for (int ep = done + 1; ep <= o->epochs; ep++) {
        double ups, te = balm_now_s();
        balm_status st = train_epoch(&R, ep, &tr, &ups);
        if (!st)
            st = evaluate(&R, &R.ds.valid, 0, &va);
        if (st) {
            if (R.tty && !o->quiet)
                printf("\n");
            fail_status("training");
            goto out;
        }
        double secs = balm_now_s() - te;
        int improved = va.f1 > best_f1 || (va.f1 == best_f1 && va.acc > best_acc);
        if (improved) {
            best_f1 = va.f1;
            best_acc = va.acc;
            best_epoch = ep;
            snapshot(&R, 1);
        }
        if (!o->quiet) {
            printf("%sepoch %d/%d  loss %.4f  train f1 %.4f acc %.4f  val f1 %.4f acc %.4f%s", R.tty ? "\r\033[K" : "",
                   ep, o->epochs, tr.loss, tr.f1, tr.acc, va.f1, va.acc, improved ? " *" : "  ");
            if (R.grm)
                printf("  KL l/a/v %.3f/%.3f/%.3f  coeff %.2f/%.2f/%.2f  cos %.2f/%.2f/%.2f",
                       tr.kl[0], tr.kl[1], tr.kl[2], tr.coeff[0], tr.coeff[1], tr.coeff[2], tr.cos[0],
                       tr.cos[1], tr.cos[2]);
            printf("  %.0f utt/s  %.1fs\n", ups, secs);
            fflush(stdout);
        }
        if (R.log) {
            fprintf(R.log, "{\"epoch\":%d,\"loss\":%.6g,\"train_f1\":%.6g,\"train_acc\":%.6g,\"val_f1\":%.6g,"
                           "\"val_acc\":%.6g,\"val_loss\":%.6g",
                    ep, tr.loss, tr.f1, tr.acc, va.f1, va.acc, va.loss);
            if (R.grm) {
                json_mods(R.log, "kl", tr.kl);
                json_mods(R.log, "coeff", tr.coeff);
                json_mods(R.log, "cos", tr.cos);
            }
            fprintf(R.log, ",\"utt_per_s\":%.6g,\"seconds\":%.6g", ups, secs);
        }
        if (o->check_isa)
            check_bad |= check_isa_report(&R, ep, &check_max);
        if (R.log) {
            fprintf(R.log, "}\n");
            fflush(R.log);
        }
        res->epochs_run = ep;
        res->last_val_f1 = va.f1;
        res->last_val_acc = va.acc;
        res->last_loss = tr.loss;
    }
    res->weights_crc = params_crc(&R);
    snapshot_to(&R, R.cur, 1); /* the last epoch's weights, for --save */
    if (best_epoch)
        snapshot(&R, 0); /* report the best-validation epoch's weights */
    pass_stats ts;
    if (evaluate(&R, &R.ds.test, 1, &ts)) {
        fail_status("evaluating the test split");
        goto out;
    }
    double t_total = balm_now_s() - t_start, t_fcm, t_dense;
    balm_model_timing(R.model, &t_fcm, &t_dense, 0);
    double t_rest = t_total - t_data - t_fcm - t_dense - R.t_grm;
    res->best_epoch = best_epoch;
    res->best_val_f1 = best_f1 < 0 ? 0 : best_f1;
    res->best_val_acc = best_acc < 0 ? 0 : best_acc;
    res->test_f1 = ts.f1;
    res->test_acc = ts.acc;
    for (int m = 0; m < BALM_NMOD; m++)
        res->head_test_acc[m] = ts.head_acc[m];
    if (!o->quiet) {
        if (best_epoch)
            printf("test (weights of best-validation epoch %d, val f1 %.4f): weighted F1 %.4f  accuracy %.4f\n",
                   best_epoch, best_f1, ts.f1, ts.acc);
        else
            printf("test (%s weights, no training epoch): weighted F1 %.4f  accuracy %.4f\n",
                   o->load_path ? "loaded" : "initial", ts.f1, ts.acc);
        if (R.grm)
            printf("  unimodal heads, test accuracy: l %.4f  a %.4f  v %.4f\n", ts.head_acc[BALM_L],
                   ts.head_acc[BALM_A], ts.head_acc[BALM_V]);
        printf("  time %.1fs: data %.1fs (%.0f%%), FCM %.1fs (%.0f%%), GRM %.1fs (%.0f%%), dense layers %.1fs "
               "(%.0f%%), rest %.1fs (%.0f%%)\n",
               t_total, t_data, 100 * t_data / t_total, t_fcm, 100 * t_fcm / t_total, R.t_grm,
               100 * R.t_grm / t_total, t_dense, 100 * t_dense / t_total, t_rest, 100 * t_rest / t_total);
    }
    if (R.log) {
        fprintf(R.log, "{\"final\":true,\"test_f1\":%.6g,\"test_acc\":%.6g,\"test_loss\":%.6g,\"best_epoch\":%d,"
                       "\"best_val_f1\":%.6g,\"best_val_acc\":%.6g,\"balm\":%s,\"seed\":%llu,\"isa\":\"%s\"",
                ts.f1, ts.acc, ts.loss, best_epoch, res->best_val_f1, res->best_val_acc,
                o->balm ? "true" : "false", (unsigned long long)o->seed, balm_isa_name(balm_isa_active()));
        if (R.grm)
            json_mods(R.log, "head_test_acc", ts.head_acc);
        fprintf(R.log,
                ",\"time_s\":{\"total\":%.4g,\"data\":%.4g,\"fcm\":%.4g,\"grm\":%.4g,\"dense\":%.4g,\"rest\":%.4g}",
                t_total, t_data, t_fcm, R.t_grm, t_dense, t_rest);
    }
    if (o->check_isa) /* the test pass's kernels too */
        check_bad |= check_isa_report(&R, 0, &check_max);
    res->check_max_rel = check_max;
    if (o->check_isa && !o->quiet)
        printf("  check-isa: largest relative difference %.3e over the run (tolerance %.0e): %s\n", check_max,
               o->check_tol, check_bad ? "FAILED" : "ok");
    if (R.log) {
        if (o->check_isa)
            fprintf(R.log, ",\"check_isa_max_rel\":%.6g,\"check_isa_ok\":%s", check_max, check_bad ? "false" : "true");
        fprintf(R.log, "}\n");
        if (log_commit(&R, o->log_path))
            goto out;
    }
    if (o->save_path) {
        uint64_t meta[BALM_CKPT_META];
        model_meta(&R, meta);
        fill_state(&R, res);
        if (balm_ckpt_save(o->save_path, meta, R.ck, R.nck)) {
            fail_status("--save");
            goto out;
        }
    }
    rc = check_bad ? 1 : 0;
out:
    if (o->check_isa)
        balm_shadow_enable(0);
    run_free(&R);
    return rc;
}
