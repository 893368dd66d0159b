/* The kernel list: one line per kernel family drives the dispatch table,
 * the prototypes of every ISA variant, the per-ISA tests and the benchmarks.
 *
 * Inner kernels do no validation: the public wrappers in src/api_kernels.c
 * check every argument (sizes, strides, masks) before calling them. A kernel
 * may assume: masks hold only 0.0f/1.0f, strides are valid, n/T/B/D > 0 where
 * the wrapper says so, outputs do not overlap inputs unless documented.
 *
 * Adding a kernel: one X(...) line here, one function per ISA file, and the
 * name in that ISA's list below if the ISA implements it (a missing entry
 * falls back to the next lower ISA, scalar last). */
#ifndef BALM_KERNELS_H
#define BALM_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "balm/balm.h"

/* X(name, return type, parameter list) */
#define BALM_KERNEL_LIST(X)                                                              \
    /* s[b][d] = sum_t m x / (sum_t m + eps), s dense [B][D]; T, B, D >= 1 */            \
    X(pool_fwd, void, (const balm_seq *L, const float *x, const float *m, float *s))     \
    /* dx (+)= m ds / (sum_t m + eps); T, B, D >= 1 */                                   \
    X(pool_bwd, void,                                                                    \
      (const balm_seq *L, const float *m, const float *ds, float *dx, int accumulate))   \
    /* y = 2 sigmoid(e) x m; T, B, D >= 1 */                                             \
    X(gate_fwd, void,                                                                    \
      (const balm_seq *L, const float *x, const float *m, const float *e, float *y))     \
    /* dx = 2 s(e) m dy; de = sum_t dy x m * 2 s(e) s(-e) (no 1-s cancellation) */              \
    X(gate_bwd, void,                                                                    \
      (const balm_seq *L, const float *x, const float *m, const float *e,                \
       const float *dy, float *dx, float *de))                                           \
    /* sum_{n,c} p (log p - logq), not divided by N; N, C >= 1 */                         \
    X(kl_cls_sum, double, (size_t N, size_t C, const float *p, const float *logq))       \
    /* sum_n of the two-class regression KL terms; N >= 1 */                             \
    X(kl_reg_sum, double, (size_t N, const float *f, const float *u))                    \
    /* out[0] = sum w*wf, out[1] = sum w*w, out[2] = sum wf*wf; n >= 1 */                \
    X(dot_norms, void, (size_t n, const float *w, const float *wf, double out[3]))       \
    /* dwf (+)= sum_m a[m] w[m] + b wf; n >= 1, 1 <= M <= 8 */                            \
    X(combine, void,                                                                     \
      (size_t n, size_t M, const float *const *w, const float *a, const float *wf,       \
       float b, float *dwf, int accumulate))                                             \
    /* x *= alpha; n >= 1 */                                                             \
    X(scale, void, (size_t n, float *x, float alpha))                                    \
    /* out[0] = sum x, out[1] = sum x*x (double accumulation); n >= 1 */                 \
    X(sums, void, (size_t n, const float *x, double out[2]))                             \
    /* x = x*alpha + sd * normal(seed, offset+i); n >= 1 */                              \
    X(scale_noise, void,                                                                 \
      (size_t n, float *x, float alpha, float sd, uint64_t seed, uint64_t offset))

/* Which kernels each SIMD ISA implements (the rest fall back). */
#define BALM_KERNELS_AVX2(X)                                                             \
    X(pool_fwd) X(pool_bwd) X(gate_fwd) X(gate_bwd) X(kl_cls_sum) X(kl_reg_sum)          \
    X(dot_norms) X(combine) X(scale) X(sums) X(scale_noise)
#define BALM_KERNELS_AVX512(X)                                                           \
    X(pool_fwd) X(pool_bwd) X(gate_fwd) X(gate_bwd) X(kl_cls_sum) X(kl_reg_sum)          \
    X(dot_norms) X(combine) X(scale) X(sums) X(scale_noise)
#define BALM_KERNELS_NEON(X)                                                             \
    X(pool_fwd) X(pool_bwd) X(gate_fwd) X(gate_bwd) X(kl_cls_sum) X(kl_reg_sum)          \
    X(dot_norms) X(combine) X(scale) X(sums) X(scale_noise)

/* The table: one pointer per kernel. */
typedef struct balm_kernels {
#define BALM_TABLE_FIELD(name, ret, params) ret(*name) params;
    BALM_KERNEL_LIST(BALM_TABLE_FIELD)
#undef BALM_TABLE_FIELD
} balm_kernels;

/* Prototypes of every (kernel, ISA) variant: balm_<kernel>_f32_<isa>. */
#define BALM_DECLARE_VARIANTS(name, ret, params)                                         \
    ret balm_##name##_f32_scalar params;                                                 \
    ret balm_##name##_f32_avx2 params;                                                   \
    ret balm_##name##_f32_avx512 params;                                                 \
    ret balm_##name##_f32_neon params;
BALM_KERNEL_LIST(BALM_DECLARE_VARIANTS)
#undef BALM_DECLARE_VARIANTS

/* Names of the kernels in list order, for tests and benchmarks. */
extern const char *const balm_kernel_names[];
extern const size_t balm_kernel_count;

/* The dispatched table (initialised once, thread-safely, on first use). */
const balm_kernels *balm_kernels_active(void);
/* The table a given ISA would use: scalar entries overridden, in ascending
 * order, by every ISA up to `isa`. Returns 0 (and leaves *out untouched) when
 * the ISA is not supported by this build and CPU. Tests call every ISA's
 * kernels directly through this. */
int balm_kernels_for_isa(balm_isa isa, balm_kernels *out);
/* Whether this build compiled kernels for the ISA (whatever the CPU). */
int balm_isa_built(balm_isa isa);

#endif
