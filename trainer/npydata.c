/* --data DIR: an upstream-like data set of .npy arrays (float32).
 *   <split>_text.npy, <split>_audio.npy, <split>_visual.npy  [N][D_m]
 *   <split>_labels.npy   [N]   class ids (0..C-1) or regression targets
 *   <split>_dialogs.npy  [n_dialogs + 1] offsets: 0, end of dialogue 1, ..., N
 * for split = train, valid (optional: else 10% of the training dialogues are
 * held out, seeded) and test. tools/upstream_to_npy.py writes this layout. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "balm/npy.h"
#include "internal.h"
#include "trainer.h"

static const char *const mod_file[BALM_NMOD] = {"text", "audio", "visual"}; /* l, a, v */

static int file_exists(const char *path)
{
    struct stat sb; /* stat, not fopen: a FIFO must not block here */
    return stat(path, &sb) == 0;
}

static balm_status read_split(const char *dir, const char *split, size_t limit, size_t d[BALM_NMOD],
                              balm_split *sp)
{
    static const char *fn = "balm_npydata_load";
    char path[4096];
    balm_array x[BALM_NMOD] = {{0}}, y = {0}, dl = {0};
    balm_status st = BALM_OK;
    size_t n = 0;
    for (int m = 0; m < BALM_NMOD; m++) {
        snprintf(path, sizeof path, "%s/%s_%s.npy", dir, split, mod_file[m]);
        if ((st = balm_npy_read(path, &x[m])))
            goto done;
        if (x[m].ndim != 2 || x[m].shape[1] == 0) {
            st = balm_fail(BALM_ERR_FORMAT, "%s: '%s' must be 2-D [N][D] with D >= 1, has %zu dimension(s)",
                           fn, path, x[m].ndim);
            goto done;
        }
        if (m == 0)
            n = x[m].shape[0];
        if (x[m].shape[0] != n) {
            st = balm_fail(BALM_ERR_FORMAT, "%s: '%s' has %zu rows, %s_%s.npy has %zu", fn, path,
                           x[m].shape[0], split, mod_file[0], n);
            goto done;
        }
        if (d[m] == 0)
            d[m] = x[m].shape[1];
        if (x[m].shape[1] != d[m]) {
            st = balm_fail(BALM_ERR_FORMAT, "%s: '%s' has %zu columns, the train split has %zu", fn, path,
                           x[m].shape[1], d[m]);
            goto done;
        }
        size_t bad = balm_find_nonfinite(x[m].data, x[m].count);
        if (bad != SIZE_MAX) {
            st = balm_fail(BALM_ERR_FORMAT, "%s: '%s': non-finite value at row %zu column %zu", fn, path,
                           bad / d[m], bad % d[m]);
            goto done;
        }
    }
    snprintf(path, sizeof path, "%s/%s_labels.npy", dir, split);
    if ((st = balm_npy_read(path, &y)))
        goto done;
    if (y.ndim != 1 || y.shape[0] != n) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s' must be 1-D with %zu labels", fn, path, n);
        goto done;
    }
    size_t bad = balm_find_nonfinite(y.data, y.count);
    if (bad != SIZE_MAX) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s': non-finite label at index %zu", fn, path, bad);
        goto done;
    }
    snprintf(path, sizeof path, "%s/%s_dialogs.npy", dir, split);
    if ((st = balm_npy_read(path, &dl)))
        goto done;
    if (dl.ndim != 1 || dl.shape[0] < 2) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s' must be 1-D offsets [n_dialogs + 1] with n_dialogs >= 1",
                       fn, path);
        goto done;
    }
    for (size_t k = 0; k < dl.count; k++) {
        float v = dl.data[k], prev = k ? dl.data[k - 1] : 0.0f;
        if (!(v == floorf(v)) || v < 0 || v > (float)n || (k == 0 && v != 0) || (k > 0 && v <= prev)) {
            st = balm_fail(BALM_ERR_FORMAT,
                           "%s: '%s': offset %zu (%g) must be an integer, 0 first, strictly increasing up to %zu",
                           fn, path, k, (double)v, n);
            goto done;
        }
    }
    if (dl.data[dl.count - 1] != (float)n) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s': last offset %g is not the utterance count %zu", fn, path,
                       (double)dl.data[dl.count - 1], n);
        goto done;
    }
    /* --limit: whole dialogues up to the first `limit` utterances */
    size_t nd = dl.count - 1;
    if (limit && limit < n) {
        size_t k = 1;
        while (k < nd && (size_t)dl.data[k + 1] <= limit)
            k++;
        nd = k;
        n = (size_t)dl.data[nd];
    }
    if ((st = balm_split_alloc(sp, n, nd, d)))
        goto done;
    for (int m = 0; m < BALM_NMOD; m++)
        memcpy(sp->x[m], x[m].data, n * d[m] * sizeof(float));
    memcpy(sp->y, y.data, n * sizeof(float));
    for (size_t k = 0; k <= nd; k++)
        sp->dialog[k] = (size_t)dl.data[k];
done:
    for (int m = 0; m < BALM_NMOD; m++)
        balm_array_free(&x[m]);
    balm_array_free(&y);
    balm_array_free(&dl);
    return st;
}

balm_status balm_npydata_load(const char *dir, size_t limit, uint64_t seed, balm_dataset *ds)
{
    char path[4096];
    balm_status st;
    memset(ds, 0, sizeof *ds);
    snprintf(ds->name, sizeof ds->name, "npy");
    st = read_split(dir, "train", limit, ds->d, &ds->train);
    if (st)
        goto fail;
    snprintf(path, sizeof path, "%s/valid_labels.npy", dir);
    if (file_exists(path))
        st = read_split(dir, "valid", 0, ds->d, &ds->valid);
    else
        st = balm_holdout(&ds->train, &ds->valid, ds->d, seed ^ 0x76616c6964ull);
    if (!st)
        st = read_split(dir, "test", 0, ds->d, &ds->test);
    if (st)
        goto fail;
    /* classification when every training label is a small non-negative integer */
    float ymax = 0;
    int cls = 1;
    for (size_t i = 0; i < ds->train.n && cls; i++) {
        float v = ds->train.y[i];
        cls = v >= 0 && v == floorf(v) && v < 100000;
        ymax = v > ymax ? v : ymax;
    }
    ds->n_classes = cls ? (size_t)ymax + 1 : 1;
    if (ds->n_classes == 1 && cls)
        ds->n_classes = 2; /* all labels 0: still a (degenerate) classification */
    balm_split *sp[2] = {&ds->valid, &ds->test};
    for (int s = 0; s < 2 && cls; s++)
        for (size_t i = 0; i < sp[s]->n; i++) {
            float v = sp[s]->y[i];
            if (!(v >= 0 && v == floorf(v) && (size_t)v < ds->n_classes)) {
                st = balm_fail(BALM_ERR_FORMAT,
                               "balm_npydata_load: %s label %g at index %zu is not a class of the training set (0..%zu)",
                               s ? "test" : "valid", (double)v, i, ds->n_classes - 1);
                goto fail;
            }
        }
    return BALM_OK;
fail:
    balm_dataset_free(ds);
    return st;
}
