/* Splits shared by both loaders: allocation, dialogues, the validation
 * hold-out and standardisation with training statistics. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"
#include "trainer.h"

int balm_open_regular(const char *fn, const char *path)
{
    /* O_NONBLOCK: opening a FIFO without a writer must not wait forever */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0) {
        balm_fail(BALM_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        balm_fail(BALM_ERR_IO, "%s: '%s' is not a regular file", fn, path);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

void balm_split_free(balm_split *s)
{
    free(s->dialog);
    for (int m = 0; m < BALM_NMOD; m++) {
        free(s->x[m]);
        free(s->mask[m]);
    }
    free(s->y);
    memset(s, 0, sizeof *s);
}

void balm_dataset_free(balm_dataset *ds)
{
    balm_split_free(&ds->train);
    balm_split_free(&ds->valid);
    balm_split_free(&ds->test);
}

balm_status balm_split_alloc(balm_split *s, size_t n, size_t n_dialogs, const size_t d[BALM_NMOD])
{
    size_t bytes;
    memset(s, 0, sizeof *s);
    s->n = n;
    s->n_dialogs = n_dialogs;
    s->dialog = calloc(n_dialogs + 1, sizeof *s->dialog);
    s->y = calloc(n ? n : 1, sizeof *s->y);
    int bad = !s->dialog || !s->y;
    for (int m = 0; m < BALM_NMOD && !bad; m++) {
        if (balm_mul_ovf(n ? n : 1, d[m] * sizeof(float), &bytes)) {
            bad = 1;
            break;
        }
        s->x[m] = calloc(1, bytes);
        s->mask[m] = calloc(n ? n : 1, sizeof(float));
        bad = !s->x[m] || !s->mask[m];
    }
    if (bad) {
        balm_split_free(s);
        return balm_fail(BALM_ERR_NOMEM, "balm_split_alloc: no memory for %zu utterances", n);
    }
    for (int m = 0; m < BALM_NMOD; m++)
        for (size_t i = 0; i < n; i++)
            s->mask[m][i] = 1.0f;
    return BALM_OK;
}

balm_status balm_make_dialogs(size_t n, uint64_t seed, size_t **off, size_t *n_dialogs)
{
    balm_rng r = {seed, 0};
    size_t cap = n / BALM_DIALOG_MIN + 2, k = 0, at = 0;
    size_t *o = malloc(cap * sizeof *o);
    if (!o)
        return balm_fail(BALM_ERR_NOMEM, "balm_make_dialogs: no memory for %zu dialogues", cap);
    o[0] = 0;
    while (at < n) {
        size_t len = BALM_DIALOG_MIN + balm_rng_below(&r, BALM_DIALOG_MAX - BALM_DIALOG_MIN + 1);
        at = at + len < n ? at + len : n;
        o[++k] = at;
    }
    *off = o;
    *n_dialogs = k;
    return BALM_OK;
}

/* Copy dialogues sel[0..k) of src into dst (allocated here). */
static balm_status copy_dialogs(const balm_split *src, const size_t *sel, size_t k,
                                const size_t d[BALM_NMOD], balm_split *dst)
{
    size_t n = 0;
    for (size_t j = 0; j < k; j++)
        n += src->dialog[sel[j] + 1] - src->dialog[sel[j]];
    balm_status st = balm_split_alloc(dst, n, k, d);
    if (st)
        return st;
    size_t at = 0;
    for (size_t j = 0; j < k; j++) {
        size_t a = src->dialog[sel[j]], len = src->dialog[sel[j] + 1] - a;
        for (int m = 0; m < BALM_NMOD; m++) {
            memcpy(dst->x[m] + at * d[m], src->x[m] + a * d[m], len * d[m] * sizeof(float));
            memcpy(dst->mask[m] + at, src->mask[m] + a, len * sizeof(float));
        }
        memcpy(dst->y + at, src->y + a, len * sizeof(float));
        at += len;
        dst->dialog[j + 1] = at;
    }
    return BALM_OK;
}

balm_status balm_holdout(balm_split *all, balm_split *valid, const size_t d[BALM_NMOD],
                         uint64_t seed)
{
    size_t nd = all->n_dialogs, nv = (nd + 5) / 10;
    if (nd < 2)
        return balm_fail(BALM_ERR_SIZE,
                         "balm_holdout: %zu training dialogue(s), need at least 2 to hold out validation",
                         nd);
    if (nv < 1)
        nv = 1;
    size_t *idx = malloc(nd * sizeof *idx);
    unsigned char *is_val = calloc(nd, 1);
    size_t *sel_v = malloc(nd * sizeof *sel_v), *sel_t = malloc(nd * sizeof *sel_t);
    balm_split train = {0};
    balm_status st = BALM_OK;
    if (!idx || !is_val || !sel_v || !sel_t) {
        st = balm_fail(BALM_ERR_NOMEM, "balm_holdout: no memory for %zu dialogues", nd);
        goto done;
    }
    balm_rng r = {seed, 0};
    for (size_t i = 0; i < nd; i++)
        idx[i] = i;
    balm_rng_shuffle(&r, idx, nd);
    for (size_t i = 0; i < nv; i++)
        is_val[idx[i]] = 1;
    size_t kv = 0, kt = 0;
    for (size_t i = 0; i < nd; i++) {
        if (is_val[i])
            sel_v[kv++] = i;
        else
            sel_t[kt++] = i;
    }
    st = copy_dialogs(all, sel_v, kv, d, valid);
    if (!st)
        st = copy_dialogs(all, sel_t, kt, d, &train);
    if (st) {
        balm_split_free(valid);
        goto done;
    }
    balm_split_free(all);
    *all = train;
done:
    free(idx);
    free(is_val);
    free(sel_v);
    free(sel_t);
    return st;
}

void balm_standardise(balm_dataset *ds)
{
    balm_split *sp[3] = {&ds->train, &ds->valid, &ds->test};
    for (int m = 0; m < BALM_NMOD; m++) {
        size_t D = ds->d[m];
        double *mean = calloc(D, sizeof *mean), *var = calloc(D, sizeof *var);
        float *mu = malloc(D * sizeof *mu), *inv = malloc(D * sizeof *inv);
        double cnt = 0;
        if (!mean || !var || !mu || !inv)
            goto next; /* only statistics: leave the data raw */
        for (size_t i = 0; i < ds->train.n; i++) {
            if (ds->train.mask[m][i] == 0.0f)
                continue;
            const float *x = ds->train.x[m] + i * D;
            for (size_t k = 0; k < D; k++)
                mean[k] += x[k];
            cnt += 1;
        }
        for (size_t k = 0; k < D; k++)
            mean[k] = cnt > 0 ? mean[k] / cnt : 0.0;
        for (size_t i = 0; i < ds->train.n; i++) {
            if (ds->train.mask[m][i] == 0.0f)
                continue;
            const float *x = ds->train.x[m] + i * D;
            for (size_t k = 0; k < D; k++)
                var[k] += (x[k] - mean[k]) * (x[k] - mean[k]);
        }
        for (size_t k = 0; k < D; k++) {
            double sd = cnt > 1 ? sqrt(var[k] / (cnt - 1)) : 0.0;
            mu[k] = (float)mean[k];
            /* a constant channel (a border pixel) only gets centred */
            inv[k] = sd > 1e-6 ? (float)(1.0 / sd) : 1.0f;
        }
        for (int s = 0; s < 3; s++) {
            balm_split *p = sp[s];
            for (size_t i = 0; i < p->n; i++) {
                if (p->mask[m][i] == 0.0f)
                    continue; /* missing rows stay exactly 0 */
                float *x = p->x[m] + i * D;
                for (size_t k = 0; k < D; k++)
                    x[k] = (x[k] - mu[k]) * inv[k];
            }
        }
    next:
        free(mean);
        free(var);
        free(mu);
        free(inv);
    }
}
