/* CPU feature detection (x86: CPUID + XGETBV; AArch64: NEON always). */
#ifndef BALM_CPU_FEATURES_H
#define BALM_CPU_FEATURES_H
#include "balm/balm.h"

/* Fills *info once per call (cheap); used by dispatch and `balm info`. */
void balm_cpu_detect(balm_cpu_info *info);
/* Whether the CPU and OS can run an ISA's instructions (ignores the build). */
int balm_cpu_can_run(const balm_cpu_info *info, balm_isa isa);

#endif
