/* `balm check`: run golden cases (see shared/golden/README.md) through the
 * public library API and compare every output with the reference arrays.
 *
 * Each case folder holds case.txt ("kind: X" first, then "key: value"
 * lines) and float32 .npy arrays. Errors are relative to the golden array's
 * largest magnitude: max|got - want| / max(max|want|, tiny). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "balm/balm.h"
#include "balm/fcm.h"
#include "balm/npy.h"
#include "commands.h"

/* Relative tolerances. FCM weight and bias gradients sum over T*B rows in an
 * order PyTorch does not fix (1e-4 at the IEMOCAP sizes); FCM dx adds the
 * gate and pooling paths, each rounded on its own. */
#define TOL_DEFAULT 1e-5
#define TOL_FCM_PARAM_GRAD 1e-4
#define TOL_FCM_DX 2e-5
/* Below this the golden array counts as all zero: any nonzero result fails. */
#define TINY 1e-30

#define MAX_KV 32
#define MAX_ARRAYS 40

typedef struct check_opts {
    const char *out_dir;
    balm_linear_backend linear;
} check_opts;

typedef struct kv_pair {
    char *key, *val;
} kv_pair;

typedef struct out_array {
    const char *name; /* golden file name without .npy (a literal) */
    size_t ndim, shape[3], count;
    float *data;
} out_array;

typedef struct check_case {
    char dir[4096];  /* the folder, without trailing slashes */
    const char *name; /* its last component */
    char kind[32];
    kv_pair kv[MAX_KV];
    size_t nkv;
    balm_array in[MAX_ARRAYS];
    size_t nin;
    out_array out[MAX_ARRAYS];
    size_t nout;
    char extra[64]; /* ", linear=ref" for fcm */
    char msg[2048];
} check_case;

/* Records the message of a failed step and returns its exit status. */
#if defined(__GNUC__)
#define CHECK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CHECK_PRINTF(a, b)
#endif
static int case_err(check_case *c, int rc, const char *fmt, ...) CHECK_PRINTF(3, 4);
static int case_err(check_case *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    return rc;
}

static void case_free(check_case *c)
{
    for (size_t i = 0; i < c->nkv; i++) {
        free(c->kv[i].key);
        free(c->kv[i].val);
    }
    for (size_t i = 0; i < c->nin; i++)
        balm_array_free(&c->in[i]);
    for (size_t i = 0; i < c->nout; i++)
        free(c->out[i].data);
    c->nkv = c->nin = c->nout = 0;
}

static void fmt_shape(char *buf, size_t cap, size_t ndim, const size_t *shape)
{
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (size_t i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %zu" : "%zu", shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, ndim == 1 ? ",)" : ")");
}

/* ---------------------------------------------------------------- case.txt */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int read_case_txt(check_case *c)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/case.txt", c->dir);
    /* Non-blocking open and a regular-file check: a FIFO must not hang us. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return case_err(c, BALM_EXIT_USAGE, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return case_err(c, BALM_EXIT_USAGE, "%s: not a regular file", path);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *fp = fdopen(fd, "r");
    if (!fp) {
        close(fd);
        return case_err(c, BALM_EXIT_USAGE, "%s: cannot open: %s", path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int rc = BALM_EXIT_OK, have_kind = 0;
    while (rc == BALM_EXIT_OK && getline(&line, &cap, fp) >= 0) {
        lineno++;
        char *s = line;
        if (lineno == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
            (unsigned char)s[2] == 0xBF)
            s += 3; /* a UTF-8 byte order mark from some editors */
        s = trim(s);
        if (*s == '\0' || *s == '#')
            continue;
        char *colon = strchr(s, ':');
        if (!colon) {
            rc = case_err(c, BALM_EXIT_USAGE, "%s:%zu: expected 'key: value'", path, lineno);
            break;
        }
        *colon = '\0';
        char *key = trim(s), *val = trim(colon + 1);
        if (!have_kind) {
            if (strcmp(key, "kind") != 0) {
                rc = case_err(c, BALM_EXIT_USAGE, "%s:%zu: the first line must be 'kind: <kind>'",
                              path, lineno);
                break;
            }
            if (*val == '\0' || strlen(val) >= sizeof c->kind) {
                rc = case_err(c, BALM_EXIT_USAGE, "%s:%zu: empty or overlong kind", path, lineno);
                break;
            }
            strcpy(c->kind, val);
            have_kind = 1;
            continue;
        }
        if (c->nkv == MAX_KV) {
            rc = case_err(c, BALM_EXIT_USAGE, "%s:%zu: more than %d keys", path, lineno, MAX_KV);
            break;
        }
        kv_pair *p = &c->kv[c->nkv];
        p->key = dup_str(key);
        p->val = dup_str(val);
        c->nkv++;
        if (!p->key || !p->val)
            rc = case_err(c, BALM_EXIT_USAGE, "%s: out of memory", path);
    }
    if (rc == BALM_EXIT_OK && ferror(fp))
        rc = case_err(c, BALM_EXIT_USAGE, "%s: read error: %s", path, strerror(errno));
    if (rc == BALM_EXIT_OK && !have_kind)
        rc = case_err(c, BALM_EXIT_USAGE, "%s: no 'kind: <kind>' line", path);
    free(line);
    fclose(fp);
    return rc;
}

static const char *case_get(const check_case *c, const char *key)
{
    for (size_t i = 0; i < c->nkv; i++)
        if (strcmp(c->kv[i].key, key) == 0)
            return c->kv[i].val;
    return NULL;
}

static int case_size(check_case *c, const char *key, size_t *out)
{
    const char *v = case_get(c, key);
    if (!v)
        return case_err(c, BALM_EXIT_USAGE, "%s/case.txt: missing '%s: <size>'", c->dir, key);
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno == ERANGE || x > SIZE_MAX)
        return case_err(c, BALM_EXIT_USAGE, "%s/case.txt: '%s: %s' is not a size", c->dir, key, v);
    *out = (size_t)x;
    return BALM_EXIT_OK;
}

static int case_bool(check_case *c, const char *key, int *out)
{
    const char *v = case_get(c, key);
    if (!v)
        return case_err(c, BALM_EXIT_USAGE, "%s/case.txt: missing '%s: True|False'", c->dir, key);
    if (strcmp(v, "True") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = 1;
    else if (strcmp(v, "False") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = 0;
    else
        return case_err(c, BALM_EXIT_USAGE, "%s/case.txt: '%s: %s' is not True or False", c->dir,
                        key, v);
    return BALM_EXIT_OK;
}

/* ------------------------------------------------------------------ arrays */

/* Read <dir>/<name>.npy and check its shape against the sizes in case.txt. */
static int load_input(check_case *c, const char *name, const float **data, size_t ndim,
                      size_t s0, size_t s1, size_t s2)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.npy", c->dir, name);
    if (c->nin == MAX_ARRAYS)
        return case_err(c, BALM_EXIT_USAGE, "%s: too many arrays", c->dir);
    balm_array *a = &c->in[c->nin];
    if (balm_npy_read(path, a) != BALM_OK)
        return case_err(c, BALM_EXIT_USAGE, "input %s", balm_last_error());
    c->nin++;
    size_t want[3] = {s0, s1, s2};
    int same = a->ndim == ndim;
    for (size_t i = 0; same && i < ndim; i++)
        same = a->shape[i] == want[i];
    if (!same) {
        char got_s[128], want_s[128];
        fmt_shape(got_s, sizeof got_s, a->ndim, a->shape);
        fmt_shape(want_s, sizeof want_s, ndim, want);
        return case_err(c, BALM_EXIT_USAGE, "%s: shape %s, but case.txt sizes give %s", path,
                        got_s, want_s);
    }
    *data = a->data;
    return BALM_EXIT_OK;
}

/* A zeroed output array named like its golden file. */
static int add_output(check_case *c, const char *name, float **data, size_t ndim, size_t s0,
                      size_t s1, size_t s2)
{
    if (c->nout == MAX_ARRAYS)
        return case_err(c, BALM_EXIT_USAGE, "%s: too many arrays", c->dir);
    out_array *o = &c->out[c->nout];
    memset(o, 0, sizeof *o);
    o->name = name;
    o->ndim = ndim;
    o->shape[0] = s0;
    o->shape[1] = s1;
    o->shape[2] = s2;
    size_t n = 1;
    for (size_t i = 0; i < ndim; i++) {
        if (o->shape[i] != 0 && n > SIZE_MAX / sizeof(float) / o->shape[i])
            return case_err(c, BALM_EXIT_USAGE, "%s: output %s is too large", c->dir, name);
        n *= o->shape[i];
    }
    o->count = n;
    o->data = calloc(n ? n : 1, sizeof(float));
    if (!o->data)
        return case_err(c, BALM_EXIT_USAGE, "%s: out of memory for %s", c->dir, name);
    c->nout++;
    *data = o->data;
    return BALM_EXIT_OK;
}

/* A library call failed on golden inputs: the case fails. */
static int lib_fail(check_case *c, const char *call, balm_status st)
{
    const char *m = balm_last_error();
    return case_err(c, BALM_EXIT_FAIL, "%s failed: %s (%s)", call, m[0] ? m : "no message",
                    balm_status_str(st));
}

#define CALL(c, expr)                                                                      \
    do {                                                                                   \
        balm_status st_ = (expr);                                                          \
        if (st_ != BALM_OK)                                                                \
            return lib_fail((c), #expr, st_);                                              \
    } while (0)

#define TRY(expr)                                                                          \
    do {                                                                                   \
        int rc_ = (expr);                                                                  \
        if (rc_ != BALM_EXIT_OK)                                                           \
            return rc_;                                                                    \
    } while (0)

/* ------------------------------------------------------------------ kinds */
/* Golden GRM arrays of three are in upstream's order (a, v, l); the GRM calls
 * below are symmetric in the modalities, so they get that order directly. */

static int run_kl_cls(check_case *c, const check_opts *o)
{
    (void)o;
    size_t N, C;
    TRY(case_size(c, "N", &N));
    TRY(case_size(c, "C", &C));
    const float *p, *lq[3];
    static const char *const names[3] = {"logq_a", "logq_v", "logq_l"};
    TRY(load_input(c, "p", &p, 2, N, C, 0));
    for (int m = 0; m < 3; m++)
        TRY(load_input(c, names[m], &lq[m], 2, N, C, 0));
    float *kl;
    TRY(add_output(c, "kl", &kl, 1, 3, 0, 0));
    for (int m = 0; m < 3; m++)
        CALL(c, balm_kl_cls(N, C, p, lq[m], &kl[m]));
    return BALM_EXIT_OK;
}

static int run_kl_reg(check_case *c, const check_opts *o)
{
    (void)o;
    size_t N;
    TRY(case_size(c, "N", &N));
    const float *f, *u[3];
    static const char *const names[3] = {"pred_a", "pred_v", "pred_l"};
    TRY(load_input(c, "fused", &f, 1, N, 0, 0));
    for (int m = 0; m < 3; m++)
        TRY(load_input(c, names[m], &u[m], 1, N, 0, 0));
    float *kl;
    TRY(add_output(c, "kl", &kl, 1, 3, 0, 0));
    for (int m = 0; m < 3; m++)
        CALL(c, balm_kl_reg(N, f, u[m], &kl[m]));
    return BALM_EXIT_OK;
}

static int run_cos(check_case *c, const check_opts *o)
{
    (void)o;
    size_t n;
    TRY(case_size(c, "n", &n));
    const float *wf, *w[3], *coeff;
    static const char *const names[3] = {"w_a", "w_v", "w_l"};
    TRY(load_input(c, "fused", &wf, 1, n, 0, 0));
    for (int m = 0; m < 3; m++)
        TRY(load_input(c, names[m], &w[m], 1, n, 0, 0));
    TRY(load_input(c, "coeff", &coeff, 1, 3, 0, 0));
    float *cos, *loss, *dfused;
    TRY(add_output(c, "cos", &cos, 1, 3, 0, 0));
    TRY(add_output(c, "loss_gm", &loss, 1, 1, 0, 0));
    TRY(add_output(c, "dfused", &dfused, 1, n, 0, 0));
    for (int m = 0; m < 3; m++)
        CALL(c, balm_cos(n, w[m], wf, &cos[m], NULL, NULL));
    CALL(c, balm_grm_loss(3, coeff, cos, loss));
    CALL(c, balm_direction_grad(n, 3, w, wf, coeff, cos, dfused, 0));
    return BALM_EXIT_OK;
}

static int run_coeff(check_case *c, const check_opts *o)
{
    (void)o;
    int first;
    TRY(case_bool(c, "first_step", &first));
    const float *prev = NULL, *cur, *cosv;
    if (!first) /* on the first step prev_kl is not used (it may be absent) */
        TRY(load_input(c, "prev_kl", &prev, 1, 3, 0, 0));
    TRY(load_input(c, "cur_kl", &cur, 1, 3, 0, 0));
    TRY(load_input(c, "cos", &cosv, 1, 3, 0, 0));
    float *coeff, *loss;
    TRY(add_output(c, "coeff", &coeff, 1, 3, 0, 0));
    TRY(add_output(c, "loss_gm", &loss, 1, 1, 0, 0));
    CALL(c, balm_grm_coeff(3, prev, cur, coeff));
    CALL(c, balm_grm_loss(3, coeff, cosv, loss));
    return BALM_EXIT_OK;
}

static const char *backend_name(balm_linear_backend b)
{
    switch (b) {
    case BALM_LINEAR_AUTO: return "auto";
    case BALM_LINEAR_REF: return "ref";
    case BALM_LINEAR_ONEDNN: return "onednn";
    }
    return "?";
}

/* Copies a golden parameter into the module after checking its size. */
static int set_param(check_case *c, balm_fcm *f, balm_fcm_param_id id, const float *src,
                     size_t count, const char *name)
{
    float *param, *grad;
    size_t n;
    CALL(c, balm_fcm_param(f, id, &param, &grad, &n));
    if (n != count)
        return case_err(c, BALM_EXIT_FAIL, "balm_fcm_param(%s) holds %zu floats, golden has %zu",
                        name, n, count);
    memcpy(param, src, count * sizeof(float));
    return BALM_EXIT_OK;
}

static int get_grad(check_case *c, balm_fcm *f, balm_fcm_param_id id, const char *name,
                    size_t ndim, size_t s0, size_t s1)
{
    float *param, *grad, *dst = NULL;
    size_t n;
    CALL(c, balm_fcm_param(f, id, &param, &grad, &n));
    TRY(add_output(c, name, &dst, ndim, s0, s1, 0));
    if (n != c->out[c->nout - 1].count)
        return case_err(c, BALM_EXIT_FAIL, "balm_fcm_param(%s) holds %zu floats, expected %zu",
                        name, n, c->out[c->nout - 1].count);
    memcpy(dst, grad, n * sizeof(float));
    return BALM_EXIT_OK;
}

static int fcm_body(check_case *c, balm_fcm *f, size_t T, size_t B, const size_t d[3], size_t dg)
{
    /* Library order (l, a, v) = BALM_L, BALM_A, BALM_V, as the golden names. */
    static const char *const xn[3] = {"l", "a", "v"}, *const mn[3] = {"lmask", "amask", "vmask"},
                             *const dyn[3] = {"dl_out", "da_out", "dv_out"},
                             *const sn[3] = {"sl", "sa", "sv"}, *const en[3] = {"el", "ea", "ev"},
                             *const yn[3] = {"l_out", "a_out", "v_out"},
                             *const dxn[3] = {"dl", "da", "dv"};
    static const char *const wn[3] = {"wl", "wa", "wv"}, *const bn[3] = {"bl", "ba", "bv"},
                             *const dwn[3] = {"dwl", "dwa", "dwv"},
                             *const dbn[3] = {"dbl", "dba", "dbv"};
    static const balm_fcm_param_id wid[3] = {BALM_FCM_WL, BALM_FCM_WA, BALM_FCM_WV},
                                   bid[3] = {BALM_FCM_BL, BALM_FCM_BA, BALM_FCM_BV};
    const float *x[3], *mask[3], *dy[3], *wg, *bg, *w[3], *b[3];
    float *y[3], *dx[3];
    size_t dsum = d[0] + d[1] + d[2];

    for (int m = 0; m < 3; m++) {
        TRY(load_input(c, xn[m], &x[m], 3, T, B, d[m]));
        TRY(load_input(c, mn[m], &mask[m], 2, T, B, 0));
        TRY(load_input(c, dyn[m], &dy[m], 3, T, B, d[m]));
        TRY(load_input(c, wn[m], &w[m], 2, d[m], dg, 0));
        TRY(load_input(c, bn[m], &b[m], 1, d[m], 0, 0));
    }
    TRY(load_input(c, "wg", &wg, 2, dg, dsum, 0));
    TRY(load_input(c, "bg", &bg, 1, dg, 0, 0));

    TRY(set_param(c, f, BALM_FCM_WG, wg, dg * dsum, "wg"));
    TRY(set_param(c, f, BALM_FCM_BG, bg, dg, "bg"));
    for (int m = 0; m < 3; m++) {
        TRY(set_param(c, f, wid[m], w[m], d[m] * dg, wn[m]));
        TRY(set_param(c, f, bid[m], b[m], d[m], bn[m]));
    }

    for (int m = 0; m < 3; m++)
        TRY(add_output(c, yn[m], &y[m], 3, T, B, d[m]));
    CALL(c, balm_fcm_forward(f, T, B, x, mask, y));

    const float *s[3], *z, *e[3];
    CALL(c, balm_fcm_intermediates(f, s, &z, e));
    float *dst = NULL;
    for (int m = 0; m < 3; m++) {
        TRY(add_output(c, sn[m], &dst, 2, B, d[m], 0));
        memcpy(dst, s[m], B * d[m] * sizeof(float));
    }
    TRY(add_output(c, "z", &dst, 2, B, dg, 0));
    memcpy(dst, z, B * dg * sizeof(float));
    for (int m = 0; m < 3; m++) {
        TRY(add_output(c, en[m], &dst, 2, B, d[m], 0));
        memcpy(dst, e[m], B * d[m] * sizeof(float));
    }

    for (int m = 0; m < 3; m++)
        TRY(add_output(c, dxn[m], &dx[m], 3, T, B, d[m]));
    CALL(c, balm_fcm_backward(f, dy, dx, 0));
    TRY(get_grad(c, f, BALM_FCM_WG, "dwg", 2, dg, dsum));
    TRY(get_grad(c, f, BALM_FCM_BG, "dbg", 1, dg, 0));
    for (int m = 0; m < 3; m++) {
        TRY(get_grad(c, f, wid[m], dwn[m], 2, d[m], dg));
        TRY(get_grad(c, f, bid[m], dbn[m], 1, d[m], 0));
    }
    return BALM_EXIT_OK;
}

static int run_fcm(check_case *c, const check_opts *o)
{
    size_t T, B, d[3], dg;
    TRY(case_size(c, "T", &T));
    TRY(case_size(c, "B", &B));
    TRY(case_size(c, "dl", &d[0]));
    TRY(case_size(c, "da", &d[1]));
    TRY(case_size(c, "dv", &d[2]));
    TRY(case_size(c, "dg", &dg));
    const char *eps = case_get(c, "eps");
    if (eps && fabs(strtod(eps, NULL) - 1e-8) > 1e-12)
        return case_err(c, BALM_EXIT_USAGE,
                        "%s/case.txt: eps %s differs from the library's fixed 1e-8", c->dir, eps);
    balm_fcm_config cfg;
    memset(&cfg, 0, sizeof cfg);
    for (int m = 0; m < 3; m++)
        cfg.d[m] = d[m];
    cfg.d_global = dg;
    cfg.max_T = T;
    cfg.max_B = B;
    cfg.layout = BALM_LAYOUT_TBD;
    cfg.backend = o->linear;
    cfg.seed = 1;
    balm_fcm *f = NULL;
    balm_status st = balm_fcm_create(&cfg, &f);
    if (st == BALM_ERR_UNSUPPORTED)
        return case_err(c, BALM_EXIT_USAGE, "--linear %s: %s", backend_name(o->linear),
                        balm_last_error());
    if (st != BALM_OK)
        return lib_fail(c, "balm_fcm_create", st);
    snprintf(c->extra, sizeof c->extra, ", linear=%s", backend_name(balm_fcm_backend(f)));
    int rc = fcm_body(c, f, T, B, d, dg);
    balm_fcm_destroy(f);
    return rc;
}

static const struct {
    const char *kind;
    int (*run)(check_case *, const check_opts *);
} kinds[] = {
    {"kl_cls", run_kl_cls}, {"kl_reg", run_kl_reg}, {"cos", run_cos},
    {"coeff", run_coeff},   {"fcm", run_fcm},
};

/* --------------------------------------------------------------- compare */

static double tolerance(const char *kind, const char *name)
{
    static const char *const pgrad[] = {"dwg", "dbg", "dwl", "dbl", "dwa", "dba", "dwv", "dbv"};
    if (strcmp(kind, "fcm") != 0)
        return TOL_DEFAULT;
    for (size_t i = 0; i < sizeof pgrad / sizeof pgrad[0]; i++)
        if (strcmp(name, pgrad[i]) == 0)
            return TOL_FCM_PARAM_GRAD;
    if (strcmp(name, "dl") == 0 || strcmp(name, "da") == 0 || strcmp(name, "dv") == 0)
        return TOL_FCM_DX;
    return TOL_DEFAULT;
}

/* max|got - want| / max(max|want|, TINY); NaN in `got` gives NaN (always a
 * failure) and *nan_at its first index. Non-finite golden values must be
 * matched exactly. */
static double rel_error(const float *got, const float *want, size_t n, size_t *nan_at)
{
    double scale = 0.0, diff = 0.0;
    *nan_at = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i])) {
            *nan_at = i;
            return NAN;
        }
        if (isfinite(want[i])) {
            double a = fabs((double)want[i]);
            if (a > scale)
                scale = a;
            double dd = fabs((double)got[i] - (double)want[i]);
            if (dd > diff)
                diff = dd;
        } else if (got[i] != want[i]) {
            return INFINITY;
        }
    }
    return diff / (scale > TINY ? scale : TINY);
}

/* Compares every output with its golden file. Returns the case status and
 * appends the per-array figures to `summary`. */
static int compare_outputs(check_case *c, char *summary, size_t cap, char *bad, size_t badcap)
{
    size_t sn = 0, bn = 0;
    int rc = BALM_EXIT_OK;
    summary[0] = bad[0] = '\0';
    for (size_t i = 0; i < c->nout; i++) {
        out_array *o = &c->out[i];
        char path[4200];
        balm_array want;
        snprintf(path, sizeof path, "%s/%s.npy", c->dir, o->name);
        if (balm_npy_read(path, &want) != BALM_OK)
            return case_err(c, BALM_EXIT_USAGE, "golden %s", balm_last_error());
        int same = want.ndim == o->ndim;
        for (size_t k = 0; same && k < o->ndim; k++)
            same = want.shape[k] == o->shape[k];
        if (!same) {
            char ws[128], gs[128];
            fmt_shape(ws, sizeof ws, want.ndim, want.shape);
            fmt_shape(gs, sizeof gs, o->ndim, o->shape);
            balm_array_free(&want);
            return case_err(c, BALM_EXIT_USAGE, "%s: golden shape %s, computed %s", path, ws, gs);
        }
        size_t nan_at;
        double err = rel_error(o->data, want.data, o->count, &nan_at);
        double tol = tolerance(c->kind, o->name);
        balm_array_free(&want);
        if (sn < cap)
            sn += (size_t)snprintf(summary + sn, cap - sn, "%s%s %.1e", i ? ", " : "", o->name,
                                   err);
        if (!(err <= tol)) {
            rc = BALM_EXIT_FAIL;
            if (bn < badcap) {
                if (nan_at != SIZE_MAX)
                    bn += (size_t)snprintf(bad + bn, badcap - bn, "%s%s has NaN at flat index %zu",
                                           bn ? "; " : "", o->name, nan_at);
                else
                    bn += (size_t)snprintf(bad + bn, badcap - bn, "%s%s rel err %.2e > tol %.0e",
                                           bn ? "; " : "", o->name, err, tol);
            }
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ --out */

static int mkdir_p(const char *path)
{
    char buf[4200];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char ch = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            buf[i] = ch;
        }
    }
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) ? 0 : -1;
}

static int write_outputs(check_case *c, const char *out_dir)
{
    char dir[4200], path[4400];
    snprintf(dir, sizeof dir, "%s/%s", out_dir, c->name);
    if (mkdir_p(dir) != 0)
        return case_err(c, BALM_EXIT_USAGE, "--out: cannot create %s: %s", dir, strerror(errno));
    for (size_t i = 0; i < c->nout; i++) {
        const out_array *o = &c->out[i];
        snprintf(path, sizeof path, "%s/%s.npy", dir, o->name);
        if (balm_npy_write(path, o->data, o->ndim, o->shape) != BALM_OK)
            return case_err(c, BALM_EXIT_USAGE, "--out: %s", balm_last_error());
    }
    return BALM_EXIT_OK;
}

/* ------------------------------------------------------------------ driver */

/* Not an exit status: an argument that is a file, not a case folder (the
 * README next to the golden case folders), skipped with a note. */
#define CASE_SKIPPED (-1)

static int run_case(const char *dir, const check_opts *o)
{
    struct stat sb;
    if (stat(dir, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        printf("SKIP %s: not a folder\n", dir);
        return CASE_SKIPPED;
    }
    check_case *c = calloc(1, sizeof *c);
    if (!c) {
        printf("ERROR %s: out of memory\n", dir);
        return BALM_EXIT_USAGE;
    }
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n >= sizeof c->dir) {
        printf("ERROR %s: path too long\n", dir);
        free(c);
        return BALM_EXIT_USAGE;
    }
    memcpy(c->dir, dir, n);
    c->dir[n] = '\0';
    const char *slash = strrchr(c->dir, '/');
    c->name = slash && slash[1] ? slash + 1 : c->dir;

    const char *isa = balm_isa_name(balm_isa_active());
    int rc = read_case_txt(c);
    if (rc == BALM_EXIT_OK) {
        size_t k;
        for (k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            if (strcmp(kinds[k].kind, c->kind) == 0)
                break;
        if (k == sizeof kinds / sizeof kinds[0])
            rc = case_err(c, BALM_EXIT_USAGE,
                          "%s/case.txt: unknown kind '%s' (expected kl_cls, kl_reg, cos, coeff "
                          "or fcm)",
                          c->dir, c->kind);
        else
            rc = kinds[k].run(c, o);
    }
    /* Write what was computed even when the case then fails: that is when
     * the arrays are most useful. */
    if (rc != BALM_EXIT_USAGE && o->out_dir) {
        int wrc = write_outputs(c, o->out_dir);
        if (wrc != BALM_EXIT_OK)
            rc = wrc;
    }
    char summary[2048], bad[1024];
    if (rc == BALM_EXIT_OK)
        rc = compare_outputs(c, summary, sizeof summary, bad, sizeof bad);

    if (rc == BALM_EXIT_OK)
        printf("PASS %s (%s, isa=%s%s) max rel err: %s\n", c->name, c->kind, isa, c->extra,
               summary);
    else if (rc == BALM_EXIT_FAIL && c->msg[0] == '\0')
        printf("FAIL %s (%s, isa=%s%s): %s; max rel err: %s\n", c->name, c->kind, isa, c->extra,
               bad, summary);
    else if (rc == BALM_EXIT_FAIL)
        printf("FAIL %s (%s, isa=%s%s): %s\n", c->name, c->kind, isa, c->extra, c->msg);
    else
        printf("ERROR %s (%s): %s\n", c->name, c->kind[0] ? c->kind : "kind unknown", c->msg);
    fflush(stdout);
    case_free(c);
    free(c);
    return rc;
}

void balm_check_usage(FILE *fp)
{
    fprintf(fp,
            "usage: balm check [--isa ISA] [--out DIR] [--linear ref|onednn|auto] CASE_DIR...\n"
            "Runs each golden case folder (case.txt + float32 .npy arrays) through the\n"
            "library and compares every output with the golden array.\n"
            "  --isa ISA     cap the ISA (scalar, avx2, avx512, neon) before anything runs;\n"
            "                exit 2 if this build and CPU do not support it\n"
            "  --out DIR     write every computed array as DIR/<case>/<array>.npy\n"
            "  --linear B    FCM linear-layer backend: auto (default: oneDNN when built in),\n"
            "                ref (plain C) or onednn\n"
            "kinds: kl_cls, kl_reg, cos, coeff, fcm (see shared/golden/README.md)\n"
            "error per array: max|got - want| / max(max|want|, %.0e); NaN always fails\n"
            "tolerances: %.0e; fcm parameter gradients (dwg dbg dwl dbl dwa dba dwv dbv) %.0e;\n"
            "            fcm input gradients (dl da dv) %.0e\n"
            "output: one PASS/FAIL/ERROR line per case (arguments that are files, not\n"
            "folders, are skipped); exit 0 if all pass, 1 if any case fails, 2 on usage\n"
            "errors and unreadable or malformed cases\n",
            TINY, TOL_DEFAULT, TOL_FCM_PARAM_GRAD, TOL_FCM_DX);
}

/* "--opt value" or "--opt=value"; returns the value or NULL if absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt, int *missing)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("balm check: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    balm_check_usage(stderr);
    return BALM_EXIT_USAGE;
}

int balm_cmd_check(int argc, char **argv)
{
    check_opts o = {NULL, BALM_LINEAR_AUTO};
    const char *isa_arg = NULL;
    int first_dir = argc, i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int missing = 0;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            balm_check_usage(stdout);
            return BALM_EXIT_OK;
        }
        if ((v = opt_value(argc, argv, &i, "--isa", &missing)) != NULL) {
            isa_arg = v;
        } else if ((v = opt_value(argc, argv, &i, "--out", &missing)) != NULL) {
            o.out_dir = v;
        } else if ((v = opt_value(argc, argv, &i, "--linear", &missing)) != NULL) {
            if (strcmp(v, "ref") == 0)
                o.linear = BALM_LINEAR_REF;
            else if (strcmp(v, "onednn") == 0)
                o.linear = BALM_LINEAR_ONEDNN;
            else if (strcmp(v, "auto") == 0)
                o.linear = BALM_LINEAR_AUTO;
            else
                return usage_error("unknown --linear backend '%s' (expected ref, onednn or auto)",
                                   v);
        } else if (missing) {
            return usage_error("option %s needs a value", a);
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    first_dir = i;
    if (first_dir >= argc)
        return usage_error("%s", "no case folder given");

    /* The cap goes in before any kernel runs or dispatch initialises. */
    if (isa_arg) {
        balm_isa isa;
        if (balm_isa_from_name(isa_arg, &isa) != BALM_OK)
            return usage_error("unknown ISA '%s' (expected scalar, avx2, avx512 or neon)", isa_arg);
        balm_status st = balm_isa_set_cap(isa);
        if (st != BALM_OK) {
            fprintf(stderr, "balm check: --isa %s: %s\n", isa_arg, balm_last_error());
            return BALM_EXIT_USAGE;
        }
        if (!balm_isa_supported(isa)) {
            fprintf(stderr, "balm check: --isa %s: not supported by this build and CPU\n",
                    isa_arg);
            return BALM_EXIT_USAGE;
        }
    }

    int worst = BALM_EXIT_OK, npass = 0, nfail = 0, nerr = 0;
    for (i = first_dir; i < argc; i++) {
        int rc = run_case(argv[i], &o);
        if (rc == CASE_SKIPPED)
            continue;
        if (rc == BALM_EXIT_OK)
            npass++;
        else if (rc == BALM_EXIT_FAIL)
            nfail++;
        else
            nerr++;
        if (rc == BALM_EXIT_USAGE || (rc == BALM_EXIT_FAIL && worst == BALM_EXIT_OK))
            worst = rc;
    }
    printf("%d passed, %d failed, %d errors\n", npass, nfail, nerr);
    if (npass + nfail + nerr == 0) {
        fputs("balm check: none of the arguments is a case folder\n", stderr);
        return BALM_EXIT_USAGE;
    }
    return worst;
}
