/* balm_bench: benchmark bodies are plain C; bench/shim.cc only hands them to
 * Google Benchmark. Every case is one balm_bench_def registered in C.
 *
 * Names are `<family>/<op>/<impl>/<shape>` with no other slashes:
 *   impl  = scalar | avx2 | avx512 | neon    libbalm kernels of that ISA
 *         | naive                            plain C as a user would write it
 *         | onednn                           oneDNN primitives composed
 *         | ref                              modules with the plain C linear layers
 *   shape = see bench_shapes.c (iemocap_l, mosei_a, l2, dram, n5400, ...).
 *
 * Data sharing: consecutive cases with the same `data_key` share one set of
 * inputs (set up once, outside the timed region), so the big shapes are
 * allocated and filled once per family/op/shape, not once per impl. */
#ifndef BALM_BENCH_H
#define BALM_BENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct balm_bench_def balm_bench_def;

struct balm_bench_def {
    char name[128];
    char data_key[128];   /* cases with equal keys share their data */
    char skip[160];       /* non-empty: registered, then SkipWithError(skip) */
    double bytes;         /* compulsory traffic of one call, bytes */
    double items;         /* elements of one call */
    /* Allocate and fill the shared inputs; NULL on failure (message in err). */
    void *(*setup)(const balm_bench_def *d, char *err, size_t errlen);
    void (*teardown)(void *data);
    /* Optional per-case state over shared data (oneDNN primitives, ...). */
    void *(*prepare)(const balm_bench_def *d, void *data, char *err, size_t errlen);
    void (*release)(void *state);
    /* Optional, untimed before every timed call: restore inputs a call
     * consumes (PauseTiming costs about a microsecond: only for long calls). */
    void (*reset)(const balm_bench_def *d, void *state);
    /* Optional label for the report (e.g. the oneDNN implementations used). */
    const char *(*label)(void *state);
    /* One timed call. state is prepare's result (or data if no prepare). */
    void (*run)(const balm_bench_def *d, void *state, uint64_t iter);
    void (*fn)(void);     /* the kernel (or peer) under test, cast back by run */
    size_t p[8];          /* shape parameters, meaning per family */
    int flag;             /* per family */
};

/* Append a copy of d to the registry. */
void balm_bench_add(const balm_bench_def *d);
/* Fill the registry with every case (called once by the shim). */
void balm_bench_register_all(void);
size_t balm_bench_count(void);
const balm_bench_def *balm_bench_get(size_t i);

/* 64-byte aligned allocation of n floats (uninitialised: setups fill it); NULL on
 * failure. Free with balm_bench_free. */
float *balm_bench_alloc(size_t n);
void balm_bench_free(void *p);
/* Deterministic fill: uniform in [lo, hi). */
void balm_bench_fill(float *x, size_t n, float lo, float hi, uint64_t seed);
/* Realistic mask [T][B] (offset t*m_step + b*m_sample): about a third of the
 * samples miss the modality entirely, the others have a present prefix of
 * random length >= T/2 (padding after). */
void balm_bench_mask(float *m, size_t T, size_t B, size_t m_step, size_t m_sample,
                     uint64_t seed);
/* Number of present (t, b) entries balm_bench_mask writes for that seed. */
size_t balm_bench_mask_present(size_t T, size_t B, uint64_t seed);

/* Shapes. */
typedef struct balm_bench_seq_shape {
    const char *name;
    size_t T, B, D;
} balm_bench_seq_shape;
extern const balm_bench_seq_shape balm_bench_seq_shapes[];
extern const size_t balm_bench_seq_shape_count;

typedef struct balm_bench_vec_shape {
    const char *name;
    size_t n;
} balm_bench_vec_shape;
/* Flat vectors (cosine, direction, scale, std, noise). */
extern const balm_bench_vec_shape balm_bench_vec_shapes[];
extern const size_t balm_bench_vec_shape_count;

/* Families registered by each file. */
void balm_bench_register_kernels(void);
void balm_bench_register_limits(void);
void balm_bench_register_naive(void);
void balm_bench_register_onednn(void);
void balm_bench_register_modules(void);

/* snprintf into a fixed field, truncating. */
void balm_bench_fmt(char *dst, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif
