/* Argument checks shared by the public wrappers. */
#include <math.h>
#include "internal.h"

balm_seq balm_seq_tbd(size_t T, size_t B, size_t D)
{
    balm_seq L = {T, B, D, B * D, D, B, 1};
    if (L.x_step == 0) L.x_step = 1;
    if (L.x_sample == 0) L.x_sample = 1;
    if (L.m_step == 0) L.m_step = 1;
    return L;
}

balm_seq balm_seq_btd(size_t T, size_t B, size_t D)
{
    balm_seq L = {T, B, D, D, T * D, 1, T};
    if (L.x_step == 0) L.x_step = 1;
    if (L.x_sample == 0) L.x_sample = 1;
    if (L.m_sample == 0) L.m_sample = 1;
    return L;
}

/* Rows of width w at strides s_t (count T) and s_b (count B) do not overlap. */
static int strides_disjoint(size_t w, size_t T, size_t s_t, size_t B, size_t s_b)
{
    size_t small_s = s_t, small_n = T, big_s = s_b, big_n = B;
    if (T <= 1) { small_s = s_b; small_n = B; big_s = s_t; big_n = T; }
    else if (B > 1 && s_b < s_t) { small_s = s_b; small_n = B; big_s = s_t; big_n = T; }
    if (small_n > 1 && small_s < w) return 0;
    if (big_n > 1) {
        size_t need;
        if (small_n > 1) {
            if (balm_mul_ovf(small_s, small_n, &need)) return 0;
        } else {
            need = w;
        }
        if (big_s < need) return 0;
    }
    return 1;
}

/* Last offset + 1 of a 2-D strided set of rows; 1 on overflow. */
static int span_of(size_t w, size_t T, size_t s_t, size_t B, size_t s_b, size_t *span)
{
    size_t a, b, s;
    if (T == 0 || B == 0 || w == 0) { *span = 0; return 0; }
    if (balm_mul_ovf(T - 1, s_t, &a) || balm_mul_ovf(B - 1, s_b, &b)) return 1;
    s = a + b;
    if (s < a || s + w < s) return 1;
    *span = s + w;
    return 0;
}

balm_status balm_seq_check(const char *fn, const balm_seq *L, size_t *x_span, size_t *m_span)
{
    size_t xs, ms, tmp;
    if (!L)
        return balm_fail(BALM_ERR_NULL, "%s: layout L is NULL", fn);
    if (L->x_step == 0 || L->x_sample == 0)
        return balm_fail(BALM_ERR_STRIDE, "%s: data stride is zero (x_step=%zu, x_sample=%zu)",
                         fn, L->x_step, L->x_sample);
    if (L->m_step == 0 || L->m_sample == 0)
        return balm_fail(BALM_ERR_STRIDE, "%s: mask stride is zero (m_step=%zu, m_sample=%zu)",
                         fn, L->m_step, L->m_sample);
    if (balm_mul_ovf(L->T, L->B, &tmp) || balm_mul_ovf(tmp, L->D, &tmp))
        return balm_fail(BALM_ERR_SIZE, "%s: T*B*D overflows (T=%zu, B=%zu, D=%zu)", fn, L->T,
                         L->B, L->D);
    if (span_of(L->D, L->T, L->x_step, L->B, L->x_sample, &xs) ||
        span_of(1, L->T, L->m_step, L->B, L->m_sample, &ms))
        return balm_fail(BALM_ERR_SIZE, "%s: strided extent overflows size_t", fn);
    if (L->T == 0 || L->B == 0)
        goto done; /* empty: nothing is read or written */
    if (L->D > 0 && !strides_disjoint(L->D, L->T, L->x_step, L->B, L->x_sample))
        return balm_fail(BALM_ERR_STRIDE,
                         "%s: data strides make rows overlap (D=%zu, x_step=%zu, x_sample=%zu)",
                         fn, L->D, L->x_step, L->x_sample);
    if (!strides_disjoint(1, L->T, L->m_step, L->B, L->m_sample))
        return balm_fail(BALM_ERR_STRIDE,
                         "%s: mask strides make entries overlap (m_step=%zu, m_sample=%zu)", fn,
                         L->m_step, L->m_sample);
done:
    if (x_span) *x_span = xs;
    if (m_span) *m_span = ms;
    return BALM_OK;
}

balm_status balm_mask_check(const char *fn, const char *arg, const balm_seq *L, const float *m)
{
    for (size_t t = 0; t < L->T; t++)
        for (size_t b = 0; b < L->B; b++) {
            float v = m[t * L->m_step + b * L->m_sample];
            if (v != 0.0f && v != 1.0f)
                return balm_fail(BALM_ERR_MASK, "%s: %s[t=%zu][b=%zu] = %.9g, expected 0 or 1", fn,
                                 arg, t, b, (double)v);
        }
    return BALM_OK;
}

int balm_ranges_overlap(const float *a, size_t na, const float *b, size_t nb)
{
    if (na == 0 || nb == 0) return 0;
    uintptr_t a0 = (uintptr_t)a, a1 = a0 + na * sizeof(float);
    uintptr_t b0 = (uintptr_t)b, b1 = b0 + nb * sizeof(float);
    return a0 < b1 && b0 < a1;
}

size_t balm_find_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return SIZE_MAX;
}
