/* Shadow checking (balm_shadow_enable): re-run a call on the scalar twin and
 * record the largest relative difference per kernel. */
#ifndef BALM_SHADOW_H
#define BALM_SHADOW_H
#include <stddef.h>
#include "kernels.h"

enum {
#define BALM_SHADOW_ID(name, ret, params) BALM_K_##name,
    BALM_KERNEL_LIST(BALM_SHADOW_ID)
#undef BALM_SHADOW_ID
    BALM_K_COUNT
};

/* The scalar table when shadowing is on and the active ISA is not scalar,
 * else NULL (then the caller skips the shadow run). */
const balm_kernels *balm_shadow_table(void);
/* Largest |got - ref| / max(max|ref|, 1e-30) over n floats; a NaN in one and
 * not the other counts as infinite. */
double balm_rel_diff(const float *got, const float *ref, size_t n);
void balm_shadow_record(int kernel, double rel);
#endif
