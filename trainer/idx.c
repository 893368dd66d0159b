/* Fashion-MNIST from IDX files (gzip through zlib) and its three views. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "internal.h"
#include "trainer.h"

/* Largest IDX payload accepted (bytes): far above Fashion-MNIST's 47 MB, far
 * below what a corrupt header could ask for. */
#define BALM_IDX_MAX_BYTES ((size_t)1 << 31)

/* Reads exactly n bytes; returns how many it got (short on EOF), -1 on a
 * gzip error. */
static long long gz_read_all(gzFile f, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(f, (char *)buf + got, (unsigned)chunk);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (long long)got;
}

balm_status balm_idx_read(const char *path, size_t ndim, const size_t *expect, size_t max_items,
                          size_t *dims, uint8_t **data)
{
    static const char *fn = "balm_idx_read";
    unsigned char hdr[4 + 4 * 4];
    balm_status st = BALM_OK;
    uint8_t *buf = NULL;
    int zerr;
    *data = NULL;
    if (ndim < 1 || ndim > 4)
        return balm_fail(BALM_ERR_ARG, "%s: ndim %zu not in 1..4", fn, ndim);
    int fd = balm_open_regular(fn, path);
    if (fd < 0)
        return BALM_ERR_IO;
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return balm_fail(BALM_ERR_NOMEM, "%s: '%s': cannot start zlib", fn, path);
    }
    size_t hlen = 4 + 4 * ndim;
    long long got = gz_read_all(f, hdr, hlen);
    if (got < 0) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s': gzip error: %s", fn, path, gzerror(f, &zerr));
        goto done;
    }
    if (got < 4) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s' is truncated: %lld of 4 magic bytes", fn, path, got);
        goto done;
    }
    uint32_t magic = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    uint32_t want = 0x00000800u | (uint32_t)ndim;
    if (magic != want) {
        st = balm_fail(BALM_ERR_FORMAT,
                       "%s: '%s': bad magic 0x%08x, expected 0x%08x (unsigned bytes, %zu dimension%s)",
                       fn, path, magic, want, ndim, ndim > 1 ? "s" : "");
        goto done;
    }
    if ((size_t)got < hlen) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s' is truncated: %lld of %zu header bytes", fn, path,
                       got, hlen);
        goto done;
    }
    size_t total = 1;
    for (size_t k = 0; k < ndim; k++) {
        const unsigned char *p = hdr + 4 + 4 * k;
        dims[k] = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (expect && expect[k] && dims[k] != expect[k]) {
            st = balm_fail(BALM_ERR_FORMAT, "%s: '%s': dimension %zu is %zu, expected %zu", fn, path,
                           k, dims[k], expect[k]);
            goto done;
        }
        if (dims[k] == 0) {
            st = balm_fail(BALM_ERR_FORMAT, "%s: '%s': dimension %zu is 0", fn, path, k);
            goto done;
        }
        if (balm_mul_ovf(total, dims[k], &total) || total > BALM_IDX_MAX_BYTES) {
            st = balm_fail(BALM_ERR_FORMAT, "%s: '%s': dimensions give more than %zu bytes", fn, path,
                           BALM_IDX_MAX_BYTES);
            goto done;
        }
    }
    /* a prefix of max_items items: the rest is not decompressed (--limit) */
    int partial = max_items && max_items < dims[0];
    if (partial)
        total = total / dims[0] * max_items;
    buf = malloc(total);
    if (!buf) {
        st = balm_fail(BALM_ERR_NOMEM, "%s: '%s': no memory for %zu bytes", fn, path, total);
        goto done;
    }
    got = gz_read_all(f, buf, total);
    if (got < 0) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s': gzip error: %s", fn, path, gzerror(f, &zerr));
        goto done;
    }
    if ((size_t)got < total) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s' is truncated: %lld of %zu data bytes", fn, path, got,
                       total);
        goto done;
    }
    unsigned char extra;
    got = partial ? 0 : gz_read_all(f, &extra, 1);
    if (got != 0) {
        st = got < 0 ? balm_fail(BALM_ERR_FORMAT, "%s: '%s': gzip error: %s", fn, path, gzerror(f, &zerr))
                     : balm_fail(BALM_ERR_FORMAT, "%s: '%s': trailing data after %zu data bytes", fn,
                                 path, total);
        goto done;
    }
done:
    gzclose(f);
    if (st) {
        free(buf);
        return st;
    }
    *data = buf;
    return BALM_OK;
}

/* The three views of one 28x28 image, pixels scaled to [0, 1]. */
static void views(const uint8_t *img, float *l, float *a, float *v)
{
    const float s = 1.0f / 255.0f;
    for (int i = 0; i < 14; i++)
        for (int j = 0; j < 14; j++) {
            const uint8_t *p = img + 2 * i * 28 + 2 * j;
            l[i * 14 + j] = (float)(p[0] + p[1] + p[28] + p[29]) * (s * 0.25f);
        }
    for (int r = 0; r < 28; r++) {
        unsigned sum = 0;
        for (int c = 0; c < 28; c++)
            sum += img[r * 28 + c];
        a[r] = (float)sum * s;
    }
    for (int c = 0; c < 28; c++) {
        unsigned sum = 0;
        for (int r = 0; r < 28; r++)
            sum += img[r * 28 + c];
        a[28 + c] = (float)sum * s;
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            unsigned sum = 0;
            for (int r = 0; r < 7; r++)
                for (int c = 0; c < 7; c++)
                    sum += img[(7 * i + r) * 28 + 7 * j + c];
            v[i * 4 + j] = (float)sum * (s / 49.0f);
        }
}

/* One split from an image file and a label file; dialogues seeded by tag. */
static balm_status load_split(const char *dir, const char *prefix, size_t limit, uint64_t seed,
                              const size_t d[BALM_NMOD], balm_split *sp)
{
    char ipath[4096], lpath[4096];
    size_t idims[3], ldims[1];
    const size_t iexp[3] = {0, 28, 28};
    uint8_t *img = NULL, *lab = NULL;
    size_t *off = NULL, nd = 0;
    balm_status st;
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    st = balm_idx_read(ipath, 3, iexp, limit, idims, &img);
    if (!st)
        st = balm_idx_read(lpath, 1, NULL, limit, ldims, &lab);
    if (st)
        goto done;
    if (idims[0] != ldims[0]) {
        st = balm_fail(BALM_ERR_FORMAT, "balm_fmnist_load: '%s' has %zu labels but '%s' has %zu images",
                       lpath, ldims[0], ipath, idims[0]);
        goto done;
    }
    size_t n = limit && limit < idims[0] ? limit : idims[0];
    for (size_t i = 0; i < n; i++)
        if (lab[i] >= 10) {
            st = balm_fail(BALM_ERR_FORMAT, "balm_fmnist_load: '%s': label %u at index %zu is not in 0..9",
                           lpath, lab[i], i);
            goto done;
        }
    st = balm_make_dialogs(n, seed, &off, &nd);
    if (!st)
        st = balm_split_alloc(sp, n, nd, d);
    if (st)
        goto done;
    memcpy(sp->dialog, off, (nd + 1) * sizeof *off);
    for (size_t i = 0; i < n; i++) {
        views(img + i * 784, sp->x[BALM_L] + i * d[BALM_L], sp->x[BALM_A] + i * d[BALM_A],
              sp->x[BALM_V] + i * d[BALM_V]);
        sp->y[i] = (float)lab[i];
    }
done:
    free(img);
    free(lab);
    free(off);
    return st;
}

balm_status balm_fmnist_load(const char *dir, size_t limit, size_t test_limit, uint64_t seed,
                             balm_dataset *ds)
{
    balm_status st;
    memset(ds, 0, sizeof *ds);
    ds->d[BALM_L] = 196;
    ds->d[BALM_A] = 56;
    ds->d[BALM_V] = 16;
    ds->n_classes = 10;
    snprintf(ds->name, sizeof ds->name, "fashion-mnist");
    /* independent streams per purpose, all from the one seed */
    st = load_split(dir, "train", limit, seed ^ 0x7472616964ull, ds->d, &ds->train);
    if (!st)
        st = balm_holdout(&ds->train, &ds->valid, ds->d, seed ^ 0x76616c6964ull);
    if (!st)
        st = load_split(dir, "t10k", test_limit, seed ^ 0x7465737464ull, ds->d, &ds->test);
    if (st) {
        balm_dataset_free(ds);
        return st;
    }
    balm_standardise(ds);
    return BALM_OK;
}
