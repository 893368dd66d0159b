/* Machine-limit loops: what one core can read, copy, triad and update in
 * place (x *= s) at a size.
 * One copy per ISA, each file compiled with only its own ISA flags. */
#ifndef BALM_BENCH_LIMITS_H
#define BALM_BENCH_LIMITS_H

#include <stddef.h>

#define BALM_BENCH_LIMIT_DECL(isa)                                                       \
    float balm_bench_read_##isa(size_t n, const float *x);                               \
    void balm_bench_copy_##isa(size_t n, const float *x, float *y);                      \
    void balm_bench_triad_##isa(size_t n, const float *a, const float *b, float s, float *c); \
    void balm_bench_update_##isa(size_t n, float *x, float s);

BALM_BENCH_LIMIT_DECL(scalar)
BALM_BENCH_LIMIT_DECL(avx2)
BALM_BENCH_LIMIT_DECL(avx512)

#endif
