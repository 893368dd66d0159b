/* The oneDNN peer: each op composed from oneDNN 2.x primitives the way a user
 * of oneDNN would compose it, on the same inputs as the kernels (impl
 * "onednn"). Primitives are created outside the timed region; one call runs
 * the whole chain and waits for the stream. The label names the oneDNN
 * implementations chosen (jit:avx512_core, ref, ...).
 *
 *   pool/fwd       reorder (mask to [B][T]) -> reduction (count, post-op
 *                  +1e-8) -> batched matmul [B][1][T] x [B][T][D] (the masked
 *                  sum) -> binary div by the count
 *   pool/bwd       reorder -> count -> binary div ds/count -> batched matmul
 *                  [B][T][1] x [B][1][D] with the sum post-op (dx +=)
 *   gate/fwd       eltwise logistic -> eltwise linear x2 -> binary mul x*g ->
 *                  binary mul by the mask (in place)
 *   gate/bwd       logistic x2 -> binary mul dy*g -> mask (in place) ->
 *                  binary mul dy*x -> reorder -> batched matmul (masked sum
 *                  over T) -> eltwise logistic backward -> eltwise linear x2
 *   kl/cls         eltwise log -> binary sub (post-op mul p) -> reduction
 *   cos/dot_norms  three matmuls [1][n] x [n][1] (dot and both squared norms)
 *   cos/direction  sum primitive with scales
 *   grad/scale     eltwise linear (in place)
 *   grad/std       reduction sum + matmul x.x
 * Where oneDNN 2.6 would pick its reference code for the obvious formulation
 * (binary post-ops with these broadcasts, a reduction over a non-innermost
 * dim, a matmul over a strided mask, a squared-norm reduction), the chain
 * above takes the formulation oneDNN runs with JIT code, as a careful user
 * would after reading the verbose log.
 * kl/reg and grad/noise have no natural oneDNN composition (no RNG). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_data.h"

#ifdef BALM_BENCH_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#ifdef BALM_BENCH_HAVE_OMP
#include <omp.h>
#endif

#define MAX_STEPS 16
#define MAX_ARGS 6
#define MAX_MEMS 24
#define MAX_SCRATCH 4

typedef struct step {
    dnnl_primitive_t prim;
    int nargs;
    dnnl_exec_arg_t args[MAX_ARGS];
} step;

typedef struct dn_state {
    step steps[2][MAX_STEPS]; /* [1]: the alternate chain (grad/scale's 0.5) */
    int nsteps[2];
    dnnl_memory_t mems[MAX_MEMS];
    int nmems;
    float *scratch[MAX_SCRATCH];
    uint64_t *phase; /* grad/scale: the shared vec_data.phase picks the chain */
    char label[160];
} dn_state;

static dnnl_engine_t g_eng;
static dnnl_stream_t g_strm;

static void dn_release(void *p)
{
    dn_state *s = p;
    if (!s) return;
    for (int a = 0; a < 2; a++)
        for (int i = 0; i < s->nsteps[a]; i++)
            dnnl_primitive_destroy(s->steps[a][i].prim);
    for (int i = 0; i < s->nmems; i++)
        dnnl_memory_destroy(s->mems[i]);
    for (int i = 0; i < MAX_SCRATCH; i++)
        balm_bench_free(s->scratch[i]);
    free(s);
}

static const char *dn_label(void *p) { return ((dn_state *)p)->label; }

/* A memory descriptor of nd dims over strides. */
static dnnl_memory_desc_t md(int nd, const int64_t *dims, const int64_t *strides)
{
    dnnl_memory_desc_t m;
    dnnl_dims_t d, s;
    memset(&m, 0, sizeof m);
    for (int i = 0; i < nd; i++)
        d[i] = dims[i], s[i] = strides[i];
    dnnl_memory_desc_init_by_strides(&m, nd, d, dnnl_f32, s);
    return m;
}

/* A memory object over a user pointer, owned by s. NULL on failure. */
static dnnl_memory_t mem(dn_state *s, const dnnl_memory_desc_t *m, void *ptr)
{
    dnnl_memory_t r = NULL;
    if (s->nmems == MAX_MEMS || dnnl_memory_create(&r, m, g_eng, ptr) != dnnl_success)
        return NULL;
    s->mems[s->nmems++] = r;
    return r;
}

/* Create the primitive of pd (consumed), append it to chain `alt` with its
 * arguments and its implementation name to the label. */
static int add_pd(dn_state *s, int alt, dnnl_primitive_desc_t pd, int nargs,
                  const dnnl_exec_arg_t *args, char *err, size_t errlen, const char *what)
{
    const char *impl = "?";
    dnnl_primitive_t prim = NULL;
    if (s->nsteps[alt] == MAX_STEPS) {
        dnnl_primitive_desc_destroy(pd);
        balm_bench_fmt(err, errlen, "oneDNN: more than %d steps", MAX_STEPS);
        return 0;
    }
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    if (dnnl_primitive_create(&prim, pd) != dnnl_success) {
        dnnl_primitive_desc_destroy(pd);
        balm_bench_fmt(err, errlen, "oneDNN: cannot create the %s primitive", what);
        return 0;
    }
    size_t len = strlen(s->label);
    balm_bench_fmt(s->label + len, sizeof s->label - len, "%s%s:%s", len ? " " : "", what, impl);
    dnnl_primitive_desc_destroy(pd);
    step *st = &s->steps[alt][s->nsteps[alt]++];
    st->prim = prim;
    st->nargs = nargs;
    memcpy(st->args, args, (size_t)nargs * sizeof *args);
    return 1;
}

static int add_op(dn_state *s, int alt, const_dnnl_op_desc_t od, const_dnnl_primitive_attr_t attr,
                  const_dnnl_primitive_desc_t hint, int nargs, const dnnl_exec_arg_t *args,
                  char *err, size_t errlen, const char *what)
{
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_desc_create(&pd, od, attr, g_eng, hint) != dnnl_success) {
        balm_bench_fmt(err, errlen, "oneDNN: no implementation for the %s step", what);
        return 0;
    }
    return add_pd(s, alt, pd, nargs, args, err, errlen, what);
}

/* Attributes with one eltwise post-op (alg, alpha, beta). */
static dnnl_primitive_attr_t attr_eltwise(dnnl_alg_kind_t alg, float alpha, float beta)
{
    dnnl_primitive_attr_t a = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_attr_create(&a);
    dnnl_post_ops_create(&po);
    dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, beta);
    dnnl_primitive_attr_set_post_ops(a, po);
    dnnl_post_ops_destroy(po);
    return a;
}

/* Attributes with one binary post-op whose second input is src1. */
static dnnl_primitive_attr_t attr_binary(dnnl_alg_kind_t alg, const dnnl_memory_desc_t *src1)
{
    dnnl_primitive_attr_t a = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_attr_create(&a);
    dnnl_post_ops_create(&po);
    dnnl_post_ops_append_binary(po, alg, src1);
    dnnl_primitive_attr_set_post_ops(a, po);
    dnnl_post_ops_destroy(po);
    return a;
}

/* Attributes with the sum post-op (dst += result). */
static dnnl_primitive_attr_t attr_sum(void)
{
    dnnl_primitive_attr_t a = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_attr_create(&a);
    dnnl_post_ops_create(&po);
    dnnl_post_ops_append_sum(po, 1.0f);
    dnnl_primitive_attr_set_post_ops(a, po);
    dnnl_post_ops_destroy(po);
    return a;
}

#define ARG(k, m) ((dnnl_exec_arg_t){(k), (m)})
#define PO1 (DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1)
#define TRY(x)                                                                           \
    do {                                                                                 \
        if (!(x)) goto fail;                                                             \
    } while (0)
#define NEWMEM(var, mdv, ptr)                                                            \
    do {                                                                                 \
        if (!((var) = mem(s, &(mdv), (ptr)))) {                                          \
            balm_bench_fmt(err, errlen, "oneDNN: cannot create a memory object");        \
            goto fail;                                                                   \
        }                                                                                \
    } while (0)

/* The mask [T][B] transposed to [B][T] by a reorder into mt, then the count
 * of present steps per sample plus 1e-8 (reduction over T, post-op linear)
 * into cnt [B] unless cnt is NULL. Reductions over a strided (non-innermost) dim and matmuls
 * with a strided mask fall back to oneDNN's reference code, so a user
 * transposes the small mask first. */
static int add_mask_t(dn_state *s, seq_data *q, float *mt, float *cnt, char *err, size_t errlen)
{
    int64_t T = (int64_t)q->L.T, B = (int64_t)q->L.B;
    dnnl_memory_desc_t m_md = md(2, (int64_t[]){T, B}, (int64_t[]){B, 1});
    dnnl_memory_desc_t mt_md = md(2, (int64_t[]){T, B}, (int64_t[]){1, T});
    dnnl_memory_desc_t bt_md = md(2, (int64_t[]){B, T}, (int64_t[]){T, 1});
    dnnl_memory_desc_t c_md = md(2, (int64_t[]){B, 1}, (int64_t[]){1, 1});
    dnnl_memory_t mm, mmt, mbt, cm = NULL;
    dnnl_primitive_desc_t pd = NULL;
    NEWMEM(mm, m_md, q->m);
    NEWMEM(mmt, mt_md, mt);
    NEWMEM(mbt, bt_md, mt);
    if (cnt) NEWMEM(cm, c_md, cnt);
    if (dnnl_reorder_primitive_desc_create(&pd, &m_md, g_eng, &mt_md, g_eng, NULL) !=
        dnnl_success) {
        balm_bench_fmt(err, errlen, "oneDNN: no reorder for the mask transpose");
        goto fail;
    }
    dnnl_exec_arg_t a0[] = {ARG(DNNL_ARG_FROM, mm), ARG(DNNL_ARG_TO, mmt)};
    TRY(add_pd(s, 0, pd, 2, a0, err, errlen, "maskT"));
    if (!cnt) return 1;
    dnnl_reduction_desc_t rd;
    dnnl_reduction_desc_init(&rd, dnnl_reduction_sum, &bt_md, &c_md, 0.0f, 0.0f);
    dnnl_primitive_attr_t a = attr_eltwise(dnnl_eltwise_linear, 1.0f, 1e-8f);
    dnnl_exec_arg_t args[] = {ARG(DNNL_ARG_SRC, mbt), ARG(DNNL_ARG_DST, cm)};
    int ok = add_op(s, 0, &rd, a, NULL, 2, args, err, errlen, "count");
    dnnl_primitive_attr_destroy(a);
    return ok;
fail:
    return 0;
}

/* out[b] (1 x D) = mt[b] (1 x T) x src_b (T x D), src rows B*D apart:
 * a batched matmul over the samples, the masked sum over the steps. */
static int add_masked_sum(dn_state *s, seq_data *q, const float *mt, const float *src,
                          float *out, char *err, size_t errlen, const char *what)
{
    int64_t T = (int64_t)q->L.T, B = (int64_t)q->L.B, D = (int64_t)q->L.D;
    dnnl_memory_desc_t a = md(3, (int64_t[]){B, 1, T}, (int64_t[]){T, T, 1});
    dnnl_memory_desc_t w = md(3, (int64_t[]){B, T, D}, (int64_t[]){D, B * D, 1});
    dnnl_memory_desc_t o = md(3, (int64_t[]){B, 1, D}, (int64_t[]){D, D, 1});
    dnnl_memory_t ma, mw, mo;
    NEWMEM(ma, a, (void *)mt);
    NEWMEM(mw, w, (void *)src);
    NEWMEM(mo, o, out);
    dnnl_matmul_desc_t mmd;
    dnnl_matmul_desc_init(&mmd, &a, &w, NULL, &o);
    dnnl_exec_arg_t args[] = {ARG(DNNL_ARG_SRC, ma), ARG(DNNL_ARG_WEIGHTS, mw),
                              ARG(DNNL_ARG_DST, mo)};
    return add_op(s, 0, &mmd, NULL, NULL, 3, args, err, errlen, what);
fail:
    return 0;
}

/* dst [B][D] = src [B][D] / cnt [B] (binary div, broadcast per row). */
static int add_div_rows(dn_state *s, int64_t B, int64_t D, const float *src, const float *cnt,
                        float *dst, char *err, size_t errlen)
{
    dnnl_memory_desc_t bd_md = md(2, (int64_t[]){B, D}, (int64_t[]){D, 1});
    dnnl_memory_desc_t c_md = md(2, (int64_t[]){B, 1}, (int64_t[]){1, 1});
    dnnl_memory_t ms, mc, mo;
    NEWMEM(ms, bd_md, (void *)src);
    NEWMEM(mc, c_md, (void *)cnt);
    NEWMEM(mo, bd_md, dst);
    dnnl_binary_desc_t bd;
    dnnl_binary_desc_init(&bd, dnnl_binary_div, &bd_md, &c_md, &bd_md);
    dnnl_exec_arg_t args[] = {ARG(DNNL_ARG_SRC_0, ms), ARG(DNNL_ARG_SRC_1, mc),
                              ARG(DNNL_ARG_DST, mo)};
    return add_op(s, 0, &bd, NULL, NULL, 3, args, err, errlen, "div");
fail:
    return 0;
}

static int plan_pool_fwd(dn_state *s, seq_data *q, char *err, size_t errlen)
{
    TRY(s->scratch[0] = balm_bench_alloc(q->L.B));           /* count */
    TRY(s->scratch[1] = balm_bench_alloc(q->L.T * q->L.B));  /* mask^T */
    TRY(add_mask_t(s, q, s->scratch[1], s->scratch[0], err, errlen));
    TRY(add_masked_sum(s, q, s->scratch[1], q->x, q->bd, err, errlen, "matmul"));
    TRY(add_div_rows(s, (int64_t)q->L.B, (int64_t)q->L.D, q->bd, s->scratch[0], q->bd, err,
                     errlen));
    return 1;
fail:
    if (!err[0]) balm_bench_fmt(err, errlen, "out of memory");
    return 0;
}

static int plan_pool_bwd(dn_state *s, seq_data *q, char *err, size_t errlen)
{
    int64_t T = (int64_t)q->L.T, B = (int64_t)q->L.B, D = (int64_t)q->L.D;
    TRY(s->scratch[0] = balm_bench_alloc((size_t)B));
    TRY(s->scratch[1] = balm_bench_alloc((size_t)(B * D)));
    TRY(s->scratch[2] = balm_bench_alloc((size_t)(T * B)));
    TRY(add_mask_t(s, q, s->scratch[2], s->scratch[0], err, errlen));
    TRY(add_div_rows(s, B, D, q->bd, s->scratch[0], s->scratch[1], err, errlen));
    /* dx_b (T x D) += mt[b] (T x 1) x g_b (1 x D): an outer product per sample */
    dnnl_memory_desc_t src = md(3, (int64_t[]){B, T, 1}, (int64_t[]){T, 1, 1});
    dnnl_memory_desc_t wei = md(3, (int64_t[]){B, 1, D}, (int64_t[]){D, D, 1});
    dnnl_memory_desc_t dst = md(3, (int64_t[]){B, T, D}, (int64_t[]){D, B * D, 1});
    dnnl_memory_t ms, mw, mdx;
    NEWMEM(ms, src, s->scratch[2]);
    NEWMEM(mw, wei, s->scratch[1]);
    NEWMEM(mdx, dst, q->out);
    dnnl_matmul_desc_t mmd;
    dnnl_matmul_desc_init(&mmd, &src, &wei, NULL, &dst);
    dnnl_primitive_attr_t a = attr_sum();
    dnnl_exec_arg_t a2[] = {ARG(DNNL_ARG_SRC, ms), ARG(DNNL_ARG_WEIGHTS, mw),
                            ARG(DNNL_ARG_DST, mdx)};
    int ok = add_op(s, 0, &mmd, a, NULL, 3, a2, err, errlen, "matmul");
    dnnl_primitive_attr_destroy(a);
    return ok;
fail:
    if (!err[0]) balm_bench_fmt(err, errlen, "out of memory");
    return 0;
}

/* g = 2 sigmoid(e) into out [B][D]: logistic, then linear x2 in place (a
 * linear post-op on the logistic would be oneDNN's reference code). */
static int add_gate2(dn_state *s, seq_data *q, float *g, char *err, size_t errlen)
{
    int64_t B = (int64_t)q->L.B, D = (int64_t)q->L.D;
    dnnl_memory_desc_t bd = md(2, (int64_t[]){B, D}, (int64_t[]){D, 1});
    dnnl_memory_t me, mg;
    NEWMEM(me, bd, q->e);
    NEWMEM(mg, bd, g);
    dnnl_eltwise_desc_t ed, lin;
    dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, dnnl_eltwise_logistic, &bd, 0, 0);
    dnnl_exec_arg_t args[] = {ARG(DNNL_ARG_SRC, me), ARG(DNNL_ARG_DST, mg)};
    TRY(add_op(s, 0, &ed, NULL, NULL, 2, args, err, errlen, "logistic"));
    dnnl_eltwise_forward_desc_init(&lin, dnnl_forward_inference, dnnl_eltwise_linear, &bd, 2.0f,
                                   0.0f);
    dnnl_exec_arg_t a2[] = {ARG(DNNL_ARG_SRC, mg), ARG(DNNL_ARG_DST, mg)};
    return add_op(s, 0, &lin, NULL, NULL, 2, a2, err, errlen, "x2");
fail:
    return 0;
}

/* out [T][B][D] = a [T][B][D] * b, b of shape [T][B][D] (b_kind 0), [1][B][D]
 * (1, broadcast over T) or the mask [T][B][1] (2). A binary post-op for the
 * mask would fall back to reference code, so the mask is a second pass. */
static int add_mul(dn_state *s, seq_data *q, const float *a, const float *b, int b_kind,
                   float *out, char *err, size_t errlen, const char *what)
{
    int64_t T = (int64_t)q->L.T, B = (int64_t)q->L.B, D = (int64_t)q->L.D;
    dnnl_memory_desc_t full = md(3, (int64_t[]){T, B, D}, (int64_t[]){B * D, D, 1});
    dnnl_memory_desc_t b_md =
        b_kind == 0 ? full
        : b_kind == 1 ? md(3, (int64_t[]){1, B, D}, (int64_t[]){B * D, D, 1})
                      : md(3, (int64_t[]){T, B, 1}, (int64_t[]){B, 1, 1});
    dnnl_memory_t ma, mb, mo;
    NEWMEM(ma, full, (void *)a);
    NEWMEM(mb, b_md, (void *)b);
    NEWMEM(mo, full, out);
    dnnl_binary_desc_t bd;
    dnnl_binary_desc_init(&bd, dnnl_binary_mul, &full, &b_md, &full);
    dnnl_exec_arg_t args[] = {ARG(DNNL_ARG_SRC_0, ma), ARG(DNNL_ARG_SRC_1, mb),
                              ARG(DNNL_ARG_DST, mo)};
    return add_op(s, 0, &bd, NULL, NULL, 3, args, err, errlen, what);
fail:
    return 0;
}

static int plan_gate_fwd(dn_state *s, seq_data *q, char *err, size_t errlen)
{
    TRY(s->scratch[0] = balm_bench_alloc(q->L.B * q->L.D));
    TRY(add_gate2(s, q, s->scratch[0], err, errlen));
    TRY(add_mul(s, q, q->x, s->scratch[0], 1, q->out, err, errlen, "mul_g"));
    TRY(add_mul(s, q, q->out, q->m, 2, q->out, err, errlen, "mul_m"));
    return 1;
fail:
    if (!err[0]) balm_bench_fmt(err, errlen, "out of memory");
    return 0;
}

static int plan_gate_bwd(dn_state *s, seq_data *q, char *err, size_t errlen)
{
    int64_t B = (int64_t)q->L.B, D = (int64_t)q->L.D;
    size_t n = q->L.T * q->L.B * q->L.D;
    TRY(s->scratch[0] = balm_bench_alloc(q->L.B * q->L.D)); /* 2 sigmoid(e), then r */
    TRY(s->scratch[1] = balm_bench_alloc(n));               /* dy * x */
    TRY(s->scratch[2] = balm_bench_alloc(q->L.T * q->L.B)); /* mask^T */
    memset(s->scratch[1], 0, n * sizeof(float));
    TRY(add_gate2(s, q, s->scratch[0], err, errlen));
    TRY(add_mul(s, q, q->dy, s->scratch[0], 1, q->out, err, errlen, "mul_g"));
    TRY(add_mul(s, q, q->out, q->m, 2, q->out, err, errlen, "mul_m"));
    TRY(add_mul(s, q, q->dy, q->x, 0, s->scratch[1], err, errlen, "mul_dyx"));
    TRY(add_mask_t(s, q, s->scratch[2], NULL, err, errlen));
    /* r = sum_t m dy x (the matmul does the mask), into scratch[0]: the gate
     * values are no longer needed */
    TRY(add_masked_sum(s, q, s->scratch[2], s->scratch[1], s->scratch[0], err, errlen, "sum_t"));
    dnnl_memory_desc_t bd = md(2, (int64_t[]){B, D}, (int64_t[]){D, 1});
    dnnl_memory_t mr, me, mde;
    NEWMEM(mr, bd, s->scratch[0]);
    NEWMEM(me, bd, q->e);
    NEWMEM(mde, bd, q->bd);
    /* de = r * s (1 - s) via logistic backward, then x2 in place. */
    dnnl_eltwise_desc_t fwd, bwd, lin;
    dnnl_primitive_desc_t hint = NULL;
    dnnl_eltwise_forward_desc_init(&fwd, dnnl_forward_training, dnnl_eltwise_logistic, &bd, 0, 0);
    if (dnnl_primitive_desc_create(&hint, &fwd, NULL, g_eng, NULL) != dnnl_success) {
        balm_bench_fmt(err, errlen, "oneDNN: no logistic forward for the backward hint");
        goto fail;
    }
    dnnl_eltwise_backward_desc_init(&bwd, dnnl_eltwise_logistic, &bd, &bd, 0, 0);
    dnnl_exec_arg_t a2[] = {ARG(DNNL_ARG_SRC, me), ARG(DNNL_ARG_DIFF_DST, mr),
                            ARG(DNNL_ARG_DIFF_SRC, mde)};
    int ok = add_op(s, 0, &bwd, NULL, hint, 3, a2, err, errlen, "logistic_bwd");
    dnnl_primitive_desc_destroy(hint);
    TRY(ok);
    dnnl_eltwise_forward_desc_init(&lin, dnnl_forward_inference, dnnl_eltwise_linear, &bd, 2.0f,
                                   0.0f);
    dnnl_exec_arg_t a3[] = {ARG(DNNL_ARG_SRC, mde), ARG(DNNL_ARG_DST, mde)};
    TRY(add_op(s, 0, &lin, NULL, NULL, 2, a3, err, errlen, "x2"));
    return 1;
fail:
    if (!err[0]) balm_bench_fmt(err, errlen, "out of memory");
    return 0;
}

/* out = a . b over n floats: a matmul [1][n] x [n][1] (a reduction of the
 * squares would be oneDNN's reference code). */
static int add_dot(dn_state *s, int64_t n, const float *a, const float *b, float *out, char *err,
                   size_t errlen, const char *what)
{
    dnnl_memory_desc_t am = md(2, (int64_t[]){1, n}, (int64_t[]){n, 1});
    dnnl_memory_desc_t bm = md(2, (int64_t[]){n, 1}, (int64_t[]){1, 1});
    dnnl_memory_desc_t cm = md(2, (int64_t[]){1, 1}, (int64_t[]){1, 1});
    dnnl_memory_t ma, mb, mc;
    NEWMEM(ma, am, (void *)a);
    NEWMEM(mb, bm, (void *)b);
    NEWMEM(mc, cm, out);
    dnnl_matmul_desc_t mmd;
    dnnl_matmul_desc_init(&mmd, &am, &bm, NULL, &cm);
    dnnl_exec_arg_t args[] = {ARG(DNNL_ARG_SRC, ma), ARG(DNNL_ARG_WEIGHTS, mb),
                              ARG(DNNL_ARG_DST, mc)};
    return add_op(s, 0, &mmd, NULL, NULL, 3, args, err, errlen, what);
fail:
    return 0;
}

/* A reduction of x [1][n] into one float (alg, p). */
static int add_reduce(dn_state *s, int64_t n, const float *x, float *out, dnnl_alg_kind_t alg,
                      float p, const_dnnl_primitive_attr_t attr, char *err, size_t errlen,
                      const char *what)
{
    dnnl_memory_desc_t src = md(2, (int64_t[]){1, n}, (int64_t[]){n, 1});
    dnnl_memory_desc_t dst = md(2, (int64_t[]){1, 1}, (int64_t[]){1, 1});
    dnnl_memory_t ms, mo;
    NEWMEM(ms, src, (void *)x);
    NEWMEM(mo, dst, out);
    dnnl_reduction_desc_t rd;
    dnnl_reduction_desc_init(&rd, alg, &src, &dst, p, 0.0f);
    dnnl_exec_arg_t args[] = {ARG(DNNL_ARG_SRC, ms), ARG(DNNL_ARG_DST, mo)};
    return add_op(s, 0, &rd, attr, NULL, 2, args, err, errlen, what);
fail:
    return 0;
}

static int plan_vec(dn_state *s, vec_op op, vec_data *v, char *err, size_t errlen)
{
    int64_t n = (int64_t)v->n;
    TRY(s->scratch[0] = balm_bench_alloc(4));
    switch (op) {
    case VEC_STD:
        TRY(add_reduce(s, n, v->v[0], s->scratch[0], dnnl_reduction_sum, 0, NULL, err, errlen,
                       "sum"));
        TRY(add_dot(s, n, v->v[0], v->v[0], s->scratch[0] + 1, err, errlen, "sumsq"));
        return 1;
    case VEC_DOT_NORMS:
        TRY(add_dot(s, n, v->v[0], v->v[1], s->scratch[0], err, errlen, "dot"));
        TRY(add_dot(s, n, v->v[0], v->v[0], s->scratch[0] + 1, err, errlen, "norm_w"));
        TRY(add_dot(s, n, v->v[1], v->v[1], s->scratch[0] + 2, err, errlen, "norm_wf"));
        return 1;
    case VEC_DIRECTION: {
        dnnl_memory_desc_t a = md(1, (int64_t[]){n}, (int64_t[]){1});
        dnnl_memory_desc_t srcs[4] = {a, a, a, a};
        static const float scales[4] = {0.3f, -0.2f, 0.1f, -0.05f};
        dnnl_primitive_desc_t pd = NULL;
        dnnl_exec_arg_t args[5];
        for (int i = 0; i < 4; i++) {
            dnnl_memory_t m;
            NEWMEM(m, a, v->v[i]);
            args[i] = ARG(DNNL_ARG_MULTIPLE_SRC + i, m);
        }
        dnnl_memory_t mo;
        NEWMEM(mo, a, v->v[4]);
        args[4] = ARG(DNNL_ARG_DST, mo);
        if (dnnl_sum_primitive_desc_create(&pd, &a, 4, scales, srcs, NULL, g_eng) != dnnl_success) {
            balm_bench_fmt(err, errlen, "oneDNN: no sum implementation");
            goto fail;
        }
        TRY(add_pd(s, 0, pd, 5, args, err, errlen, "sum"));
        return 1;
    }
    case VEC_SCALE: {
        dnnl_memory_desc_t a = md(1, (int64_t[]){n}, (int64_t[]){1});
        dnnl_memory_t mx;
        NEWMEM(mx, a, v->v[0]);
        /* even phase: x2, odd: x0.5 (as the kernels' run body). */
        s->phase = &v->phase;
        for (int alt = 0; alt < 2; alt++) {
            dnnl_eltwise_desc_t ed;
            dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, dnnl_eltwise_linear, &a,
                                           alt ? 0.5f : 2.0f, 0.0f);
            dnnl_exec_arg_t args[] = {ARG(DNNL_ARG_SRC, mx), ARG(DNNL_ARG_DST, mx)};
            TRY(add_op(s, alt, &ed, NULL, NULL, 2, args, err, errlen, alt ? "x0.5" : "x2"));
        }
        return 1;
    }
    case VEC_KL_CLS: {
        int64_t N = (int64_t)v->N, C = (int64_t)v->C;
        TRY(s->scratch[1] = balm_bench_alloc(v->n));
        TRY(s->scratch[2] = balm_bench_alloc(v->n));
        dnnl_memory_desc_t a = md(2, (int64_t[]){N, C}, (int64_t[]){C, 1});
        dnnl_memory_t mp, mq, m1, m2;
        NEWMEM(mp, a, v->v[0]);
        NEWMEM(mq, a, v->v[1]);
        NEWMEM(m1, a, s->scratch[1]);
        NEWMEM(m2, a, s->scratch[2]);
        dnnl_eltwise_desc_t ed;
        dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, dnnl_eltwise_log, &a, 0, 0);
        dnnl_exec_arg_t a1[] = {ARG(DNNL_ARG_SRC, mp), ARG(DNNL_ARG_DST, m1)};
        TRY(add_op(s, 0, &ed, NULL, NULL, 2, a1, err, errlen, "log"));
        dnnl_binary_desc_t bd;
        dnnl_binary_desc_init(&bd, dnnl_binary_sub, &a, &a, &a);
        dnnl_primitive_attr_t at = attr_binary(dnnl_binary_mul, &a);
        dnnl_exec_arg_t a2[] = {ARG(DNNL_ARG_SRC_0, m1), ARG(DNNL_ARG_SRC_1, mq),
                                ARG(DNNL_ARG_DST, m2), ARG(PO1, mp)};
        int ok = add_op(s, 0, &bd, at, NULL, 4, a2, err, errlen, "sub_mul");
        dnnl_primitive_attr_destroy(at);
        TRY(ok);
        at = attr_eltwise(dnnl_eltwise_linear, 1.0f / (float)N, 0.0f);
        ok = add_reduce(s, N * C, s->scratch[2], s->scratch[0], dnnl_reduction_sum, 0, at, err,
                        errlen, "mean");
        dnnl_primitive_attr_destroy(at);
        TRY(ok);
        return 1;
    }
    default:
        balm_bench_fmt(err, errlen, "no oneDNN composition for %s", vec_op_name(op));
        return 0;
    }
fail:
    if (!err[0]) balm_bench_fmt(err, errlen, "out of memory");
    return 0;
}

static int dn_init(char *err, size_t errlen)
{
    if (g_eng) return 1;
    if (dnnl_engine_create(&g_eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&g_strm, g_eng, dnnl_stream_default_flags) != dnnl_success) {
        balm_bench_fmt(err, errlen, "oneDNN: cannot create the CPU engine");
        return 0;
    }
    return 1;
}

static void *dn_prepare(const balm_bench_def *d, void *data, char *err, size_t errlen)
{
    if (!dn_init(err, errlen)) return NULL;
    dn_state *s = calloc(1, sizeof *s);
    if (!s) {
        balm_bench_fmt(err, errlen, "out of memory");
        return NULL;
    }
    int ok;
    if (d->flag) {
        switch ((seq_op)d->p[3]) {
        case SEQ_POOL_FWD: ok = plan_pool_fwd(s, data, err, errlen); break;
        case SEQ_POOL_BWD: ok = plan_pool_bwd(s, data, err, errlen); break;
        case SEQ_GATE_FWD: ok = plan_gate_fwd(s, data, err, errlen); break;
        default: ok = plan_gate_bwd(s, data, err, errlen); break;
        }
    } else {
        ok = plan_vec(s, (vec_op)d->p[3], data, err, errlen);
    }
    if (!ok) {
        dn_release(s);
        return NULL;
    }
    return s;
}

static void dn_run(const balm_bench_def *d, void *p, uint64_t it)
{
    dn_state *s = p;
    int alt = (s->nsteps[1] && s->phase && ((*s->phase)++ & 1)) ? 1 : 0;
    (void)d, (void)it;
    for (int i = 0; i < s->nsteps[alt]; i++)
        dnnl_primitive_execute(s->steps[alt][i].prim, g_strm, s->steps[alt][i].nargs,
                               s->steps[alt][i].args);
    dnnl_stream_wait(g_strm);
}

static void finish(balm_bench_def *d, int is_seq)
{
    d->flag = is_seq;
    d->prepare = dn_prepare;
    d->release = dn_release;
    d->label = dn_label;
    d->run = dn_run;
    balm_bench_add(d);
}

void balm_bench_register_onednn(void)
{
#ifdef BALM_BENCH_HAVE_OMP
    omp_set_num_threads(1); /* single-thread figures, like the kernels */
#endif
    for (int op = 0; op < SEQ_NOPS; op++)
        for (size_t s = 0; s < balm_bench_seq_shape_count; s++) {
            balm_bench_def d = seq_def((seq_op)op, &balm_bench_seq_shapes[s], "onednn");
            finish(&d, 1);
        }
    static const vec_op vops[] = {VEC_KL_CLS, VEC_DOT_NORMS, VEC_DIRECTION, VEC_SCALE, VEC_STD};
    for (size_t i = 0; i < sizeof vops / sizeof vops[0]; i++) {
        if (vec_op_uses_shape(vops[i], NULL)) {
            balm_bench_def d = vec_def(vops[i], NULL, "onednn");
            finish(&d, 0);
        }
        for (size_t s = 0; s < balm_bench_vec_shape_count; s++) {
            if (!vec_op_uses_shape(vops[i], &balm_bench_vec_shapes[s])) continue;
            balm_bench_def d = vec_def(vops[i], &balm_bench_vec_shapes[s], "onednn");
            finish(&d, 0);
        }
    }
}

#else /* no oneDNN in this build: nothing to compare against */
void balm_bench_register_onednn(void) {}
#endif
