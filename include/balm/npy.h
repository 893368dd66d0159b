/* Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0):
 * little-endian float32 ('<f4'), C order, any number of dimensions (0..8).
 * Anything else (another dtype, Fortran order, a truncated file, a bad
 * header) is BALM_ERR_FORMAT with a message naming the file and the problem. */
#ifndef BALM_NPY_H
#define BALM_NPY_H

#include "balm/balm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BALM_NPY_MAX_DIMS 8

typedef struct balm_array {
    float *data;                      /* malloc'ed, count floats (NULL if count = 0) */
    size_t ndim;
    size_t shape[BALM_NPY_MAX_DIMS];
    size_t count;                     /* product of shape (1 for ndim = 0) */
} balm_array;

/* Read `path` into *out (zeroed first). On error *out stays empty. */
BALM_API balm_status balm_npy_read(const char *path, balm_array *out);
/* Write a float32 C-order array; written to a temporary file in the same
 * folder and renamed, so `path` is either the old file or the whole new one. */
BALM_API balm_status balm_npy_write(const char *path, const float *data, size_t ndim,
                                    const size_t *shape);
/* Free data and reset the array (safe on a zeroed array). */
BALM_API void balm_array_free(balm_array *a);

#ifdef __cplusplus
}
#endif
#endif
