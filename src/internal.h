/* Private helpers of the API layer: error reporting and argument checks. */
#ifndef BALM_INTERNAL_H
#define BALM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "balm/balm.h"

#if defined(__GNUC__)
#define BALM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BALM_PRINTF(a, b)
#endif

/* Record a detailed message for balm_last_error() and return s. */
balm_status balm_fail(balm_status s, const char *fmt, ...) BALM_PRINTF(2, 3);
/* Clear the thread's message (called on success by nothing: messages stay
 * until the next failure, as errno does). */

/* a*b into *out; 0 on success, 1 on overflow. */
static inline int balm_mul_ovf(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 1;
    *out = a * b;
    return 0;
}

/* Number of floats spanned by a sequence tensor / its mask (last index + 1),
 * 0 when empty; BALM_ERR_SIZE on overflow. */
balm_status balm_seq_check(const char *fn, const balm_seq *L, size_t *x_span, size_t *m_span);
/* Every mask value is 0 or 1; else BALM_ERR_MASK naming [t][b]. */
balm_status balm_mask_check(const char *fn, const char *arg, const balm_seq *L, const float *m);
/* Whether two float ranges [a, a+na) and [b, b+nb) overlap. */
int balm_ranges_overlap(const float *a, size_t na, const float *b, size_t nb);
/* First non-finite value in x[0..n) or SIZE_MAX. */
size_t balm_find_nonfinite(const float *x, size_t n);

#endif
