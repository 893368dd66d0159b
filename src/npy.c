/* NumPy .npy reading and writing (format 1.0, 2.0, 3.0), float32 only.
 *
 * The format: 6 magic bytes "\x93NUMPY", major and minor version bytes, the
 * header length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0), the
 * header (a Python dict literal with 'descr', 'fortran_order' and 'shape',
 * padded with spaces and a final '\n'), then the raw data. 3.0 only differs
 * from 2.0 by allowing utf-8 in the header, which matters only inside
 * strings we never need, so both are parsed the same way. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "balm/npy.h"
#include "internal.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* numpy refuses headers above 10000 bytes by default; allow more, but stop
 * a corrupt length field from making us allocate gigabytes. */
#define NPY_MAX_HEADER ((size_t)1 << 20)
/* numpy's spare room after the dict so that the first axis can grow. */
#define NPY_GROWTH_DIGITS 21

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void swap32(void *buf, size_t n)
{
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i++, p += 4) {
        unsigned char t0 = p[0], t1 = p[1];
        p[0] = p[3];
        p[1] = p[2];
        p[2] = t1;
        p[3] = t0;
    }
}

void balm_array_free(balm_array *a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------ header parse */

typedef struct hdr_parser {
    const char *p, *end;
    const char *path;
} hdr_parser;

static void skip_ws(hdr_parser *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static int accept(hdr_parser *h, char c)
{
    skip_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes (none of the keys or dtypes we
 * accept need one); copies at most cap-1 bytes, longer is an error. */
static balm_status parse_string(hdr_parser *h, char *out, size_t cap, const char *what)
{
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
        return balm_fail(BALM_ERR_FORMAT, "%s: header: expected a quoted %s", h->path, what);
    char q = *h->p++;
    const char *s = h->p;
    while (h->p < h->end && *h->p != q && *h->p != '\\')
        h->p++;
    if (h->p >= h->end || *h->p != q)
        return balm_fail(BALM_ERR_FORMAT, "%s: header: unterminated or escaped %s string", h->path,
                         what);
    size_t n = (size_t)(h->p - s);
    h->p++;
    if (n >= cap)
        return balm_fail(BALM_ERR_FORMAT, "%s: header: %s string too long", h->path, what);
    memcpy(out, s, n);
    out[n] = '\0';
    return BALM_OK;
}

/* A non-negative Python int (an old Python 2 'L' suffix is tolerated). */
static balm_status parse_dim(hdr_parser *h, size_t index, size_t *out)
{
    skip_ws(h);
    if (h->p < h->end && *h->p == '-')
        return balm_fail(BALM_ERR_FORMAT, "%s: header: shape[%zu] is negative", h->path, index);
    if (h->p >= h->end || *h->p < '0' || *h->p > '9')
        return balm_fail(BALM_ERR_FORMAT, "%s: header: shape[%zu] is not an integer", h->path,
                         index);
    size_t v = 0;
    while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
        size_t d = (size_t)(*h->p - '0');
        if (v > (SIZE_MAX - d) / 10)
            return balm_fail(BALM_ERR_FORMAT, "%s: header: shape[%zu] does not fit in size_t",
                             h->path, index);
        v = v * 10 + d;
        h->p++;
    }
    if (h->p < h->end && (*h->p == 'L' || *h->p == 'l'))
        h->p++;
    *out = v;
    return BALM_OK;
}

/* "(a, b, c)" with optional trailing comma, "()" for 0-d; like Python, a
 * one-element tuple needs its comma ("(3)" is the int 3). */
static balm_status parse_shape(hdr_parser *h, balm_array *a)
{
    if (!accept(h, '('))
        return balm_fail(BALM_ERR_FORMAT, "%s: header: 'shape' is not a tuple", h->path);
    size_t n = 0;
    int comma_after_last = 0;
    while (!accept(h, ')')) {
        if (n > 0 && !comma_after_last)
            return balm_fail(BALM_ERR_FORMAT, "%s: header: garbage in 'shape' after shape[%zu]",
                             h->path, n - 1);
        if (n == BALM_NPY_MAX_DIMS)
            return balm_fail(BALM_ERR_FORMAT, "%s: header: more than %d dimensions", h->path,
                             BALM_NPY_MAX_DIMS);
        balm_status st = parse_dim(h, n, &a->shape[n]);
        if (st != BALM_OK)
            return st;
        n++;
        comma_after_last = accept(h, ',');
        skip_ws(h);
        if (h->p >= h->end)
            return balm_fail(BALM_ERR_FORMAT, "%s: header: unterminated 'shape'", h->path);
    }
    if (n == 1 && !comma_after_last)
        return balm_fail(BALM_ERR_FORMAT, "%s: header: 'shape' (%zu) is not a tuple (missing comma)",
                         h->path, a->shape[0]);
    a->ndim = n;
    return BALM_OK;
}

static balm_status parse_bool(hdr_parser *h, int *out)
{
    skip_ws(h);
    size_t left = (size_t)(h->end - h->p);
    if (left >= 4 && memcmp(h->p, "True", 4) == 0) {
        h->p += 4;
        *out = 1;
    } else if (left >= 5 && memcmp(h->p, "False", 5) == 0) {
        h->p += 5;
        *out = 0;
    } else {
        return balm_fail(BALM_ERR_FORMAT, "%s: header: 'fortran_order' is not True or False",
                         h->path);
    }
    return BALM_OK;
}

/* Parse the dict; keys in any order, each exactly once, nothing else. */
static balm_status parse_header(const char *path, const char *hdr, size_t len, balm_array *a)
{
    hdr_parser h = {hdr, hdr + len, path};
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0;
    char descr[32] = "";
    balm_status st;

    if (!accept(&h, '{'))
        return balm_fail(BALM_ERR_FORMAT, "%s: header is not a dict", path);
    while (!accept(&h, '}')) {
        char key[32];
        skip_ws(&h);
        if (h.p >= h.end)
            return balm_fail(BALM_ERR_FORMAT, "%s: header: unterminated dict", path);
        if ((st = parse_string(&h, key, sizeof key, "key")) != BALM_OK)
            return st;
        if (!accept(&h, ':'))
            return balm_fail(BALM_ERR_FORMAT, "%s: header: expected ':' after '%s'", path, key);
        int *seen;
        if (strcmp(key, "descr") == 0) {
            seen = &have_descr;
            skip_ws(&h);
            if (h.p < h.end && (*h.p == '[' || *h.p == '{'))
                return balm_fail(BALM_ERR_FORMAT,
                                 "%s: structured dtype is not little-endian float32", path);
            st = parse_string(&h, descr, sizeof descr, "'descr'");
        } else if (strcmp(key, "fortran_order") == 0) {
            seen = &have_fortran;
            st = parse_bool(&h, &fortran);
        } else if (strcmp(key, "shape") == 0) {
            seen = &have_shape;
            st = parse_shape(&h, a);
        } else {
            return balm_fail(BALM_ERR_FORMAT, "%s: header: unexpected key '%s'", path, key);
        }
        if (st != BALM_OK)
            return st;
        if (*seen)
            return balm_fail(BALM_ERR_FORMAT, "%s: header: key '%s' appears twice", path, key);
        *seen = 1;
        if (!accept(&h, ',')) {
            if (!accept(&h, '}'))
                return balm_fail(BALM_ERR_FORMAT, "%s: header: expected ',' or '}' after '%s'",
                                 path, key);
            break;
        }
    }
    skip_ws(&h);
    if (h.p != h.end)
        return balm_fail(BALM_ERR_FORMAT, "%s: header: garbage after the dict", path);
    if (!have_descr)
        return balm_fail(BALM_ERR_FORMAT, "%s: header lacks 'descr'", path);
    if (!have_fortran)
        return balm_fail(BALM_ERR_FORMAT, "%s: header lacks 'fortran_order'", path);
    if (!have_shape)
        return balm_fail(BALM_ERR_FORMAT, "%s: header lacks 'shape'", path);
    if (strcmp(descr, "<f4") != 0)
        return balm_fail(BALM_ERR_FORMAT, "%s: dtype '%s' is not little-endian float32", path,
                         descr);
    if (fortran)
        return balm_fail(BALM_ERR_FORMAT, "%s: fortran_order True is not supported (C order only)",
                         path);
    return BALM_OK;
}

/* ------------------------------------------------------------------- read */

static balm_status read_exact(FILE *fp, const char *path, void *buf, size_t n, const char *what)
{
    if (n == 0)
        return BALM_OK;
    if (fread(buf, 1, n, fp) != n) {
        if (ferror(fp))
            return balm_fail(BALM_ERR_IO, "%s: cannot read %s: %s", path, what, strerror(errno));
        /* The size was checked against fstat: the file shrank under us. */
        return balm_fail(BALM_ERR_FORMAT, "%s: %s truncated", path, what);
    }
    return BALM_OK;
}

static balm_status npy_read_fp(FILE *fp, const char *path, size_t fsize, balm_array *out)
{
    unsigned char pre[12];
    balm_status st;
    balm_array a;
    memset(&a, 0, sizeof a);

    size_t magic_have = fsize < 6 ? fsize : 6;
    if ((st = read_exact(fp, path, pre, magic_have, "magic")) != BALM_OK)
        return st;
    if (memcmp(pre, npy_magic, magic_have) != 0)
        return balm_fail(BALM_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
    if (fsize < 8)
        return balm_fail(BALM_ERR_FORMAT, "%s: truncated header (%zu bytes)", path, fsize);
    if ((st = read_exact(fp, path, pre + 6, 2, "version")) != BALM_OK)
        return st;
    unsigned major = pre[6], minor = pre[7];
    if (minor != 0 || major < 1 || major > 3)
        return balm_fail(BALM_ERR_FORMAT, "%s: unsupported .npy version %u.%u", path, major,
                         minor);
    size_t lenbytes = major == 1 ? 2 : 4, prefix = 8 + lenbytes;
    if (fsize < prefix)
        return balm_fail(BALM_ERR_FORMAT, "%s: truncated header (%zu bytes)", path, fsize);
    if ((st = read_exact(fp, path, pre + 8, lenbytes, "header length")) != BALM_OK)
        return st;
    size_t hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    if (lenbytes == 4)
        hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    if (hlen > NPY_MAX_HEADER)
        return balm_fail(BALM_ERR_FORMAT, "%s: header length %zu is absurd (limit %zu)", path, hlen,
                         NPY_MAX_HEADER);
    if (hlen > fsize - prefix)
        return balm_fail(BALM_ERR_FORMAT, "%s: header length %zu goes beyond the end of the file",
                         path, hlen);

    char *hdr = malloc(hlen + 1);
    if (!hdr)
        return balm_fail(BALM_ERR_NOMEM, "%s: no memory for a %zu-byte header", path, hlen);
    st = read_exact(fp, path, hdr, hlen, "header");
    if (st == BALM_OK) {
        hdr[hlen] = '\0';
        if (memchr(hdr, '\0', hlen))
            st = balm_fail(BALM_ERR_FORMAT, "%s: header contains a NUL byte", path);
        else
            st = parse_header(path, hdr, hlen, &a);
    }
    free(hdr);
    if (st != BALM_OK)
        return st;

    size_t count = 1, bytes;
    for (size_t i = 0; i < a.ndim; i++)
        if (balm_mul_ovf(count, a.shape[i], &count))
            return balm_fail(BALM_ERR_FORMAT, "%s: shape product overflows size_t", path);
    if (balm_mul_ovf(count, sizeof(float), &bytes))
        return balm_fail(BALM_ERR_FORMAT, "%s: data size (%zu floats) overflows size_t", path,
                         count);
    size_t have = fsize - prefix - hlen;
    if (have < bytes)
        return balm_fail(BALM_ERR_FORMAT, "%s: truncated data: %zu bytes, shape needs %zu", path,
                         have, bytes);
    if (have > bytes)
        return balm_fail(BALM_ERR_FORMAT, "%s: %zu extra bytes after the data (shape needs %zu)",
                         path, have - bytes, bytes);
    a.count = count;
    if (count > 0) {
        a.data = malloc(bytes);
        if (!a.data)
            return balm_fail(BALM_ERR_NOMEM, "%s: no memory for %zu floats", path, count);
        if ((st = read_exact(fp, path, a.data, bytes, "data")) != BALM_OK) {
            free(a.data);
            return st;
        }
        if (!host_is_little_endian())
            swap32(a.data, count);
    }
    *out = a;
    return BALM_OK;
}

balm_status balm_npy_read(const char *path, balm_array *out)
{
    if (!out)
        return balm_fail(BALM_ERR_NULL, "balm_npy_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return balm_fail(BALM_ERR_NULL, "balm_npy_read: path is NULL");

    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is then
     * refused by the regular-file check below. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return balm_fail(BALM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        close(fd);
        return balm_fail(BALM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat sb;
    balm_status st;
    if (fstat(fileno(fp), &sb) != 0)
        st = balm_fail(BALM_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = balm_fail(BALM_ERR_IO, "%s: not a regular file", path);
    else if ((uintmax_t)sb.st_size > SIZE_MAX)
        st = balm_fail(BALM_ERR_IO, "%s: file too large for this platform", path);
    else
        st = npy_read_fp(fp, path, (size_t)sb.st_size, out);
    fclose(fp);
    return st;
}

/* ------------------------------------------------------------------ write */

/* The header numpy 1.24 writes for a float32 C-order array, padded so that
 * the data starts on a 64-byte boundary. Returns the header length (without
 * the prefix) or 0 if `cap` is too small. */
static size_t format_header(char *buf, size_t cap, size_t ndim, const size_t *shape,
                            unsigned *major)
{
    char dict[BALM_NPY_MAX_DIMS * 24 + 128];
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (size_t i = 0; i < ndim; i++)
        n += (size_t)snprintf(dict + n, sizeof dict - n, i + 1 < ndim ? "%zu, " : "%zu", shape[i]);
    if (ndim == 1)
        n += (size_t)snprintf(dict + n, sizeof dict - n, ",");
    n += (size_t)snprintf(dict + n, sizeof dict - n, "), }");
    if (ndim > 0) {
        /* numpy reserves room for the growth axis (the first in C order). */
        int w = snprintf(NULL, 0, "%zu", shape[0]);
        for (int i = w; i < NPY_GROWTH_DIGITS; i++)
            dict[n++] = ' ';
    }
    /* Total = prefix + dict + padding + '\n', a multiple of 64. */
    *major = 1;
    size_t prefix = 10;
    if (((n + 1 + prefix + 63) / 64) * 64 - prefix > 65535) {
        *major = 2;
        prefix = 12;
    }
    size_t total = ((prefix + n + 1 + 63) / 64) * 64;
    size_t hlen = total - prefix;
    if (hlen > cap)
        return 0;
    memcpy(buf, dict, n);
    memset(buf + n, ' ', hlen - n - 1);
    buf[hlen - 1] = '\n';
    return hlen;
}

static balm_status write_all(int fd, const char *tmp, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return balm_fail(BALM_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return BALM_OK;
}

static balm_status write_body(int fd, const char *tmp, const unsigned char *prefix, size_t plen,
                              const char *hdr, size_t hlen, const float *data, size_t count)
{
    balm_status st;
    if ((st = write_all(fd, tmp, prefix, plen)) != BALM_OK)
        return st;
    if ((st = write_all(fd, tmp, hdr, hlen)) != BALM_OK)
        return st;
    if (count == 0)
        return BALM_OK;
    if (host_is_little_endian())
        return write_all(fd, tmp, data, count * sizeof(float));
    /* Big-endian host: swap through a small buffer. */
    float chunk[1024];
    for (size_t i = 0; i < count;) {
        size_t k = count - i < 1024 ? count - i : 1024;
        memcpy(chunk, data + i, k * sizeof(float));
        swap32(chunk, k);
        if ((st = write_all(fd, tmp, chunk, k * sizeof(float))) != BALM_OK)
            return st;
        i += k;
    }
    return BALM_OK;
}

/* Make the rename itself durable; failure here only weakens durability. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0)
            n = 1; /* "/file" */
        if (n >= sizeof dir)
            return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

balm_status balm_npy_write(const char *path, const float *data, size_t ndim, const size_t *shape)
{
    if (!path)
        return balm_fail(BALM_ERR_NULL, "balm_npy_write: path is NULL");
    if (ndim > BALM_NPY_MAX_DIMS)
        return balm_fail(BALM_ERR_SIZE, "balm_npy_write: ndim %zu > %d (%s)", ndim,
                         BALM_NPY_MAX_DIMS, path);
    if (ndim > 0 && !shape)
        return balm_fail(BALM_ERR_NULL, "balm_npy_write: shape is NULL with ndim %zu (%s)", ndim,
                         path);
    size_t count = 1, bytes;
    for (size_t i = 0; i < ndim; i++)
        if (balm_mul_ovf(count, shape[i], &count))
            return balm_fail(BALM_ERR_SIZE, "balm_npy_write: shape product overflows at shape[%zu] (%s)",
                             i, path);
    if (balm_mul_ovf(count, sizeof(float), &bytes))
        return balm_fail(BALM_ERR_SIZE, "balm_npy_write: %zu floats overflow size_t (%s)", count,
                         path);
    if (count > 0 && !data)
        return balm_fail(BALM_ERR_NULL, "balm_npy_write: data is NULL for %zu floats (%s)", count,
                         path);

    char hdr[1024];
    unsigned major;
    size_t hlen = format_header(hdr, sizeof hdr, ndim, shape, &major);
    if (hlen == 0)
        return balm_fail(BALM_ERR_SIZE, "balm_npy_write: header too long (%s)", path);
    unsigned char prefix[12];
    memcpy(prefix, npy_magic, 6);
    prefix[6] = (unsigned char)major;
    prefix[7] = 0;
    size_t plen;
    if (major == 1) {
        prefix[8] = (unsigned char)(hlen & 0xff);
        prefix[9] = (unsigned char)(hlen >> 8);
        plen = 10;
    } else {
        for (int i = 0; i < 4; i++)
            prefix[8 + i] = (unsigned char)(hlen >> (8 * i));
        plen = 12;
    }

    /* Temporary file in the same folder, so the rename cannot cross devices. */
    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp)
        return balm_fail(BALM_ERR_NOMEM, "balm_npy_write: no memory (%s)", path);
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());

    balm_status st = BALM_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
        st = balm_fail(BALM_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp,
                       strerror(errno));
        free(tmp);
        return st;
    }
    st = write_body(fd, tmp, prefix, plen, hdr, hlen, data, count);
    if (st == BALM_OK && fsync(fd) != 0)
        st = balm_fail(BALM_ERR_IO, "%s: cannot fsync: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == BALM_OK)
        st = balm_fail(BALM_ERR_IO, "%s: cannot close: %s", tmp, strerror(errno));
    if (st == BALM_OK && rename(tmp, path) != 0)
        st = balm_fail(BALM_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp,
                       strerror(errno));
    if (st != BALM_OK)
        unlink(tmp);
    else
        sync_parent_dir(path);
    free(tmp);
    return st;
}
