/* oneDNN backend of the linear layer: matmul primitives through the C API
 * (oneDNN 2.6), created once at create time with a runtime row count M so
 * that any rows <= max_rows reuses them; no primitive creation in a step.
 *
 *   forward          y[M][out]  = x[M][in] * W^T         (W^T: [in][out] strides {1, in})
 *   backward_data    dx[M][in]  = dy[M][out] * W[out][in] (+ post-op sum to accumulate)
 *   backward_weights dW[out][in] = dy^T[out][M] * x[M][in] (K = M at run time)
 *
 * Each object owns an engine, a stream, six primitives (bias / no bias,
 * overwrite / accumulate) and one user scratchpad sized for the largest.
 * Threads: the Debian oneDNN uses OpenMP and sizes its parallel regions and
 * scratchpads from omp_get_max_threads() of the calling thread, at creation
 * as well as at execution, and the two must agree (a mismatch measured 10-50x
 * slower). So each object records the thread count in force when it is
 * created (balm_linear_set_threads, or the runtime's value for 0) and sets it
 * around creation and every execute, restoring the caller's value. The OpenMP symbols are looked up at
 * run time (libgomp is loaded by libdnnl) so libbalm need not link it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <oneapi/dnnl/dnnl.h>
#include "internal.h"
#include "linear_ref.h"

enum { P_FWD, P_FWD_NB, P_BD, P_BD_ACC, P_BW, P_BW_ACC, P_COUNT };

struct balm_linear_dnn {
    size_t in, out, max_rows;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_t prim[P_COUNT];
    void *scratch;
    dnnl_memory_t scratch_mem;
    int nthr; /* OpenMP threads at creation and execution; 0: leave as is */
};

static int (*omp_get_max)(void);
static void (*omp_set_num)(int);
static int omp_looked_up;
static int dnn_threads = 1;

static void omp_lookup(void)
{
    if (omp_looked_up)
        return;
    /* benign race: every thread stores the same pointers */
    *(void **)&omp_get_max = dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    *(void **)&omp_set_num = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    omp_looked_up = 1;
}

void balm_linear_dnn_apply_threads(int n)
{
    dnn_threads = n;
}

/* Set the object's thread count; returns the value to restore (-1: none). */
static int threads_enter(const balm_linear_dnn *d)
{
    if (d->nthr <= 0 || !omp_get_max || !omp_set_num)
        return -1;
    int saved = omp_get_max();
    if (saved == d->nthr)
        return -1;
    omp_set_num(d->nthr);
    return saved;
}

static void threads_leave(int saved)
{
    if (saved > 0)
        omp_set_num(saved);
}

static balm_status dnn_fail(const char *fn, const char *what, dnnl_status_t st)
{
    return balm_fail(st == dnnl_out_of_memory ? BALM_ERR_NOMEM : BALM_ERR_UNSUPPORTED,
                     "%s: oneDNN %s failed (dnnl_status %d)", fn, what, (int)st);
}

/* Plain 2-D f32 descriptor; dims or strides may be DNNL_RUNTIME_DIM_VAL. */
static dnnl_status_t md2(dnnl_memory_desc_t *md, int64_t d0, int64_t d1, int64_t s0, int64_t s1)
{
    dnnl_dims_t dims = {d0, d1}, strides = {s0, s1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dnnl_f32, strides);
}

static dnnl_status_t make_prim(balm_linear_dnn *d, const dnnl_memory_desc_t *src,
                               const dnnl_memory_desc_t *wei, const dnnl_memory_desc_t *bias,
                               const dnnl_memory_desc_t *dst, int sum, dnnl_primitive_t *prim,
                               size_t *scratch_bytes)
{
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_matmul_desc_init(&desc, src, wei, bias, dst);
    if (st == dnnl_success)
        st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success)
        st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success && sum) {
        st = dnnl_post_ops_create(&po);
        if (st == dnnl_success)
            st = dnnl_post_ops_append_sum(po, 1.0f);
        if (st == dnnl_success)
            st = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&pd, &desc, attr, d->eng, NULL);
    if (st == dnnl_success) {
        const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        size_t sz = smd ? dnnl_memory_desc_get_size(smd) : 0;
        if (sz > *scratch_bytes)
            *scratch_bytes = sz;
        st = dnnl_primitive_create(prim, pd);
    }
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return st;
}

void balm_linear_dnn_destroy(balm_linear_dnn *d)
{
    if (!d)
        return;
    for (int i = 0; i < P_COUNT; i++)
        if (d->prim[i])
            dnnl_primitive_destroy(d->prim[i]);
    if (d->scratch_mem)
        dnnl_memory_destroy(d->scratch_mem);
    free(d->scratch);
    if (d->strm)
        dnnl_stream_destroy(d->strm);
    if (d->eng)
        dnnl_engine_destroy(d->eng);
    free(d);
}

/* Engine, stream, the six primitives and the scratchpad (d is freed by the
 * caller on failure). */
static balm_status dnn_create_all(balm_linear_dnn *d, size_t in, size_t out)
{
    static const char *fn = "balm_linear_create";
    const int64_t R = DNNL_RUNTIME_DIM_VAL, I = (int64_t)in, O = (int64_t)out;
    dnnl_status_t st = dnnl_engine_create(&d->eng, dnnl_cpu, 0);
    if (st != dnnl_success) {
        return dnn_fail(fn, "engine creation", st);
    }
    st = dnnl_stream_create(&d->strm, d->eng, dnnl_stream_default_flags);
    if (st != dnnl_success) {
        return dnn_fail(fn, "stream creation", st);
    }
    dnnl_memory_desc_t x_md, wt_md, b_md, y_md, dy_md, w_md, dx_md, dyt_md, xk_md, dw_md;
    size_t scratch = 0;
    st = md2(&x_md, R, I, I, 1);      /* x [M][in] */
    if (st == dnnl_success) st = md2(&wt_md, I, O, 1, I);  /* W^T viewed from W [out][in] */
    if (st == dnnl_success) st = md2(&b_md, 1, O, O, 1);
    if (st == dnnl_success) st = md2(&y_md, R, O, O, 1);   /* y [M][out] */
    if (st == dnnl_success) st = md2(&dy_md, R, O, O, 1);
    if (st == dnnl_success) st = md2(&w_md, O, I, I, 1);   /* W [out][in] */
    if (st == dnnl_success) st = md2(&dx_md, R, I, I, 1);
    if (st == dnnl_success) st = md2(&dyt_md, O, R, 1, O); /* dy^T [out][M], strides {1, out} */
    if (st == dnnl_success) st = md2(&xk_md, R, I, I, 1);  /* x [M][in] as weights, K = M */
    if (st == dnnl_success) st = md2(&dw_md, O, I, I, 1);
    const char *what = "memory descriptor";
    if (st == dnnl_success) {
        what = "forward matmul";
        st = make_prim(d, &x_md, &wt_md, &b_md, &y_md, 0, &d->prim[P_FWD], &scratch);
    }
    if (st == dnnl_success)
        st = make_prim(d, &x_md, &wt_md, NULL, &y_md, 0, &d->prim[P_FWD_NB], &scratch);
    if (st == dnnl_success) {
        what = "backward-data matmul";
        st = make_prim(d, &dy_md, &w_md, NULL, &dx_md, 0, &d->prim[P_BD], &scratch);
    }
    if (st == dnnl_success)
        st = make_prim(d, &dy_md, &w_md, NULL, &dx_md, 1, &d->prim[P_BD_ACC], &scratch);
    if (st == dnnl_success) {
        what = "backward-weights matmul";
        st = make_prim(d, &dyt_md, &xk_md, NULL, &dw_md, 0, &d->prim[P_BW], &scratch);
    }
    if (st == dnnl_success)
        st = make_prim(d, &dyt_md, &xk_md, NULL, &dw_md, 1, &d->prim[P_BW_ACC], &scratch);
    if (st != dnnl_success) {
        return dnn_fail(fn, what, st);
    }
    if (scratch) {
        d->scratch = aligned_alloc(64, (scratch + 63) / 64 * 64);
        dnnl_memory_desc_t s_md;
        dnnl_dims_t sd = {(int64_t)scratch};
        if (!d->scratch) {
                return balm_fail(BALM_ERR_NOMEM, "%s: out of memory (scratchpad %zu bytes)", fn,
                             scratch);
        }
        st = dnnl_memory_desc_init_by_tag(&s_md, 1, sd, dnnl_u8, dnnl_a);
        if (st == dnnl_success)
            st = dnnl_memory_create(&d->scratch_mem, &s_md, d->eng, d->scratch);
        if (st != dnnl_success) {
                return dnn_fail(fn, "scratchpad memory", st);
        }
    }
    return BALM_OK;
}

balm_status balm_linear_dnn_create(size_t in, size_t out, size_t max_rows,
                                   balm_linear_dnn **out_state)
{
    balm_linear_dnn *d = calloc(1, sizeof *d);
    if (!d)
        return balm_fail(BALM_ERR_NOMEM, "balm_linear_create: out of memory");
    d->in = in;
    d->out = out;
    d->max_rows = max_rows;
    omp_lookup();
    d->nthr = dnn_threads;
    const int saved = threads_enter(d);
    balm_status bs = dnn_create_all(d, in, out);
    threads_leave(saved);
    if (bs != BALM_OK) {
        balm_linear_dnn_destroy(d);
        return bs;
    }
    *out_state = d;
    return BALM_OK;
}

/* Run one primitive on user pointers with the actual M (or K) filled in. */
typedef struct arg2d {
    int arg;
    int64_t d0, d1, s0, s1;
    const void *ptr;
} arg2d;

static balm_status run(balm_linear_dnn *d, const char *fn, dnnl_primitive_t prim,
                       const arg2d *a, int na)
{
    dnnl_exec_arg_t args[5];
    dnnl_memory_t mem[4] = {0};
    dnnl_status_t st = dnnl_success;
    int n = 0;
    for (int i = 0; i < na && st == dnnl_success; i++) {
        dnnl_memory_desc_t md;
        st = md2(&md, a[i].d0, a[i].d1, a[i].s0, a[i].s1);
        if (st == dnnl_success)
            st = dnnl_memory_create(&mem[i], &md, d->eng, (void *)a[i].ptr);
        if (st == dnnl_success) {
            args[n].arg = a[i].arg;
            args[n].memory = mem[i];
            n++;
        }
    }
    if (st == dnnl_success && d->scratch_mem) {
        args[n].arg = DNNL_ARG_SCRATCHPAD;
        args[n].memory = d->scratch_mem;
        n++;
    }
    if (st == dnnl_success) {
        const int saved = threads_enter(d);
        st = dnnl_primitive_execute(prim, d->strm, n, args);
        if (st == dnnl_success)
            st = dnnl_stream_wait(d->strm);
        threads_leave(saved);
    }
    for (int i = 0; i < na; i++)
        if (mem[i])
            dnnl_memory_destroy(mem[i]);
    return st == dnnl_success ? BALM_OK : dnn_fail(fn, "matmul execution", st);
}

balm_status balm_linear_dnn_fwd(balm_linear_dnn *d, size_t rows, const float *x,
                                const float *W, const float *b, float *y)
{
    const int64_t M = (int64_t)rows, I = (int64_t)d->in, O = (int64_t)d->out;
    arg2d a[4] = {
        {DNNL_ARG_SRC, M, I, I, 1, x},
        {DNNL_ARG_WEIGHTS, I, O, 1, I, W},
        {DNNL_ARG_DST, M, O, O, 1, y},
        {DNNL_ARG_BIAS, 1, O, O, 1, b},
    };
    return run(d, "balm_linear_forward", d->prim[b ? P_FWD : P_FWD_NB], a, b ? 4 : 3);
}

balm_status balm_linear_dnn_bwd_data(balm_linear_dnn *d, size_t rows, const float *dy,
                                     const float *W, float *dx, int accumulate)
{
    const int64_t M = (int64_t)rows, I = (int64_t)d->in, O = (int64_t)d->out;
    arg2d a[3] = {
        {DNNL_ARG_SRC, M, O, O, 1, dy},
        {DNNL_ARG_WEIGHTS, O, I, I, 1, W},
        {DNNL_ARG_DST, M, I, I, 1, dx},
    };
    return run(d, "balm_linear_backward_data", d->prim[accumulate ? P_BD_ACC : P_BD], a, 3);
}

balm_status balm_linear_dnn_bwd_weights(balm_linear_dnn *d, size_t rows, const float *dy,
                                        const float *x, float *dW, int accumulate)
{
    const int64_t M = (int64_t)rows, I = (int64_t)d->in, O = (int64_t)d->out;
    arg2d a[3] = {
        {DNNL_ARG_SRC, O, M, 1, O, dy},
        {DNNL_ARG_WEIGHTS, M, I, I, 1, x},
        {DNNL_ARG_DST, O, I, I, 1, dW},
    };
    return run(d, "balm_linear_backward_weights", d->prim[accumulate ? P_BW_ACC : P_BW], a, 3);
}
