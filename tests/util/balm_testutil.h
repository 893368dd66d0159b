/* Shared helpers for the cmocka tests: a seeded generator, relative-error
 * comparison and golden-case loading. */
#ifndef BALM_TESTUTIL_H
#define BALM_TESTUTIL_H
#include <stddef.h>
#include <stdint.h>

/* xorshift64*: deterministic test data, independent of the library's RNG. */
typedef struct { uint64_t s; } tu_rng;
uint64_t tu_next(tu_rng *r);
float tu_uniform(tu_rng *r, float lo, float hi);
void tu_fill(tu_rng *r, float *x, size_t n, float lo, float hi);
/* max|got-want| / max(max|want|, 1e-30); NaN mismatches give +inf. */
double tu_rel_err(const float *got, const float *want, size_t n);
/* Loads <dir>/<name>.npy (aborts the test via cmocka on failure); returns
 * malloc'ed floats and the element count. */
float *tu_load(const char *dir, const char *name, size_t *count);
/* Path of a golden case: tests/data/golden/<case>, or NULL if absent. */
const char *tu_golden(const char *name, char *buf, size_t cap);
#endif
