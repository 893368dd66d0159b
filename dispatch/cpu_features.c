/* CPU feature detection. x86: CPUID leaves 1 and 7 for the instruction
 * sets, XGETBV for what the OS saves on a context switch (an ISA the OS does
 * not save is unusable even if CPUID lists it). */
#include <string.h>
#include "cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

void balm_cpu_detect(balm_cpu_info *info)
{
    unsigned a, b, c, d;
    memset(info, 0, sizeof *info);
    if (!__get_cpuid(0, &a, &b, &c, &d))
        return;
    unsigned max_leaf = a;
    memcpy(info->vendor + 0, &b, 4);
    memcpy(info->vendor + 4, &d, 4);
    memcpy(info->vendor + 8, &c, 4);
    info->vendor[12] = '\0';

    unsigned ext_max = __get_cpuid_max(0x80000000u, NULL);
    if (ext_max >= 0x80000004u) {
        unsigned regs[12];
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2],
                        &regs[4 * i + 3]);
        char brand[49];
        memcpy(brand, regs, 48);
        brand[48] = '\0';
        const char *p = brand;
        while (*p == ' ')
            p++;
        strncpy(info->model, p, sizeof info->model - 1);
        info->model[sizeof info->model - 1] = '\0';
        for (size_t n = strlen(info->model); n > 0 && info->model[n - 1] == ' '; n--)
            info->model[n - 1] = '\0';
    }

    __get_cpuid(1, &a, &b, &c, &d);
    int osxsave = (c >> 27) & 1;
    info->sse42 = (c >> 20) & 1;
    info->avx = (c >> 28) & 1;
    info->fma = (c >> 12) & 1;
    info->f16c = (c >> 29) & 1;
    if (osxsave) {
        uint64_t xcr0 = xgetbv0();
        info->os_ymm = (xcr0 & 0x6) == 0x6;    /* XMM and YMM state */
        info->os_zmm = (xcr0 & 0xE6) == 0xE6;  /* + opmask, ZMM_Hi256, Hi16_ZMM */
    }
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        info->avx2 = (b >> 5) & 1;
        info->avx512f = (b >> 16) & 1;
        info->avx512dq = (b >> 17) & 1;
        info->avx512bw = (b >> 30) & 1;
        info->avx512vl = (b >> 31) & 1;
    }
}

int balm_cpu_can_run(const balm_cpu_info *i, balm_isa isa)
{
    switch (isa) {
    case BALM_ISA_SCALAR: return 1;
    case BALM_ISA_AVX2: return i->avx && i->avx2 && i->fma && i->os_ymm;
    case BALM_ISA_AVX512:
        return i->avx512f && i->avx512bw && i->avx512dq && i->avx512vl && i->os_ymm && i->os_zmm &&
               i->fma;
    default: return 0;
    }
}

#elif defined(__aarch64__)
#include <stdio.h>

void balm_cpu_detect(balm_cpu_info *info)
{
    memset(info, 0, sizeof *info);
    strcpy(info->vendor, "ARM");
    info->neon = 1; /* Advanced SIMD is mandatory on AArch64 */
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "CPU implementer", 15) || !strncmp(line, "model name", 10)) {
                char *colon = strchr(line, ':');
                if (colon) {
                    colon++;
                    while (*colon == ' ' || *colon == '\t') colon++;
                    colon[strcspn(colon, "\n")] = '\0';
                    snprintf(info->model, sizeof info->model, "%s", colon);
                    break;
                }
            }
        }
        fclose(f);
    }
    if (!info->model[0])
        strcpy(info->model, "AArch64");
}

int balm_cpu_can_run(const balm_cpu_info *i, balm_isa isa)
{
    return isa == BALM_ISA_SCALAR || (isa == BALM_ISA_NEON && i->neon);
}

#else
void balm_cpu_detect(balm_cpu_info *info)
{
    memset(info, 0, sizeof *info);
    strcpy(info->vendor, "unknown");
    strcpy(info->model, "unknown");
}

int balm_cpu_can_run(const balm_cpu_info *i, balm_isa isa)
{
    (void)i;
    return isa == BALM_ISA_SCALAR;
}
#endif

void balm_cpu_info_get(balm_cpu_info *info)
{
    if (info)
        balm_cpu_detect(info);
}
