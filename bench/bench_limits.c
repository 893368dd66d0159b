/* Machine limits in the same run: read-only sum, copy, triad (c = a + s b)
 * and in-place update (x *= s, for the kernels that modify in place) over the
 * sizes the kernels use, so every kernel's GB/s can be printed as a share of
 * what this core moves. Ordinary stores (no streaming), as in the kernels.
 * Names: mem/{read,copy,triad,update}/<isa>/<shape>. */
#include <stdlib.h>
#include <string.h>
#include "balm/balm.h"
#include "bench_data.h"
#include "limits.h"

typedef struct mem_data {
    size_t n;
    float *a, *b, *c;
    float sink;
    uint64_t phase; /* update: x2 / x0.5 alternately across all calls */
} mem_data;

enum { MEM_READ, MEM_COPY, MEM_TRIAD, MEM_UPDATE, MEM_NKIND };
static const char *const kind_names[MEM_NKIND] = {"read", "copy", "triad", "update"};

static void mem_teardown(void *p)
{
    mem_data *m = p;
    if (!m) return;
    balm_bench_free(m->a);
    balm_bench_free(m->b);
    balm_bench_free(m->c);
    balm_bench_free(m);
}

static void *mem_setup(const balm_bench_def *d, char *err, size_t errlen)
{
    mem_data *m = calloc(1, sizeof *m);
    if (m) {
        m->n = d->p[0];
        m->a = balm_bench_alloc(m->n);
        m->b = balm_bench_alloc(m->n);
        m->c = balm_bench_alloc(m->n);
    }
    if (!m || !m->a || !m->b || !m->c) {
        mem_teardown(m);
        balm_bench_fmt(err, errlen, "out of memory for %s", d->name);
        return NULL;
    }
    balm_bench_fill(m->a, m->n, -1.0f, 1.0f, 31);
    balm_bench_fill(m->b, m->n, -1.0f, 1.0f, 32);
    memset(m->c, 0, m->n * sizeof(float));
    return m;
}

typedef float (*read_fn)(size_t, const float *);
typedef void (*copy_fn)(size_t, const float *, float *);
typedef void (*triad_fn)(size_t, const float *, const float *, float, float *);
typedef void (*update_fn)(size_t, float *, float);

static void run_read(const balm_bench_def *d, void *p, uint64_t it)
{
    mem_data *m = p;
    (void)it;
    m->sink += ((read_fn)d->fn)(m->n, m->a);
}

static void run_copy(const balm_bench_def *d, void *p, uint64_t it)
{
    mem_data *m = p;
    (void)it;
    ((copy_fn)d->fn)(m->n, m->a, m->c);
}

static void run_triad(const balm_bench_def *d, void *p, uint64_t it)
{
    mem_data *m = p;
    (void)it;
    ((triad_fn)d->fn)(m->n, m->a, m->b, 0.5f, m->c);
}

/* Alternate x2 and x0.5: exact, no drift into overflow or denormals. */
static void run_update(const balm_bench_def *d, void *p, uint64_t it)
{
    mem_data *m = p;
    (void)it;
    ((update_fn)d->fn)(m->n, m->c, (m->phase++ & 1) ? 0.5f : 2.0f);
}

/* Which limit ISAs this CPU runs; the portable loop only where there is no
 * SIMD version (it measures the compiler, not the machine). */
static int limit_isa(balm_isa isa, const balm_cpu_info *ci, char *why, size_t cap)
{
#if defined(__x86_64__) || defined(_M_X64)
    if (isa == BALM_ISA_AVX2 && ci->avx2 && ci->fma && ci->os_ymm) return 1;
    if (isa == BALM_ISA_AVX512 && ci->avx512f && ci->os_zmm) return 1;
    if (isa == BALM_ISA_SCALAR) return -1;
#else
    (void)ci;
    if (isa == BALM_ISA_SCALAR) return 1;
#endif
    balm_bench_fmt(why, cap, "mem: ISA %s not supported by this CPU or build", balm_isa_name(isa));
    return 0;
}

static void add_shape(const char *shape, size_t n, const balm_cpu_info *ci)
{
    static void (*const runs[MEM_NKIND])(const balm_bench_def *, void *, uint64_t) = {
        run_read, run_copy, run_triad, run_update};
    for (int k = 0; k < MEM_NKIND; k++) {
        for (int isa = 0; isa < BALM_ISA_COUNT; isa++) {
            balm_bench_def d;
            memset(&d, 0, sizeof d);
            int ok = limit_isa((balm_isa)isa, ci, d.skip, sizeof d.skip);
            if (ok < 0) continue;
            balm_bench_fmt(d.name, sizeof d.name, "mem/%s/%s/%s", kind_names[k],
                           balm_isa_name((balm_isa)isa), shape);
            balm_bench_fmt(d.data_key, sizeof d.data_key, "mem/%s", shape);
            d.setup = mem_setup;
            d.teardown = mem_teardown;
            d.run = runs[k];
            d.p[0] = n;
            d.items = (double)n;
            /* compulsory bytes: write-allocate reads of copy/triad not counted */
            d.bytes = 4.0 * (double)n * (k == MEM_READ ? 1 : k == MEM_TRIAD ? 3 : 2);
            switch (isa) {
            case BALM_ISA_SCALAR:
                d.fn = k == MEM_READ    ? (void (*)(void))balm_bench_read_scalar
                       : k == MEM_COPY  ? (void (*)(void))balm_bench_copy_scalar
                       : k == MEM_TRIAD ? (void (*)(void))balm_bench_triad_scalar
                                        : (void (*)(void))balm_bench_update_scalar;
                break;
#if defined(__x86_64__) || defined(_M_X64)
            case BALM_ISA_AVX2:
                d.fn = k == MEM_READ    ? (void (*)(void))balm_bench_read_avx2
                       : k == MEM_COPY  ? (void (*)(void))balm_bench_copy_avx2
                       : k == MEM_TRIAD ? (void (*)(void))balm_bench_triad_avx2
                                        : (void (*)(void))balm_bench_update_avx2;
                break;
            case BALM_ISA_AVX512:
                d.fn = k == MEM_READ    ? (void (*)(void))balm_bench_read_avx512
                       : k == MEM_COPY  ? (void (*)(void))balm_bench_copy_avx512
                       : k == MEM_TRIAD ? (void (*)(void))balm_bench_triad_avx512
                                        : (void (*)(void))balm_bench_update_avx512;
                break;
#endif
            default:
                if (!d.skip[0])
                    balm_bench_fmt(d.skip, sizeof d.skip, "mem: no %s loop",
                                   balm_isa_name((balm_isa)isa));
                break;
            }
            balm_bench_add(&d);
        }
    }
}

void balm_bench_register_limits(void)
{
    balm_cpu_info ci;
    balm_cpu_info_get(&ci);
    for (size_t s = 0; s < balm_bench_seq_shape_count; s++) {
        const balm_bench_seq_shape *sh = &balm_bench_seq_shapes[s];
        add_shape(sh->name, sh->T * sh->B * sh->D, &ci);
    }
    for (size_t s = 0; s < balm_bench_vec_shape_count; s++)
        add_shape(balm_bench_vec_shapes[s].name, balm_bench_vec_shapes[s].n, &ci);
    char kl[32];
    balm_bench_fmt(kl, sizeof kl, "N%uC%u", BALM_BENCH_KL_N, BALM_BENCH_KL_C);
    add_shape(kl, (size_t)BALM_BENCH_KL_N * BALM_BENCH_KL_C, &ci);
    balm_bench_fmt(kl, sizeof kl, "N%u", BALM_BENCH_KL_N);
    add_shape(kl, BALM_BENCH_KL_N, &ci);
}
