/* `balm info`: what this CPU has, what this build can use, and what it uses. */
#include <stdio.h>
#include <string.h>

#include "balm/balm.h"
#include "kernels.h"
#include "commands.h"

static const char *yn(int v)
{
    return v ? "yes" : "no";
}

static void info_usage(FILE *fp)
{
    fputs("usage: balm info\n"
          "Prints the CPU vendor, model and features, the ISAs this build and CPU support,\n"
          "the ISA the kernels use and why (BALM_ISA caps it), and whether oneDNN is built in.\n",
          fp);
}

int balm_cmd_info(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            info_usage(stdout);
            return BALM_EXIT_OK;
        }
        fprintf(stderr, "balm info: unknown %s '%s'\n", argv[i][0] == '-' ? "option" : "argument",
                argv[i]);
        info_usage(stderr);
        return BALM_EXIT_USAGE;
    }

    balm_cpu_info c;
    memset(&c, 0, sizeof c);
    balm_cpu_info_get(&c);

    printf("libbalm %s\n", balm_version());
    printf("cpu vendor:   %s\n", c.vendor[0] ? c.vendor : "(unknown)");
    printf("cpu model:    %s\n", c.model[0] ? c.model : "(unknown)");
    printf("features:     sse4.2 %s, avx %s, avx2 %s, fma %s, f16c %s\n", yn(c.sse42), yn(c.avx),
           yn(c.avx2), yn(c.fma), yn(c.f16c));
    printf("              avx512f %s, avx512bw %s, avx512dq %s, avx512vl %s, neon %s\n",
           yn(c.avx512f), yn(c.avx512bw), yn(c.avx512dq), yn(c.avx512vl), yn(c.neon));
    printf("os saves:     ymm state %s, zmm+opmask state %s\n", yn(c.os_ymm), yn(c.os_zmm));
    /* The two answers people look for, spelled out. */
    printf("AVX2 and FMA: %s\n", c.avx2 && c.fma && c.os_ymm ? "present" : "absent");
    printf("AVX-512:      %s\n", c.avx512f && c.avx512bw && c.avx512dq && c.avx512vl && c.os_zmm
                                     ? "present (F+BW+DQ+VL)"
                                     : "absent");

    printf("ISAs:\n");
    for (int i = 0; i < BALM_ISA_COUNT; i++) {
        balm_isa isa = (balm_isa)i;
        const char *state;
        if (balm_isa_supported(isa))
            state = "supported";
        else if (!balm_isa_built(isa))
            state = "not in this build";
        else
            state = "not supported by this CPU/OS";
        printf("  %-7s %s\n", balm_isa_name(isa), state);
    }
    balm_isa active = balm_isa_active();
    printf("active ISA:   %s (%s)\n", balm_isa_name(active), balm_isa_reason());
#ifdef BALM_HAVE_ONEDNN
    printf("oneDNN:       built in (linear layers can use oneDNN matmul)\n");
#else
    printf("oneDNN:       not built in (linear layers use the plain C path)\n");
#endif
    return BALM_EXIT_OK;
}
