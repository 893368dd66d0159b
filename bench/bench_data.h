/* Inputs shared by every impl of one family/op/shape (kernels, naive C and
 * oneDNN peers read the same buffers), and the helpers that build the
 * definitions, so that names, keys and byte counts are written once. */
#ifndef BALM_BENCH_DATA_H
#define BALM_BENCH_DATA_H

#include "balm/balm.h"
#include "bench.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fixed seed of every mask: the byte counts depend on it. */
#define BALM_BENCH_MASK_SEED 42u

/* Which families exist over sequence tensors. */
typedef enum seq_op { SEQ_POOL_FWD, SEQ_POOL_BWD, SEQ_GATE_FWD, SEQ_GATE_BWD, SEQ_NOPS } seq_op;

/* Step-major [T][B][D] tensors (upstream's layout), mask [T][B]. */
typedef struct seq_data {
    balm_seq L;
    size_t present; /* (t, b) entries with mask 1 */
    float *x, *m;
    float *e;       /* gate logits [B][D] */
    float *dy;      /* gradient in [T][B][D] (gate_bwd) */
    float *out;     /* y or dx [T][B][D] */
    float *bd;      /* s, ds or de [B][D] */
    float *bd2;     /* ds for pool_bwd */
} seq_data;

/* "pool/fwd" etc. */
const char *seq_op_name(seq_op op);
/* A definition for op at shape sh with impl name, data key, byte and item
 * counts and the shared setup filled in; the caller sets fn, run, skip. */
balm_bench_def seq_def(seq_op op, const balm_bench_seq_shape *sh, const char *impl);

/* Flat-vector families. */
typedef enum vec_op {
    VEC_KL_CLS, VEC_KL_REG, VEC_DOT_NORMS, VEC_DIRECTION, VEC_SCALE, VEC_STD, VEC_NOISE,
    VEC_NOPS
} vec_op;

#define VEC_MAXBUF 6
typedef struct vec_data {
    size_t n;             /* elements per vector (N*C for kl_cls) */
    size_t N, C;          /* kl only */
    float *v[VEC_MAXBUF]; /* meaning per op, see bench_kernels.c */
    double sink;          /* results land here so nothing is dead */
    uint64_t phase;       /* in-place ops: x2 on even calls, x0.5 on odd ones,
                             counted across impls and repetitions so the data
                             never drifts by more than a factor 2 */
} vec_data;

const char *vec_op_name(vec_op op);
/* As seq_def; sh may be NULL for the KL ops (their shape is N1760C6/N1760). */
balm_bench_def vec_def(vec_op op, const balm_bench_vec_shape *sh, const char *impl);
/* Shapes each vec op runs at (the KL ops ignore the vec shape table). */
int vec_op_uses_shape(vec_op op, const balm_bench_vec_shape *sh);

/* The GRM shape of issue 5: N = 1760 samples, C = 6 classes. */
#define BALM_BENCH_KL_N 1760
#define BALM_BENCH_KL_C 6

#ifdef __cplusplus
}
#endif
#endif
