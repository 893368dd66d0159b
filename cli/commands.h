/* The subcommands of the `balm` tool. Each takes argv with argv[0] the
 * command name and returns the process exit status. */
#ifndef BALM_CLI_COMMANDS_H
#define BALM_CLI_COMMANDS_H

#include <stdio.h>

/* Exit statuses shared by every command. */
enum {
    BALM_EXIT_OK = 0,
    BALM_EXIT_FAIL = 1,  /* a check failed (a result outside its tolerance, NaN) */
    BALM_EXIT_USAGE = 2  /* bad usage, or an input that cannot be read or parsed */
};

/* `balm info`: CPU, features, supported and active ISA, oneDNN. */
int balm_cmd_info(int argc, char **argv);
/* `balm check [--isa ISA] [--out DIR] [--linear ref|onednn|auto] CASE_DIR...` */
int balm_cmd_check(int argc, char **argv);
/* The usage of `balm check` (also part of `balm --help`). */
void balm_check_usage(FILE *fp);

#endif
