/* libFuzzer harness: `balm train`'s flag parser (balm_train_parse) on argv
 * vectors cut from the input at NUL bytes (at most 24 arguments). It must
 * return 0 (valid), 2 (usage error, with a one-line message) or 3 (--help),
 * and a valid result must hold values in their documented ranges. */
#include <math.h>
#include "fuzz_util.h"
#include "train.h"
#include "trainer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *argv[26];
    if (!buf)
        abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    int argc = 0;
    argv[argc++] = "train";
    for (size_t i = 0; i <= size && argc < 25;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    balm_train_opts o;
    char err[512];
    err[0] = '\0';
    int rc = balm_train_parse(argc, argv, &o, err, sizeof err);
    /* A usage error has one line (arguments with a newline are echoed as
     * given, so only those may break it). */
    if (rc == 2 && (strlen(err) == 0 || (strchr(err, '\n') && !memchr(data, '\n', size))))
        abort();
    if (rc != 0 && rc != 2 && rc != 3)
        abort();
    if (rc == 0) {
        if (o.batch_size < 1 || !(o.lr > 0.0f) || !isfinite(o.lr) || !isfinite(o.tau) ||
            !isfinite(o.rho) || !isfinite(o.l2) || o.tau < 0 || o.rho < 0 || o.l2 < 0)
            abort();
        for (int m = 0; m < BALM_NMOD; m++)
            if (!(o.rates[m] >= 0.0 && o.rates[m] < 1.0))
                abort();
    }
    free(buf);
    return 0;
}
