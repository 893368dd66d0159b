/* Shared helpers of the libFuzzer harnesses: the readers under test take
 * paths, so every input goes through a file in a private temporary folder. */
#ifndef BALM_FUZZ_UTIL_H
#define BALM_FUZZ_UTIL_H
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One folder per process (mkdtemp), so parallel fuzz jobs never share files. */
static inline const char *fuzz_dir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/balm-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir))
            abort();
    }
    return dir;
}

/* Writes data to <fuzz_dir>/<name>; aborts on I/O failure, which is the
 * harness's fault, never the library's. */
static inline void fuzz_write(const char *name, const uint8_t *data, size_t size, char *path,
                       size_t cap)
{
    snprintf(path, cap, "%s/%s", fuzz_dir(), name);
    FILE *fp = fopen(path, "wb");
    if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0)
        abort();
}
#endif
