/* Checkpoints: named float tensors behind a header, CRC32-protected.
 *
 *   "BALMCKPT"  8 bytes magic
 *   u32 version (2: the trainer's full training state, see train.c; 1 held
 *   the weights only and is refused with a message saying so), u32 byte-order mark 0x01020304, u32 tensor count
 *   u64 meta[8]  (model shape: d_l, d_a, d_v, hidden, classes, d_global, balm, 0)
 *   per tensor: u32 name length, name bytes, u64 count, count float32
 *   u32 CRC32 (zlib) of every byte before it
 *
 * Written to <path>.tmp.<pid>, fsync'ed and renamed over <path>, so an
 * interrupted run leaves the old checkpoint or the whole new one. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "internal.h"
#include "trainer.h"

#define CKPT_MAGIC "BALMCKPT"
#define CKPT_VERSION 2u
#define CKPT_BOM 0x01020304u
#define CKPT_MAX_BYTES ((size_t)1 << 34)

static const char *const meta_name[BALM_CKPT_META] = {
    "d_l", "d_a", "d_v", "hidden width", "classes", "d_global", "balm (FCM+GRM)", "reserved"};

typedef struct wbuf {
    FILE *f;
    uLong crc;
    int err;
} wbuf;

static void put(wbuf *w, const void *p, size_t n)
{
    if (w->err || n == 0)
        return;
    if (fwrite(p, 1, n, w->f) != n)
        w->err = 1;
    /* crc32 takes uInt lengths: feed large tensors in pieces */
    const unsigned char *b = p;
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        w->crc = crc32(w->crc, b, k);
        b += k;
        n -= k;
    }
}

balm_status balm_ckpt_save(const char *path, const uint64_t meta[BALM_CKPT_META],
                           const balm_tensor_ref *t, size_t nt)
{
    static const char *fn = "balm_ckpt_save";
    char tmp[4200];
    if (!path || !meta || (!t && nt))
        return balm_fail(BALM_ERR_NULL, "%s: NULL argument", fn);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    wbuf w = {fopen(tmp, "wb"), crc32(0L, Z_NULL, 0), 0};
    if (!w.f)
        return balm_fail(BALM_ERR_IO, "%s: cannot create '%s': %s", fn, tmp, strerror(errno));
    uint32_t hdr[3] = {CKPT_VERSION, CKPT_BOM, (uint32_t)nt};
    put(&w, CKPT_MAGIC, 8);
    put(&w, hdr, sizeof hdr);
    put(&w, meta, BALM_CKPT_META * sizeof *meta);
    for (size_t i = 0; i < nt; i++) {
        uint32_t len = (uint32_t)strlen(t[i].name);
        uint64_t cnt = t[i].count;
        put(&w, &len, 4);
        put(&w, t[i].name, len);
        put(&w, &cnt, 8);
        put(&w, t[i].data, t[i].count * sizeof(float));
    }
    uint32_t crc = (uint32_t)w.crc;
    if (!w.err && fwrite(&crc, 4, 1, w.f) != 1)
        w.err = 1;
    if (!w.err && (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0))
        w.err = 1;
    int saved = errno;
    if (fclose(w.f) != 0)
        w.err = 1;
    if (w.err || rename(tmp, path) != 0) {
        if (!w.err)
            saved = errno;
        remove(tmp);
        return balm_fail(BALM_ERR_IO, "%s: cannot write '%s': %s", fn, path, strerror(saved));
    }
    return BALM_OK;
}

balm_status balm_ckpt_load(const char *path, const uint64_t meta[BALM_CKPT_META],
                           const balm_tensor_ref *t, size_t nt)
{
    static const char *fn = "balm_ckpt_load";
    balm_status st = BALM_OK;
    unsigned char *buf = NULL;
    if (!path || !meta || (!t && nt))
        return balm_fail(BALM_ERR_NULL, "%s: NULL argument", fn);
    int fd = balm_open_regular(fn, path);
    if (fd < 0)
        return BALM_ERR_IO;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return balm_fail(BALM_ERR_IO, "%s: cannot open '%s': %s", fn, path, strerror(errno));
    }
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return balm_fail(BALM_ERR_IO, "%s: cannot read '%s'", fn, path);
    }
    size_t n = (size_t)size, hlen = 8 + 12 + 8 * BALM_CKPT_META;
    if (n > CKPT_MAX_BYTES) {
        fclose(f);
        return balm_fail(BALM_ERR_FORMAT, "%s: '%s' is %zu bytes, too large for a checkpoint", fn, path, n);
    }
    buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return balm_fail(BALM_ERR_NOMEM, "%s: no memory for '%s' (%zu bytes)", fn, path, n);
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        st = balm_fail(BALM_ERR_IO, "%s: short read on '%s'", fn, path);
        goto done;
    }
    if (n < 8 || memcmp(buf, CKPT_MAGIC, 8) != 0) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s' is not a balm checkpoint (bad magic)", fn, path);
        goto done;
    }
    if (n < hlen + 4) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s' is truncated (%zu bytes, header needs %zu)", fn, path,
                       n, hlen + 4);
        goto done;
    }
    uint32_t hdr[3], crc_file;
    memcpy(hdr, buf + 8, sizeof hdr);
    if (hdr[1] != CKPT_BOM) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s' was written with another byte order", fn, path);
        goto done;
    }
    if (hdr[0] == 1) { /* weights only: cannot resume, so not accepted */
        st = balm_fail(BALM_ERR_FORMAT,
                       "%s: '%s' is a version 1 checkpoint (weights only, from an older balm); this build "
                       "reads version %u (the whole training state): train again with --save to write one",
                       fn, path, CKPT_VERSION);
        goto done;
    }
    if (hdr[0] != CKPT_VERSION) {
        st = balm_fail(BALM_ERR_FORMAT, "%s: '%s' has checkpoint version %u, this build reads %u", fn,
                       path, hdr[0], CKPT_VERSION);
        goto done;
    }
    memcpy(&crc_file, buf + n - 4, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t at = 0; at < n - 4;) {
        uInt k = n - 4 - at > (1u << 30) ? (1u << 30) : (uInt)(n - 4 - at);
        crc = crc32(crc, buf + at, k);
        at += k;
    }
    if ((uint32_t)crc != crc_file) {
        st = balm_fail(BALM_ERR_FORMAT,
                       "%s: '%s' is corrupt or truncated: CRC32 0x%08x, stored 0x%08x", fn, path,
                       (unsigned)crc, (unsigned)crc_file);
        goto done;
    }
    uint64_t fmeta[BALM_CKPT_META];
    memcpy(fmeta, buf + 20, sizeof fmeta);
    /* the BALM flag first: it explains a d_global of 0 */
    static const int meta_order[BALM_CKPT_META] = {6, 0, 1, 2, 3, 4, 5, 7};
    for (int i = 0; i < BALM_CKPT_META; i++) {
        int k = meta_order[i];
        if (fmeta[k] != meta[k]) {
            st = balm_fail(BALM_ERR_ARG,
                           "%s: '%s' does not match this model: %s is %llu in the checkpoint, %llu here",
                           fn, path, meta_name[k], (unsigned long long)fmeta[k],
                           (unsigned long long)meta[k]);
            goto done;
        }
    }
    if (hdr[2] != nt) {
        st = balm_fail(BALM_ERR_ARG, "%s: '%s' holds %u tensors, this model has %zu", fn, path, hdr[2], nt);
        goto done;
    }
    /* first pass: check every name and count; second: copy */
    for (int pass = 0; pass < 2; pass++) {
        size_t at = hlen, end = n - 4;
        for (size_t i = 0; i < nt; i++) {
            uint32_t len;
            uint64_t cnt;
            if (end - at < 4)
                goto trunc;
            memcpy(&len, buf + at, 4);
            at += 4;
            if (end - at < (size_t)len + 8)
                goto trunc;
            if (len != strlen(t[i].name) || memcmp(buf + at, t[i].name, len) != 0) {
                st = balm_fail(BALM_ERR_ARG, "%s: '%s': tensor %zu is '%.*s', this model expects '%s'", fn,
                               path, i, (int)(len > 64 ? 64 : len), (const char *)buf + at, t[i].name);
                goto done;
            }
            at += len;
            memcpy(&cnt, buf + at, 8);
            at += 8;
            if (cnt != t[i].count) {
                st = balm_fail(BALM_ERR_ARG, "%s: '%s': tensor '%s' has %llu values, this model %zu", fn,
                               path, t[i].name, (unsigned long long)cnt, t[i].count);
                goto done;
            }
            if ((end - at) / sizeof(float) < cnt)
                goto trunc;
            if (pass == 1)
                memcpy(t[i].data, buf + at, cnt * sizeof(float));
            at += cnt * sizeof(float);
        }
        if (at != end) {
            st = balm_fail(BALM_ERR_FORMAT, "%s: '%s': %zu unexpected bytes after the last tensor", fn, path,
                           end - at);
            goto done;
        }
    }
    goto done;
trunc:
    st = balm_fail(BALM_ERR_FORMAT, "%s: '%s': tensor data runs past the end of the file", fn, path);
done:
    free(buf);
    return st;
}
