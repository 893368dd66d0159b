/* libFuzzer harness: balm_npy_read on arbitrary bytes. On success the array
 * must be self-consistent (count = product of shape, data readable); on
 * failure it must be left empty. */
#include "fuzz_util.h"
#include "balm/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fuzz_write("in.npy", data, size, path, sizeof path);
    balm_array a;
    balm_status st = balm_npy_read(path, &a);
    if (st != BALM_OK) {
        if (a.data || a.count || a.ndim || !balm_last_error()[0])
            abort();
        return 0;
    }
    size_t n = 1;
    for (size_t i = 0; i < a.ndim; i++)
        n *= a.shape[i];
    if (a.ndim > BALM_NPY_MAX_DIMS || n != a.count || (n && !a.data))
        abort();
    volatile float sink = 0;
    for (size_t i = 0; i < a.count; i++)
        sink += a.data[i]; /* every element must be readable (ASan checks) */
    (void)sink;
    /* Round trip: what was read must write and read back identically. */
    char out[512];
    snprintf(out, sizeof out, "%s/rt.npy", fuzz_dir());
    if (balm_npy_write(out, a.data, a.ndim, a.shape) == BALM_OK) {
        balm_array b;
        if (balm_npy_read(out, &b) != BALM_OK || b.count != a.count || b.ndim != a.ndim ||
            (a.count && memcmp(a.data, b.data, a.count * sizeof(float)) != 0))
            abort();
        balm_array_free(&b);
    }
    balm_array_free(&a);
    return 0;
}
