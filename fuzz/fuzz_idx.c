/* libFuzzer harness: the trainer's IDX reader (plain or gzip, through zlib)
 * for 1 to 4 dimensions, with and without expected dimensions, whole or a
 * prefix of max_items items. The first input byte picks the mode (bits 0-1:
 * ndim - 1, bit 2: expect 28x28 images, bits 4-7: max_items); the rest is
 * the file. */
#include "fuzz_util.h"
#include "trainer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    char path[512];
    fuzz_write("in.idx.gz", data + 1, size - 1, path, sizeof path);
    size_t ndim = 1 + (mode & 3); /* 1..4 */
    const size_t exp3[4] = {0, 28, 28, 0};
    const size_t *expect = (mode & 4) && ndim == 3 ? exp3 : NULL;
    size_t dims[4] = {0, 0, 0, 0};
    uint8_t *buf = (uint8_t *)0x1; /* must become NULL or a real buffer */
    size_t max_items = mode >> 4;
    balm_status st = balm_idx_read(path, ndim, expect, max_items, dims, &buf);
    if (st != BALM_OK) {
        if (buf != NULL || !balm_last_error()[0])
            abort();
        return 0;
    }
    size_t n = 1;
    for (size_t k = 0; k < ndim; k++)
        n *= dims[k];
    if (max_items && max_items < dims[0])
        n = n / dims[0] * max_items; /* only the prefix was read */
    volatile unsigned sink = 0;
    for (size_t i = 0; i < n; i++)
        sink += buf[i];
    (void)sink;
    free(buf);
    return 0;
}
