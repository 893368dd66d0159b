/* The `balm` command: dispatches to info, check and train. */
#include <stdio.h>
#include <string.h>

#include "balm/balm.h"
#include "commands.h"
#ifdef BALM_HAVE_TRAINER
#include "train.h"
#endif

#define BALM_STR2(x) #x
#define BALM_STR(x) BALM_STR2(x)
#define BALM_TOOL_VERSION                                                                  \
    BALM_STR(BALM_VERSION_MAJOR) "." BALM_STR(BALM_VERSION_MINOR) "." BALM_STR(BALM_VERSION_PATCH)

static void usage(FILE *fp)
{
    fputs("usage: balm <command> [options]\n"
          "       balm --help | --version\n"
          "\n"
          "commands:\n"
          "  info     CPU vendor, model and features; the ISAs this build and CPU support;\n"
          "           the ISA in use and why; whether oneDNN is built in\n"
          "  check    run golden cases through the library and compare (see below)\n"
          "  train    the reference BALM trainer ('balm train --help')\n"
          "\n"
          "environment:\n"
          "  BALM_ISA=scalar|avx2|avx512|neon  caps the ISA the kernels use (never enables\n"
          "                                    one the CPU lacks)\n"
          "\n"
          "exit status: 0 success, 1 a check failed, 2 usage, I/O or format error\n"
          "\n",
          fp);
    balm_check_usage(fp);
}

static int cmd_train(int argc, char **argv)
{
#ifdef BALM_HAVE_TRAINER
    return balm_cmd_train(argc, argv);
#else
    (void)argc;
    (void)argv;
    fputs("balm train: the trainer is not built into this binary (configure with trainer/ "
          "present)\n",
          stderr);
    return BALM_EXIT_USAGE;
#endif
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("balm: no command given\n", stderr);
        usage(stderr);
        return BALM_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return BALM_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        /* The tool's version and the loaded library's, which may differ. */
        printf("balm %s (libbalm %s)\n", BALM_TOOL_VERSION, balm_version());
        return BALM_EXIT_OK;
    }
    if (strcmp(cmd, "info") == 0)
        return balm_cmd_info(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return balm_cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    if (cmd[0] == '-')
        fprintf(stderr, "balm: unknown option '%s'\n", cmd);
    else
        fprintf(stderr, "balm: unknown command '%s'\n", cmd);
    usage(stderr);
    return BALM_EXIT_USAGE;
}
