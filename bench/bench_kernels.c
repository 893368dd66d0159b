/* libbalm's kernels, every family of kernels/kernels.h times every ISA,
 * called directly through balm_kernels_for_isa (no argument checks: the
 * kernels alone). The X-macro makes a kernel without a benchmark family a
 * compile error. */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "bench_data.h"
#include "kernels.h"

/* ------------------------------------------------------------ shared data */
static const char *const seq_names[SEQ_NOPS] = {"pool/fwd", "pool/bwd", "gate/fwd", "gate/bwd"};
const char *seq_op_name(seq_op op) { return seq_names[op]; }

static void seq_teardown(void *p)
{
    seq_data *s = p;
    if (!s) return;
    balm_bench_free(s->x);
    balm_bench_free(s->m);
    balm_bench_free(s->e);
    balm_bench_free(s->dy);
    balm_bench_free(s->out);
    balm_bench_free(s->bd);
    balm_bench_free(s->bd2);
    balm_bench_free(s);
}

static void *seq_setup(const balm_bench_def *d, char *err, size_t errlen)
{
    size_t T = d->p[0], B = d->p[1], D = d->p[2], n = T * B * D;
    seq_op op = (seq_op)d->p[3];
    seq_data *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->L = balm_seq_tbd(T, B, D);
    s->present = balm_bench_mask_present(T, B, BALM_BENCH_MASK_SEED);
    s->m = balm_bench_alloc(T * B);
    s->bd = balm_bench_alloc(B * D);
    s->e = balm_bench_alloc(B * D);
    if (!s->m || !s->bd || !s->e) goto nomem;
    balm_bench_mask(s->m, T, B, s->L.m_step, s->L.m_sample, BALM_BENCH_MASK_SEED);
    balm_bench_fill(s->e, B * D, -4.0f, 4.0f, 3);
    balm_bench_fill(s->bd, B * D, -1.0f, 1.0f, 4);
    if (op != SEQ_POOL_BWD) {
        if (!(s->x = balm_bench_alloc(n))) goto nomem;
        balm_bench_fill(s->x, n, -1.0f, 1.0f, 1);
    }
    if (op != SEQ_POOL_FWD) {
        if (!(s->out = balm_bench_alloc(n))) goto nomem;
        memset(s->out, 0, n * sizeof(float)); /* touch every page now */
    }
    if (op == SEQ_GATE_BWD) {
        if (!(s->dy = balm_bench_alloc(n))) goto nomem;
        balm_bench_fill(s->dy, n, -1.0f, 1.0f, 2);
    }
    return s;
nomem:
    seq_teardown(s);
    balm_bench_fmt(err, errlen, "out of memory for %s (T=%zu B=%zu D=%zu)", d->name, T, B, D);
    return NULL;
}

balm_bench_def seq_def(seq_op op, const balm_bench_seq_shape *sh, const char *impl)
{
    balm_bench_def d;
    memset(&d, 0, sizeof d);
    size_t T = sh->T, B = sh->B, D = sh->D;
    /* Compulsory traffic: masked rows of x/dy need not be read, outputs are
     * written in full (masked y and dx are exact zeros), pool_bwd adds to
     * present rows only (accumulate = 1, as FCM uses it). */
    double P = (double)balm_bench_mask_present(T, B, BALM_BENCH_MASK_SEED);
    double full = (double)T * B * D * 4, pres = P * D * 4, mask = (double)T * B * 4,
           bd = (double)B * D * 4;
    switch (op) {
    case SEQ_POOL_FWD: d.bytes = pres + mask + bd; break;
    case SEQ_POOL_BWD: d.bytes = 2 * pres + mask + bd; break;
    case SEQ_GATE_FWD: d.bytes = pres + full + mask + bd; break;
    case SEQ_GATE_BWD: d.bytes = 2 * pres + full + mask + 2 * bd; break;
    default: break;
    }
    d.items = (double)T * B * D;
    balm_bench_fmt(d.name, sizeof d.name, "%s/%s/%s", seq_names[op], impl, sh->name);
    balm_bench_fmt(d.data_key, sizeof d.data_key, "%s/%s", seq_names[op], sh->name);
    d.setup = seq_setup;
    d.teardown = seq_teardown;
    d.p[0] = T;
    d.p[1] = B;
    d.p[2] = D;
    d.p[3] = (size_t)op;
    return d;
}

static const char *const vec_names[VEC_NOPS] = {"kl/cls",   "kl/reg",     "cos/dot_norms",
                                                "cos/direction", "grad/scale", "grad/std",
                                                "grad/noise"};
const char *vec_op_name(vec_op op) { return vec_names[op]; }

static void vec_teardown(void *p)
{
    vec_data *v = p;
    if (!v) return;
    for (int i = 0; i < VEC_MAXBUF; i++)
        balm_bench_free(v->v[i]);
    balm_bench_free(v);
}

/* Row-wise softmax (want_log = 0) or log_softmax (1) of uniform logits. */
static void softmax_rows(float *x, size_t N, size_t C, int want_log, uint64_t seed)
{
    balm_bench_fill(x, N * C, -3.0f, 3.0f, seed);
    for (size_t i = 0; i < N; i++) {
        float *r = x + i * C, mx = r[0];
        double sum = 0;
        for (size_t c = 1; c < C; c++)
            mx = r[c] > mx ? r[c] : mx;
        for (size_t c = 0; c < C; c++)
            sum += exp((double)(r[c] - mx));
        for (size_t c = 0; c < C; c++) {
            double lv = (double)(r[c] - mx) - log(sum);
            r[c] = (float)(want_log ? lv : exp(lv));
        }
    }
}

static int vec_nbuf(vec_op op)
{
    switch (op) {
    case VEC_KL_CLS: case VEC_KL_REG: case VEC_DOT_NORMS: return 2;
    case VEC_DIRECTION: return 5;
    default: return 1;
    }
}

static void *vec_setup(const balm_bench_def *d, char *err, size_t errlen)
{
    vec_op op = (vec_op)d->p[3];
    vec_data *v = calloc(1, sizeof *v);
    if (!v) goto nomem;
    v->n = d->p[0];
    v->N = d->p[1];
    v->C = d->p[2];
    for (int i = 0; i < vec_nbuf(op); i++) {
        if (!(v->v[i] = balm_bench_alloc(v->n))) goto nomem;
        balm_bench_fill(v->v[i], v->n, -1.0f, 1.0f, 10 + (uint64_t)i);
    }
    if (op == VEC_KL_CLS) {
        softmax_rows(v->v[0], v->N, v->C, 0, 20);
        softmax_rows(v->v[1], v->N, v->C, 1, 21);
    } else if (op == VEC_KL_REG) {
        balm_bench_fill(v->v[0], v->n, -6.0f, 6.0f, 22);
        balm_bench_fill(v->v[1], v->n, -6.0f, 6.0f, 23);
    }
    return v;
nomem:
    vec_teardown(v);
    balm_bench_fmt(err, errlen, "out of memory for %s (n=%zu)", d->name, d->p[0]);
    return NULL;
}

int vec_op_uses_shape(vec_op op, const balm_bench_vec_shape *sh)
{
    if (op == VEC_KL_CLS || op == VEC_KL_REG) return sh == NULL;
    return sh != NULL;
}

balm_bench_def vec_def(vec_op op, const balm_bench_vec_shape *sh, const char *impl)
{
    balm_bench_def d;
    memset(&d, 0, sizeof d);
    char shape[32];
    size_t n, N = 0, C = 0;
    if (op == VEC_KL_CLS || op == VEC_KL_REG) {
        N = BALM_BENCH_KL_N;
        C = op == VEC_KL_CLS ? BALM_BENCH_KL_C : 1;
        n = N * C;
        if (op == VEC_KL_CLS)
            balm_bench_fmt(shape, sizeof shape, "N%zuC%zu", N, C);
        else
            balm_bench_fmt(shape, sizeof shape, "N%zu", N);
    } else {
        n = sh->n;
        balm_bench_fmt(shape, sizeof shape, "%s", sh->name);
    }
    double f = 4.0 * (double)n;
    switch (op) {
    case VEC_KL_CLS: case VEC_KL_REG: case VEC_DOT_NORMS: d.bytes = 2 * f; break;
    case VEC_DIRECTION: d.bytes = 5 * f; break; /* 3 heads + wf read, dwf written */
    case VEC_SCALE: case VEC_NOISE: d.bytes = 2 * f; break; /* in place */
    case VEC_STD: d.bytes = f; break;
    default: break;
    }
    d.items = (double)n;
    balm_bench_fmt(d.name, sizeof d.name, "%s/%s/%s", vec_names[op], impl, shape);
    balm_bench_fmt(d.data_key, sizeof d.data_key, "%s/%s", vec_names[op], shape);
    d.setup = vec_setup;
    d.teardown = vec_teardown;
    d.p[0] = n;
    d.p[1] = N;
    d.p[2] = C;
    d.p[3] = (size_t)op;
    return d;
}

/* ------------------------------------------------------------ run bodies */
typedef void (*pool_fwd_fn)(const balm_seq *, const float *, const float *, float *);
typedef void (*pool_bwd_fn)(const balm_seq *, const float *, const float *, float *, int);
typedef void (*gate_fwd_fn)(const balm_seq *, const float *, const float *, const float *,
                            float *);
typedef void (*gate_bwd_fn)(const balm_seq *, const float *, const float *, const float *,
                            const float *, float *, float *);
typedef double (*kl_cls_fn)(size_t, size_t, const float *, const float *);
typedef double (*kl_reg_fn)(size_t, const float *, const float *);
typedef void (*dot_norms_fn)(size_t, const float *, const float *, double[3]);
typedef void (*combine_fn)(size_t, size_t, const float *const *, const float *, const float *,
                           float, float *, int);
typedef void (*scale_fn)(size_t, float *, float);
typedef void (*sums_fn)(size_t, const float *, double[2]);
typedef void (*scale_noise_fn)(size_t, float *, float, float, uint64_t, uint64_t);

static void run_pool_fwd(const balm_bench_def *d, void *p, uint64_t it)
{
    seq_data *s = p;
    (void)it;
    ((pool_fwd_fn)d->fn)(&s->L, s->x, s->m, s->bd);
}

static void run_pool_bwd(const balm_bench_def *d, void *p, uint64_t it)
{
    seq_data *s = p;
    (void)it;
    ((pool_bwd_fn)d->fn)(&s->L, s->m, s->bd, s->out, 1);
}

static void run_gate_fwd(const balm_bench_def *d, void *p, uint64_t it)
{
    seq_data *s = p;
    (void)it;
    ((gate_fwd_fn)d->fn)(&s->L, s->x, s->m, s->e, s->out);
}

static void run_gate_bwd(const balm_bench_def *d, void *p, uint64_t it)
{
    seq_data *s = p;
    (void)it;
    ((gate_bwd_fn)d->fn)(&s->L, s->x, s->m, s->e, s->dy, s->out, s->bd);
}

static void run_kl_cls_sum(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    (void)it;
    v->sink += ((kl_cls_fn)d->fn)(v->N, v->C, v->v[0], v->v[1]);
}

static void run_kl_reg_sum(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    (void)it;
    v->sink += ((kl_reg_fn)d->fn)(v->N, v->v[0], v->v[1]);
}

static void run_dot_norms(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    double out[3];
    (void)it;
    ((dot_norms_fn)d->fn)(v->n, v->v[0], v->v[1], out);
    v->sink += out[0];
}

static void run_combine(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    const float *w[3] = {v->v[0], v->v[1], v->v[2]};
    static const float a[3] = {0.3f, -0.2f, 0.1f};
    (void)it;
    ((combine_fn)d->fn)(v->n, 3, w, a, v->v[3], -0.05f, v->v[4], 0);
}

/* Alternate 2 and 0.5 (vec_data.phase) so that repeated in-place calls
 * neither overflow nor drift into denormals. */
static void run_scale(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    (void)it;
    ((scale_fn)d->fn)(v->n, v->v[0], (v->phase++ & 1) ? 0.5f : 2.0f);
}

static void run_sums(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    double out[2];
    (void)it;
    ((sums_fn)d->fn)(v->n, v->v[0], out);
    v->sink += out[1];
}

static void run_scale_noise(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    ((scale_noise_fn)d->fn)(v->n, v->v[0], (v->phase++ & 1) ? 0.5f : 2.0f, 1e-3f, 1234,
                            it * v->n);
}

/* ---------------------------------------------------- per-kernel families */
/* How each kernel of the list maps to a family: a seq op or a vec op. */
#define FAM_SEQ(op) {1, (int)(op)}
#define FAM_VEC(op) {0, (int)(op)}
typedef struct family {
    int is_seq, op;
} family;

#define fam_pool_fwd FAM_SEQ(SEQ_POOL_FWD)
#define fam_pool_bwd FAM_SEQ(SEQ_POOL_BWD)
#define fam_gate_fwd FAM_SEQ(SEQ_GATE_FWD)
#define fam_gate_bwd FAM_SEQ(SEQ_GATE_BWD)
#define fam_kl_cls_sum FAM_VEC(VEC_KL_CLS)
#define fam_kl_reg_sum FAM_VEC(VEC_KL_REG)
#define fam_dot_norms FAM_VEC(VEC_DOT_NORMS)
#define fam_combine FAM_VEC(VEC_DIRECTION)
#define fam_scale FAM_VEC(VEC_SCALE)
#define fam_sums FAM_VEC(VEC_STD)
#define fam_scale_noise FAM_VEC(VEC_NOISE)

/* Every kernel of the list needs a fam_<name> above and a run_<name> body:
 * a new kernel without them does not compile. */
typedef struct kernel_entry {
    const char *name;
    family fam;
    void (*run)(const balm_bench_def *, void *, uint64_t);
    void (*(*get)(const balm_kernels *))(void);
} kernel_entry;

#define BALM_BENCH_GETTER(name, ret, params)                                             \
    static void (*get_##name(const balm_kernels *k))(void) { return (void (*)(void))k->name; }
BALM_KERNEL_LIST(BALM_BENCH_GETTER)
#undef BALM_BENCH_GETTER

#define BALM_BENCH_ENTRY(name, ret, params) {#name, fam_##name, run_##name, get_##name},
static const kernel_entry kernel_entries[] = {BALM_KERNEL_LIST(BALM_BENCH_ENTRY)};
#undef BALM_BENCH_ENTRY

/* The ISA a kernel of `isa` falls back to when the ISA lacks it. */
static balm_isa lower_isa(balm_isa isa)
{
    return isa == BALM_ISA_AVX512 ? BALM_ISA_AVX2 : BALM_ISA_SCALAR;
}

/* Fill d's fn, run and skip for kernel e at isa. */
static void bind_isa(balm_bench_def *d, const kernel_entry *e, balm_isa isa)
{
    balm_kernels k, lower;
    d->run = e->run;
    if (!balm_kernels_for_isa(isa, &k)) {
        balm_bench_fmt(d->skip, sizeof d->skip, "%s: ISA %s not supported by this build or CPU",
                       e->name, balm_isa_name(isa));
        return;
    }
    d->fn = e->get(&k);
    if (isa != BALM_ISA_SCALAR && balm_kernels_for_isa(lower_isa(isa), &lower) &&
        e->get(&lower) == d->fn)
        balm_bench_fmt(d->skip, sizeof d->skip,
                       "%s: no %s variant (falls back to the %s kernel)", e->name,
                       balm_isa_name(isa), balm_isa_name(lower_isa(isa)));
}

void balm_bench_register_kernels(void)
{
    for (size_t i = 0; i < sizeof kernel_entries / sizeof kernel_entries[0]; i++) {
        const kernel_entry *e = &kernel_entries[i];
        for (int isa = 0; isa < BALM_ISA_COUNT; isa++) {
            const char *in = balm_isa_name((balm_isa)isa);
            if (e->fam.is_seq) {
                for (size_t s = 0; s < balm_bench_seq_shape_count; s++) {
                    balm_bench_def d = seq_def((seq_op)e->fam.op, &balm_bench_seq_shapes[s], in);
                    bind_isa(&d, e, (balm_isa)isa);
                    balm_bench_add(&d);
                }
            } else {
                vec_op op = (vec_op)e->fam.op;
                if (vec_op_uses_shape(op, NULL)) {
                    balm_bench_def d = vec_def(op, NULL, in);
                    bind_isa(&d, e, (balm_isa)isa);
                    balm_bench_add(&d);
                }
                for (size_t s = 0; s < balm_bench_vec_shape_count; s++) {
                    if (!vec_op_uses_shape(op, &balm_bench_vec_shapes[s])) continue;
                    balm_bench_def d = vec_def(op, &balm_bench_vec_shapes[s], in);
                    bind_isa(&d, e, (balm_isa)isa);
                    balm_bench_add(&d);
                }
            }
        }
    }
}
