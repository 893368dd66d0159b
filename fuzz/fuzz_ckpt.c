/* libFuzzer harness: balm_ckpt_load on arbitrary bytes against a fixed small
 * model (three tensors). A failed load must leave the destination tensors
 * untouched; a successful one must have passed the CRC, so the fuzzer mostly
 * explores the checks before it (the seeds carry valid CRCs). A first byte
 * of 0xC5 makes the harness fix up the CRC itself, so the parser behind the
 * CRC check is explored too. */
#include <zlib.h>
#include "fuzz_util.h"
#include "trainer.h"

static const uint64_t meta[BALM_CKPT_META] = {3, 2, 1, 4, 2, 1, 1, 0};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static float a[12], b[4], c[1];
    static const float guard = -12345.0f;
    if (size < 1)
        return 0;
    int fix_crc = data[0] == 0xC5;
    data++;
    size--;
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    if (fix_crc && size >= 4) {
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), copy, (uInt)(size - 4));
        memcpy(copy + size - 4, &crc, 4);
    }
    char path[512];
    fuzz_write("in.ckpt", copy, size, path, sizeof path);
    free(copy);
    for (int i = 0; i < 12; i++)
        a[i] = guard;
    for (int i = 0; i < 4; i++)
        b[i] = guard;
    c[0] = guard;
    const balm_tensor_ref t[3] = {{"enc_l.w", a, 12}, {"enc_l.b", b, 4}, {"scalar", c, 1}};
    balm_status st = balm_ckpt_load(path, meta, t, 3);
    if (st != BALM_OK) {
        for (int i = 0; i < 12; i++)
            if (a[i] != guard)
                abort(); /* a failed load wrote into the model */
        if (b[0] != guard || c[0] != guard || !balm_last_error()[0])
            abort();
    }
    return 0;
}
