/* The linear-layer front end (argument checks, backend choice, timing) and
 * the plain C backend, which is the oracle and the build without oneDNN. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"
#include "linear_ref.h"

struct balm_linear {
    size_t in, out, max_rows;
    balm_linear_backend be;
    float *acc; /* plain C path: one row of max(in, out) floats */
#ifdef BALM_HAVE_ONEDNN
    balm_linear_dnn *dnn;
#endif
};

static int balm_linear_threads = 1;          /* oneDNN default: single-threaded */
static _Thread_local double balm_linear_secs; /* time inside linear calls */

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------ plain C path */
void balm_linear_ref_fwd(size_t rows, size_t in, size_t out, const float *x, const float *W,
                         const float *b, float *y)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * in;
        for (size_t o = 0; o < out; o++) {
            const float *wo = W + o * in;
            float acc = 0.0f;
            for (size_t k = 0; k < in; k++)
                acc += xr[k] * wo[k];
            y[r * out + o] = b ? acc + b[o] : acc;
        }
    }
}

/* Both backward loops stream rows contiguously into a scratch row `acc` and
 * still add the terms of every element in ascending order from 0, so the
 * result is the same as the textbook loop order, bit for bit. */
void balm_linear_ref_bwd_data(size_t rows, size_t in, size_t out, const float *dy,
                              const float *W, float *dx, int accumulate, float *acc)
{
    for (size_t r = 0; r < rows; r++) {
        float *dxr = dx + r * in;
        const float *dyr = dy + r * out;
        for (size_t k = 0; k < in; k++)
            acc[k] = 0.0f;
        for (size_t o = 0; o < out; o++) {
            const float g = dyr[o], *wo = W + o * in;
            for (size_t k = 0; k < in; k++)
                acc[k] += g * wo[k];
        }
        for (size_t k = 0; k < in; k++)
            dxr[k] = accumulate ? dxr[k] + acc[k] : acc[k];
    }
}

void balm_linear_ref_bwd_weights(size_t rows, size_t in, size_t out, const float *dy,
                                 const float *x, float *dW, float *db, int accumulate,
                                 float *acc)
{
    for (size_t o = 0; o < out; o++) {
        float *dwo = dW + o * in;
        for (size_t k = 0; k < in; k++)
            acc[k] = 0.0f;
        for (size_t r = 0; r < rows; r++) {
            const float g = dy[r * out + o], *xr = x + r * in;
            for (size_t k = 0; k < in; k++)
                acc[k] += g * xr[k];
        }
        for (size_t k = 0; k < in; k++)
            dwo[k] = accumulate ? dwo[k] + acc[k] : acc[k];
        if (db) {
            float sum = 0.0f;
            for (size_t r = 0; r < rows; r++)
                sum += dy[r * out + o];
            db[o] = accumulate ? db[o] + sum : sum;
        }
    }
}

/* ------------------------------------------------------------- front end */
int balm_linear_backend_available(balm_linear_backend be)
{
    switch (be) {
    case BALM_LINEAR_AUTO:
    case BALM_LINEAR_REF: return 1;
    case BALM_LINEAR_ONEDNN:
#ifdef BALM_HAVE_ONEDNN
        return 1;
#else
        return 0;
#endif
    }
    return 0;
}

balm_linear_backend balm_linear_backend_resolve(balm_linear_backend be)
{
    if (be != BALM_LINEAR_AUTO)
        return be;
#ifdef BALM_HAVE_ONEDNN
    return BALM_LINEAR_ONEDNN;
#else
    return BALM_LINEAR_REF;
#endif
}

const char *balm_linear_backend_name(balm_linear_backend be)
{
    switch (be) {
    case BALM_LINEAR_AUTO: return "auto";
    case BALM_LINEAR_REF: return "ref";
    case BALM_LINEAR_ONEDNN: return "onednn";
    }
    return NULL;
}

balm_status balm_linear_create(size_t in, size_t out, size_t max_rows,
                               balm_linear_backend backend, balm_linear **lin)
{
    static const char *fn = "balm_linear_create";
    size_t tmp;
    if (!lin)
        return balm_fail(BALM_ERR_NULL, "%s: lin is NULL", fn);
    *lin = NULL;
    if (in == 0 || out == 0 || max_rows == 0)
        return balm_fail(BALM_ERR_SIZE, "%s: in=%zu, out=%zu, max_rows=%zu must be >= 1", fn,
                         in, out, max_rows);
    if (balm_mul_ovf(in, out, &tmp) || balm_mul_ovf(max_rows, in > out ? in : out, &tmp) ||
        tmp > (size_t)INT64_MAX / sizeof(float))
        return balm_fail(BALM_ERR_SIZE, "%s: in=%zu x out=%zu x max_rows=%zu overflows", fn, in,
                         out, max_rows);
    if ((unsigned)backend > (unsigned)BALM_LINEAR_ONEDNN)
        return balm_fail(BALM_ERR_ARG, "%s: backend=%d is not a balm_linear_backend", fn,
                         (int)backend);
    if (!balm_linear_backend_available(backend))
        return balm_fail(BALM_ERR_UNSUPPORTED, "%s: backend=onednn: built without oneDNN", fn);
    balm_linear *l = calloc(1, sizeof *l);
    if (!l)
        return balm_fail(BALM_ERR_NOMEM, "%s: out of memory", fn);
    l->in = in;
    l->out = out;
    l->max_rows = max_rows;
    l->be = balm_linear_backend_resolve(backend);
    if (l->be == BALM_LINEAR_REF && !(l->acc = malloc((in > out ? in : out) * sizeof(float)))) {
        free(l);
        return balm_fail(BALM_ERR_NOMEM, "%s: out of memory", fn);
    }
#ifdef BALM_HAVE_ONEDNN
    if (l->be == BALM_LINEAR_ONEDNN) {
        balm_status s = balm_linear_dnn_create(in, out, max_rows, &l->dnn);
        if (s != BALM_OK) {
            free(l);
            return s;
        }
    }
#endif
    *lin = l;
    return BALM_OK;
}

void balm_linear_destroy(balm_linear *lin)
{
    if (!lin)
        return;
#ifdef BALM_HAVE_ONEDNN
    balm_linear_dnn_destroy(lin->dnn);
#endif
    free(lin->acc);
    free(lin);
}

balm_linear_backend balm_linear_get_backend(const balm_linear *lin) { return lin->be; }
size_t balm_linear_in(const balm_linear *lin) { return lin->in; }
size_t balm_linear_out(const balm_linear *lin) { return lin->out; }
size_t balm_linear_max_rows(const balm_linear *lin) { return lin->max_rows; }

static balm_status check_call(const char *fn, const balm_linear *lin, size_t rows)
{
    if (!lin)
        return balm_fail(BALM_ERR_NULL, "%s: lin is NULL", fn);
    if (rows > lin->max_rows)
        return balm_fail(BALM_ERR_SIZE, "%s: rows=%zu above max_rows=%zu", fn, rows,
                         lin->max_rows);
    return BALM_OK;
}

balm_status balm_linear_forward(balm_linear *lin, size_t rows, const float *x,
                                const float *W, const float *b, float *y)
{
    static const char *fn = "balm_linear_forward";
    balm_status s = check_call(fn, lin, rows);
    if (s != BALM_OK)
        return s;
    if (!W || (rows && (!x || !y)))
        return balm_fail(BALM_ERR_NULL, "%s: %s is NULL", fn, !W ? "W" : !x ? "x" : "y");
    if (rows == 0)
        return BALM_OK;
    double t0 = now_s();
#ifdef BALM_HAVE_ONEDNN
    if (lin->be == BALM_LINEAR_ONEDNN)
        s = balm_linear_dnn_fwd(lin->dnn, rows, x, W, b, y);
    else
#endif
        balm_linear_ref_fwd(rows, lin->in, lin->out, x, W, b, y);
    balm_linear_secs += now_s() - t0;
    return s;
}

balm_status balm_linear_backward_data(balm_linear *lin, size_t rows, const float *dy,
                                      const float *W, float *dx, int accumulate)
{
    static const char *fn = "balm_linear_backward_data";
    balm_status s = check_call(fn, lin, rows);
    if (s != BALM_OK)
        return s;
    if (!W || (rows && (!dy || !dx)))
        return balm_fail(BALM_ERR_NULL, "%s: %s is NULL", fn, !W ? "W" : !dy ? "dy" : "dx");
    if (accumulate != 0 && accumulate != 1)
        return balm_fail(BALM_ERR_ARG, "%s: accumulate=%d must be 0 or 1", fn, accumulate);
    if (rows == 0)
        return BALM_OK;
    double t0 = now_s();
#ifdef BALM_HAVE_ONEDNN
    if (lin->be == BALM_LINEAR_ONEDNN)
        s = balm_linear_dnn_bwd_data(lin->dnn, rows, dy, W, dx, accumulate);
    else
#endif
        balm_linear_ref_bwd_data(rows, lin->in, lin->out, dy, W, dx, accumulate, lin->acc);
    balm_linear_secs += now_s() - t0;
    return s;
}

balm_status balm_linear_backward_weights(balm_linear *lin, size_t rows, const float *dy,
                                         const float *x, float *dW, float *db,
                                         int accumulate)
{
    static const char *fn = "balm_linear_backward_weights";
    balm_status s = check_call(fn, lin, rows);
    if (s != BALM_OK)
        return s;
    if (!dW || (rows && (!dy || !x)))
        return balm_fail(BALM_ERR_NULL, "%s: %s is NULL", fn, !dW ? "dW" : !dy ? "dy" : "x");
    if (accumulate != 0 && accumulate != 1)
        return balm_fail(BALM_ERR_ARG, "%s: accumulate=%d must be 0 or 1", fn, accumulate);
    if (rows == 0) {
        /* an empty batch contributes nothing: zero the gradients when overwriting */
        if (!accumulate) {
            memset(dW, 0, lin->in * lin->out * sizeof *dW);
            if (db)
                memset(db, 0, lin->out * sizeof *db);
        }
        return BALM_OK;
    }
    double t0 = now_s();
#ifdef BALM_HAVE_ONEDNN
    if (lin->be == BALM_LINEAR_ONEDNN) {
        s = balm_linear_dnn_bwd_weights(lin->dnn, rows, dy, x, dW, accumulate);
        /* the bias sum is cheap: plain C in a fixed order */
        if (s == BALM_OK && db)
            for (size_t o = 0; o < lin->out; o++) {
                float acc = 0.0f;
                for (size_t r = 0; r < rows; r++)
                    acc += dy[r * lin->out + o];
                db[o] = accumulate ? db[o] + acc : acc;
            }
    } else
#endif
        balm_linear_ref_bwd_weights(rows, lin->in, lin->out, dy, x, dW, db, accumulate,
                                    lin->acc);
    balm_linear_secs += now_s() - t0;
    return s;
}

void balm_linear_set_threads(int n)
{
    balm_linear_threads = n;
#ifdef BALM_HAVE_ONEDNN
    balm_linear_dnn_apply_threads(n);
#endif
}

int balm_linear_get_threads(void)
{
    return balm_linear_threads;
}

double balm_linear_time(int reset)
{
    double t = balm_linear_secs;
    if (reset)
        balm_linear_secs = 0.0;
    return t;
}
