/* Every SIMD kernel against its scalar twin, called directly through
 * balm_kernels_for_isa(), for every ISA this build and CPU support (AVX2,
 * AVX-512, NEON: nothing here is ISA-specific).
 *
 * Cases: sizes 1, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65 and 4099 (the inner
 * kernels are never called with 0; the public wrappers handle empty calls);
 * T and B small odd values; layouts step-major, sample-major and both with
 * padded strides; every pointer misaligned by +1 float in half of the cases;
 * mask patterns all present, all missing, first only, last only, random;
 * NaN/Inf at masked positions (outputs there must be exactly 0 and sums
 * unaffected) and at unmasked ones (must propagate as in scalar); saturated
 * gates. Every buffer has canary floats before and after it, and the gaps of
 * padded layouts are canaries too: any write outside the kernel's elements
 * fails the test.
 *
 * Tolerances (per element unless said otherwise; "mag" is the sum of the
 * magnitudes of the terms, computed in double by the test):
 *   pool_fwd, pool_bwd, scale, combine: 2e-7 relative to mag (the AVX2
 *     versions are bit-identical; others may reorder)
 *   gate_fwd, gate_bwd dx: 4 ulp (5e-7 relative) - vector sigmoid <= 2 ulp -
 *     plus 2^-124 |x| absolute: below e = -88.72 the scalar sigmoid is 0
 *     where a SIMD one may keep the denormal value
 *   gate_bwd de: 1e-6 * sum_t|dy x| * g + 8 * 2^-24 * sum_t|dy x| (the gate
 *     factor 2 s(e) s(-e) from two vector sigmoids) + 1e-40 (denormal g)
 *   kl_cls_sum, kl_reg_sum: 1e-6 of mag (float terms, double sums) and
 *     1e-5 relative of the value where the value is not tiny
 *   dot_norms, sums: 1e-6 of mag
 *   scale_noise: normals 1e-5 relative (1e-5 absolute below 1); outputs
 *     1e-5 * (|x alpha| + sd max(1, |z|)).
 * Non-finite reference values must be matched in class (NaN, +inf, -inf). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "balm/balm.h"
#include "kernels.h"

/* ------------------------------------------------------------ helpers */
static balm_kernels ref_tab;
static balm_kernels isa_tab[BALM_ISA_COUNT];
static int isa_ok[BALM_ISA_COUNT];
static int n_isa;

static const size_t SIZES[] = {1, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 4099};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])

typedef struct { uint64_t s; } rng;
static uint64_t rnext(rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}
static float runi(rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)((rnext(r) >> 40) * (1.0 / 16777216.0));
}

/* A float buffer with GUARD canaries on both sides; `p` is misaligned by
 * `mis` floats from a 64-byte boundary. */
#define GUARD 16
typedef struct {
    float *base, *p;
    size_t n;
} fbuf;
static const uint32_t CANARY_BITS = 0x7FC0BEEFu; /* a quiet NaN with a payload */
static float canary(void)
{
    float f;
    memcpy(&f, &CANARY_BITS, 4);
    return f;
}
static fbuf fb_new(size_t n, int mis)
{
    fbuf b;
    size_t total = n + 2 * GUARD + 16;
    b.base = aligned_alloc(64, ((total * sizeof(float) + 63) / 64) * 64);
    assert_non_null(b.base);
    for (size_t i = 0; i < total; i++)
        b.base[i] = canary();
    b.p = b.base + GUARD + (mis ? 1 : 0);
    b.n = n;
    return b;
}
static void fb_free(fbuf *b) { free(b->base); }
static int is_canary(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u == CANARY_BITS;
}
/* Canaries before and after the buffer intact. */
static void fb_check_guards(const fbuf *b, const char *what)
{
    for (int i = 1; i <= GUARD - 1; i++)
        if (!is_canary(b->p[-i]))
            fail_msg("%s: write before the buffer at [-%d]", what, i);
    for (int i = 0; i < GUARD; i++)
        if (!is_canary(b->p[b->n + i]))
            fail_msg("%s: write past the end at [n+%d]", what, i);
}
static fbuf fb_clone(const fbuf *src, int mis)
{
    fbuf b = fb_new(src->n, mis);
    for (size_t i = 0; i < src->n; i++)
        b.p[i] = src->p[i];
    return b;
}

/* Whether a got value matches reference r within absolute tolerance tol,
 * non-finite values matching in class. */
static int close_to(float got, float r, double tol)
{
    if (isnan(r))
        return isnan(got);
    if (isinf(r))
        return got == r;
    if (!isfinite(got))
        return 0;
    return fabs((double)got - (double)r) <= tol;
}
/* |v| for finite v, else 0 (for tolerances built from inputs). */
static double finabs(float v) { return isfinite(v) ? fabs(v) : 0.0; }
static int close_to_d(double got, double r, double tol)
{
    if (isnan(r))
        return isnan(got);
    if (isinf(r))
        return got == r;
    if (!isfinite(got))
        return 0;
    return fabs(got - r) <= tol;
}

static int setup(void **state)
{
    (void)state;
    assert_true(balm_kernels_for_isa(BALM_ISA_SCALAR, &ref_tab));
    char names[128] = "";
    for (int i = 1; i < BALM_ISA_COUNT; i++) {
        if (balm_isa_supported((balm_isa)i) && balm_kernels_for_isa((balm_isa)i, &isa_tab[i])) {
            isa_ok[i] = 1;
            n_isa++;
            strcat(names, " ");
            strcat(names, balm_isa_name((balm_isa)i));
        }
    }
    printf("[ ISAs    ] compared with scalar:%s\n", n_isa ? names : " none (only scalar here)");
    return 0;
}

#define FOR_EACH_ISA(i)                                                          \
    if (!n_isa)                                                                  \
        skip();                                                                  \
    for (int i = 1; i < BALM_ISA_COUNT; i++)                                     \
        if (isa_ok[i])

/* ------------------------------------------------------------ layouts */
enum { LAY_TBD, LAY_BTD, LAY_TBD_PAD, LAY_BTD_PAD, LAY_COUNT };
static const char *const LAY_NAMES[] = {"tbd", "btd", "tbd+pad", "btd+pad"};
static balm_seq make_layout(int lay, size_t T, size_t B, size_t D)
{
    balm_seq L;
    switch (lay) {
    case LAY_TBD: L = balm_seq_tbd(T, B, D); break;
    case LAY_BTD: L = balm_seq_btd(T, B, D); break;
    case LAY_TBD_PAD:
        L = balm_seq_tbd(T, B, D);
        L.x_sample = D + 3;
        L.x_step = B * (D + 3) + 5;
        L.m_sample = 2;
        L.m_step = 2 * B + 1;
        break;
    default:
        L = balm_seq_btd(T, B, D);
        L.x_step = D + 2;
        L.x_sample = T * (D + 2) + 7;
        L.m_step = 3;
        L.m_sample = 3 * T + 1;
        break;
    }
    return L;
}
static size_t x_span(const balm_seq *L)
{
    return (L->T - 1) * L->x_step + (L->B - 1) * L->x_sample + L->D;
}
static size_t m_span(const balm_seq *L)
{
    return (L->T - 1) * L->m_step + (L->B - 1) * L->m_sample + 1;
}

enum { MASK_ALL, MASK_NONE, MASK_FIRST, MASK_LAST, MASK_RANDOM, MASK_COUNT };
static const char *const MASK_NAMES[] = {"all", "none", "first", "last", "random"};
/* Mask values at (t, b); the gaps of a padded mask stay canaries. */
static void fill_mask(const balm_seq *L, float *m, int pat, rng *r)
{
    for (size_t t = 0; t < L->T; t++)
        for (size_t b = 0; b < L->B; b++) {
            float v;
            switch (pat) {
            case MASK_ALL: v = 1; break;
            case MASK_NONE: v = 0; break;
            case MASK_FIRST: v = t == 0; break;
            case MASK_LAST: v = t == L->T - 1; break;
            default: v = (rnext(r) >> 63) ? 1.0f : 0.0f; break;
            }
            m[t * L->m_step + b * L->m_sample] = v;
        }
}
static float mask_at(const balm_seq *L, const float *m, size_t t, size_t b)
{
    return m[t * L->m_step + b * L->m_sample];
}
/* Sequence data: random in [lo, hi] where present, NaN / +-Inf alternating
 * where masked (must never be read into a result); gaps stay canaries.
 * `bad_present` puts one NaN and one Inf at present positions. */
static void fill_seq(const balm_seq *L, const float *m, float *x, rng *r, float lo, float hi,
                     int bad_present)
{
    size_t k = 0;
    for (size_t t = 0; t < L->T; t++)
        for (size_t b = 0; b < L->B; b++) {
            float *row = x + t * L->x_step + b * L->x_sample;
            int present = mask_at(L, m, t, b) != 0.0f;
            for (size_t d = 0; d < L->D; d++, k++)
                row[d] = present ? runi(r, lo, hi) : (k % 3 == 0 ? NAN : (k % 3 == 1 ? INFINITY : -INFINITY));
            if (present && bad_present) {
                row[rnext(r) % L->D] = NAN;
                row[rnext(r) % L->D] = INFINITY;
                bad_present = 0;
            }
        }
}

/* Case description for failure messages. */
static char case_desc[200];
#define CASE(...) snprintf(case_desc, sizeof case_desc, __VA_ARGS__)

/* Elementwise comparison over a whole buffer (span, including the gaps of
 * padded layouts, which must hold the same canaries in both). */
static void compare_buf(const char *kernel, int isa, const fbuf *got, const fbuf *want,
                        const double *tol, size_t *nonzero)
{
    fb_check_guards(got, kernel);
    for (size_t i = 0; i < got->n; i++) {
        float g = got->p[i], w = want->p[i];
        if (is_canary(w) || is_canary(g)) {
            if (!(is_canary(w) && is_canary(g)))
                fail_msg("%s [%s] %s: element %zu written outside the layout or not written "
                         "(got %g, want %g)", kernel, balm_isa_name((balm_isa)isa), case_desc, i, g, w);
            continue;
        }
        if (!close_to(g, w, tol[i]))
            fail_msg("%s [%s] %s: element %zu got %.9g want %.9g (tol %.3g)", kernel,
                     balm_isa_name((balm_isa)isa), case_desc, i, g, w, tol[i]);
        if (g != 0.0f)
            (*nonzero)++;
    }
}

/* ------------------------------------------------------------ pooling */
static void test_pool(void **state)
{
    (void)state;
    rng r = {0x1234567ULL};
    size_t nonzero = 0, cases = 0;
    const size_t Ts[] = {1, 3, 7}, Bs[] = {1, 3};
    FOR_EACH_ISA(isa) {
        for (size_t si = 0; si < NSIZES; si++)
            for (size_t ti = 0; ti < 3; ti++)
                for (size_t bi = 0; bi < 2; bi++)
                    for (int lay = 0; lay < LAY_COUNT; lay++)
                        for (int mp = 0; mp < MASK_COUNT; mp++) {
                            size_t T = Ts[ti], B = Bs[bi], D = SIZES[si];
                            int mis = (int)((si + lay + mp) & 1);
                            int bad = mp == MASK_RANDOM && ti == 1;
                            balm_seq L = make_layout(lay, T, B, D);
                            CASE("T=%zu B=%zu D=%zu %s mask=%s mis=%d bad=%d", T, B, D, LAY_NAMES[lay],
                                 MASK_NAMES[mp], mis, bad);
                            fbuf m = fb_new(m_span(&L), mis), x = fb_new(x_span(&L), mis);
                            fill_mask(&L, m.p, mp, &r);
                            fill_seq(&L, m.p, x.p, &r, -3.0f, 3.0f, bad);
                            /* forward */
                            fbuf s = fb_new(B * D, mis), s_ref = fb_new(B * D, 0);
                            isa_tab[isa].pool_fwd(&L, x.p, m.p, s.p);
                            ref_tab.pool_fwd(&L, x.p, m.p, s_ref.p);
                            double *tol = calloc(x.n + B * D, sizeof(double));
                            assert_non_null(tol);
                            for (size_t b = 0; b < B; b++) {
                                double cnt = 0;
                                for (size_t t = 0; t < T; t++)
                                    cnt += mask_at(&L, m.p, t, b);
                                for (size_t d = 0; d < D; d++) {
                                    double mag = 0;
                                    for (size_t t = 0; t < T; t++)
                                        if (mask_at(&L, m.p, t, b) != 0.0f)
                                            mag += fabs(x.p[t * L.x_step + b * L.x_sample + d]);
                                    tol[b * D + d] = 2e-7 * mag / (cnt + 1e-8) + 1e-38;
                                }
                            }
                            compare_buf("pool_fwd", isa, &s, &s_ref, tol, &nonzero);
                            /* backward: ds random, both accumulate modes; dx
                             * prefilled with values (NaN at masked rows for
                             * accumulate = 1: they must stay untouched). */
                            fbuf ds = fb_new(B * D, mis);
                            for (size_t i = 0; i < B * D; i++)
                                ds.p[i] = runi(&r, -2.0f, 2.0f);
                            for (int acc = 0; acc < 2; acc++) {
                                fbuf dx0 = fb_new(x.n, mis);
                                fill_seq(&L, m.p, dx0.p, &r, -1.0f, 1.0f, 0);
                                fbuf dx = fb_clone(&dx0, mis), dx_ref = fb_clone(&dx0, 0);
                                isa_tab[isa].pool_bwd(&L, m.p, ds.p, dx.p, acc);
                                ref_tab.pool_bwd(&L, m.p, ds.p, dx_ref.p, acc);
                                for (size_t i = 0; i < x.n; i++)
                                    tol[i] = isfinite(dx_ref.p[i]) ? 2.5e-7 * (fabs(dx_ref.p[i]) +
                                             (acc && isfinite(dx0.p[i]) ? fabs(dx0.p[i]) : 0)) + 1e-38 : 0;
                                compare_buf(acc ? "pool_bwd(acc)" : "pool_bwd", isa, &dx, &dx_ref, tol, &nonzero);
                                /* Masked rows: exact zeros, or untouched. */
                                for (size_t t = 0; t < T; t++)
                                    for (size_t b = 0; b < B; b++)
                                        if (mask_at(&L, m.p, t, b) == 0.0f)
                                            for (size_t d = 0; d < D; d++) {
                                                size_t o = t * L.x_step + b * L.x_sample + d;
                                                if (acc ? memcmp(&dx.p[o], &dx0.p[o], 4) != 0
                                                        : (dx.p[o] != 0.0f || signbit(dx.p[o])))
                                                    fail_msg("pool_bwd [%s] %s acc=%d: masked (%zu,%zu,%zu) "
                                                             "got %g", balm_isa_name((balm_isa)isa), case_desc,
                                                             acc, t, b, d, dx.p[o]);
                                            }
                                fb_free(&dx0);
                                fb_free(&dx);
                                fb_free(&dx_ref);
                            }
                            free(tol);
                            fb_free(&ds);
                            fb_free(&s);
                            fb_free(&s_ref);
                            fb_free(&m);
                            fb_free(&x);
                            cases++;
                        }
    }
    printf("[ pool    ] %zu cases, %zu nonzero outputs compared\n", cases, nonzero);
    assert_true(nonzero > cases); /* guard against all-zero outputs */
}

/* ------------------------------------------------------------ gate */
static void test_gate(void **state)
{
    (void)state;
    rng r = {0xABCDEF01ULL};
    size_t nonzero = 0, cases = 0;
    /* T = 4: even step counts (kernels pair present steps); B = 11 with the
     * largest D: 45089 (b, d) pairs, more than one 32768-pair tile, with
     * tiles crossing samples. */
    const size_t Ts[] = {1, 3, 4, 7}, Bs[] = {1, 3, 11};
    FOR_EACH_ISA(isa) {
        for (size_t si = 0; si < NSIZES; si++)
            for (size_t ti = 0; ti < 4; ti++)
                for (size_t bi = 0; bi < 3; bi++)
                    for (int lay = 0; lay < LAY_COUNT; lay++)
                        for (int mp = 0; mp < MASK_COUNT; mp++) {
                            if (bi == 2 && (si + 1 != NSIZES || ti != 2))
                                continue; /* the multi-tile case: D = 4099, T = 4 */
                            size_t T = Ts[ti], B = Bs[bi], D = SIZES[si];
                            int mis = (int)((si + lay + mp + 1) & 1);
                            int bad = mp == MASK_RANDOM && ti == 1;
                            /* Every other case has saturated gates |e| in [40, 100]. */
                            int sat = (int)((si + ti + bi + lay) & 1);
                            balm_seq L = make_layout(lay, T, B, D);
                            CASE("T=%zu B=%zu D=%zu %s mask=%s mis=%d bad=%d sat=%d", T, B, D,
                                 LAY_NAMES[lay], MASK_NAMES[mp], mis, bad, sat);
                            fbuf m = fb_new(m_span(&L), mis), x = fb_new(x_span(&L), mis);
                            fbuf dy = fb_new(x_span(&L), mis), e = fb_new(B * D, mis);
                            fill_mask(&L, m.p, mp, &r);
                            fill_seq(&L, m.p, x.p, &r, -3.0f, 3.0f, bad);
                            fill_seq(&L, m.p, dy.p, &r, -2.0f, 2.0f, 0);
                            for (size_t i = 0; i < B * D; i++) {
                                float v = sat ? runi(&r, 40.0f, 100.0f) : runi(&r, -10.0f, 10.0f);
                                e.p[i] = sat && (i & 1) ? -v : v;
                            }
                            double *tol = calloc(x.n, sizeof(double));
                            assert_non_null(tol);
                            /* forward (y prefilled with canaries: gaps must stay) */
                            fbuf y = fb_new(x.n, mis), y_ref = fb_new(x.n, 0);
                            isa_tab[isa].gate_fwd(&L, x.p, m.p, e.p, y.p);
                            ref_tab.gate_fwd(&L, x.p, m.p, e.p, y_ref.p);
                            for (size_t i = 0; i < x.n; i++)
                                tol[i] = 5e-7 * fabs(y_ref.p[i]) + 0x1p-124 * finabs(x.p[i]);
                            compare_buf("gate_fwd", isa, &y, &y_ref, tol, &nonzero);
                            for (size_t t = 0; t < T; t++)
                                for (size_t b = 0; b < B; b++)
                                    if (mask_at(&L, m.p, t, b) == 0.0f)
                                        for (size_t d = 0; d < D; d++) {
                                            float v = y.p[t * L.x_step + b * L.x_sample + d];
                                            if (v != 0.0f || signbit(v))
                                                fail_msg("gate_fwd [%s] %s: masked output %g", balm_isa_name((balm_isa)isa), case_desc, v);
                                        }
                            /* in place: y aliasing x */
                            if (lay == LAY_TBD_PAD && mp == MASK_RANDOM) {
                                fbuf xi = fb_clone(&x, mis);
                                isa_tab[isa].gate_fwd(&L, xi.p, m.p, e.p, xi.p);
                                compare_buf("gate_fwd(in place)", isa, &xi, &y_ref, tol, &nonzero);
                                fb_free(&xi);
                            }
                            /* backward */
                            fbuf dx = fb_new(x.n, mis), dx_ref = fb_new(x.n, 0);
                            fbuf de = fb_new(B * D, mis), de_ref = fb_new(B * D, 0);
                            isa_tab[isa].gate_bwd(&L, x.p, m.p, e.p, dy.p, dx.p, de.p);
                            ref_tab.gate_bwd(&L, x.p, m.p, e.p, dy.p, dx_ref.p, de_ref.p);
                            for (size_t i = 0; i < x.n; i++)
                                tol[i] = 5e-7 * fabs(dx_ref.p[i]) + 0x1p-124 * finabs(dy.p[i]);
                            compare_buf("gate_bwd dx", isa, &dx, &dx_ref, tol, &nonzero);
                            double *tde = calloc(B * D, sizeof(double));
                            assert_non_null(tde);
                            for (size_t b = 0; b < B; b++)
                                for (size_t d = 0; d < D; d++) {
                                    double mag = 0, ev = e.p[b * D + d];
                                    for (size_t t = 0; t < T; t++)
                                        if (mask_at(&L, m.p, t, b) != 0.0f) {
                                            size_t o = t * L.x_step + b * L.x_sample + d;
                                            mag += fabs((double)dy.p[o] * x.p[o]);
                                        }
                                    double g = 2.0 / ((1.0 + exp(-ev)) * (1.0 + exp(ev)));
                                    tde[b * D + d] = isfinite(mag) ? mag * (1e-6 * g + 8.0 / 16777216.0) + 1e-40 : 0.0;
                                }
                            compare_buf("gate_bwd de", isa, &de, &de_ref, tde, &nonzero);
                            free(tde);
                            free(tol);
                            fb_free(&dx);
                            fb_free(&dx_ref);
                            fb_free(&de);
                            fb_free(&de_ref);
                            fb_free(&y);
                            fb_free(&y_ref);
                            fb_free(&m);
                            fb_free(&x);
                            fb_free(&dy);
                            fb_free(&e);
                            cases++;
                        }
    }
    printf("[ gate    ] %zu cases, %zu nonzero outputs compared\n", cases, nonzero);
    assert_true(nonzero > cases);
}

/* ------------------------------------------------------------ KL */
static void test_kl(void **state)
{
    (void)state;
    rng r = {0x5151ULL};
    size_t cases = 0, nonzero = 0;
    const size_t Cs[] = {1, 3, 6};
    FOR_EACH_ISA(isa) {
        for (size_t si = 0; si < NSIZES; si++)
            for (size_t ci = 0; ci < 3; ci++)
                for (int mis = 0; mis < 2; mis++)
                    for (int kind = 0; kind < 3; kind++) {
                        /* kind 0: softmax rows; 1: with zero p (logq -inf or
                         * NaN there); 2: one p > 0 with logq = -inf -> +inf */
                        size_t N = SIZES[si], C = Cs[ci], n = N * C;
                        CASE("N=%zu C=%zu mis=%d kind=%d", N, C, mis, kind);
                        fbuf p = fb_new(n, mis), lq = fb_new(n, mis);
                        for (size_t i = 0; i < N; i++) {
                            double zs = 0, zq = 0, a[6], c[6];
                            for (size_t j = 0; j < C; j++) {
                                a[j] = exp(runi(&r, -4, 4));
                                c[j] = exp(runi(&r, -4, 4));
                                zs += a[j];
                                zq += c[j];
                            }
                            for (size_t j = 0; j < C; j++) {
                                p.p[i * C + j] = (float)(a[j] / zs);
                                lq.p[i * C + j] = (float)log(c[j] / zq);
                                if (kind >= 1 && (rnext(&r) & 3) == 0) {
                                    p.p[i * C + j] = 0.0f;
                                    lq.p[i * C + j] = (rnext(&r) & 1) ? -INFINITY : -1e30f;
                                }
                            }
                        }
                        if (kind == 2) {
                            p.p[n / 2] = 0.25f;
                            lq.p[n / 2] = -INFINITY;
                        }
                        double got = isa_tab[isa].kl_cls_sum(N, C, p.p, lq.p);
                        double want = ref_tab.kl_cls_sum(N, C, p.p, lq.p);
                        double mag = 0;
                        for (size_t i = 0; i < n; i++)
                            if (p.p[i] != 0.0f && isfinite(lq.p[i]))
                                mag += p.p[i] * (fabs(log(p.p[i])) + fabs(lq.p[i]));
                        if (!close_to_d(got, want, 1e-6 * mag + 1e-30) ||
                            (isfinite(want) && fabs(want) > 1e-2 * mag && fabs(got - want) > 1e-5 * fabs(want)))
                            fail_msg("kl_cls_sum [%s] %s: got %.12g want %.12g (mag %.3g)",
                                     balm_isa_name((balm_isa)isa), case_desc, got, want, mag);
                        nonzero += got != 0;
                        fb_check_guards(&p, "kl_cls p");
                        fb_free(&p);
                        fb_free(&lq);
                        cases++;
                    }
        /* regression KL: moderate, extreme (|f|, |u| >= 60) and mixed */
        for (size_t si = 0; si < NSIZES; si++)
            for (int mis = 0; mis < 2; mis++)
                for (int kind = 0; kind < 3; kind++) {
                    size_t N = SIZES[si];
                    CASE("N=%zu mis=%d kind=%d", N, mis, kind);
                    fbuf f = fb_new(N, mis), u = fb_new(N, mis);
                    double mag = 0;
                    for (size_t i = 0; i < N; i++) {
                        float scale = kind == 0 ? 4.0f : (kind == 1 ? 100.0f : ((i & 3) ? 3.0f : 80.0f));
                        f.p[i] = runi(&r, -scale, scale);
                        u.p[i] = runi(&r, -scale, scale);
                        if (kind == 1 && (i & 1))
                            f.p[i] = (i & 2) ? 100.0f : -100.0f;
                        mag += fabs(f.p[i]) + fabs(u.p[i]) + 2.0;
                    }
                    double got = isa_tab[isa].kl_reg_sum(N, f.p, u.p);
                    double want = ref_tab.kl_reg_sum(N, f.p, u.p);
                    if (!isfinite(got) || fabs(got - want) > 1e-6 * mag ||
                        (fabs(want) > 1e-2 * mag && fabs(got - want) > 1e-5 * fabs(want)))
                        fail_msg("kl_reg_sum [%s] %s: got %.12g want %.12g (mag %.3g)",
                                 balm_isa_name((balm_isa)isa), case_desc, got, want, mag);
                    nonzero += got != 0;
                    fb_free(&f);
                    fb_free(&u);
                    cases++;
                }
    }
    printf("[ kl      ] %zu cases\n", cases);
    assert_true(nonzero > cases / 2);
}

/* ------------------------------------------------------------ cosine */
static void test_cos(void **state)
{
    (void)state;
    rng r = {0x777ULL};
    size_t cases = 0, nonzero = 0;
    const size_t Ms[] = {1, 3, 8};
    FOR_EACH_ISA(isa) {
        for (size_t si = 0; si < NSIZES; si++)
            for (int mis = 0; mis < 2; mis++) {
                size_t n = SIZES[si] * (si == NSIZES - 1 ? 5 : 1); /* + a 20495 case */
                CASE("n=%zu mis=%d", n, mis);
                fbuf w = fb_new(n, mis), wf = fb_new(n, !mis);
                double mag[3] = {0, 0, 0};
                for (size_t i = 0; i < n; i++) {
                    w.p[i] = runi(&r, -1, 1);
                    wf.p[i] = runi(&r, -1, 1) + 0.1f;
                    mag[0] += fabs((double)w.p[i] * wf.p[i]);
                    mag[1] += (double)w.p[i] * w.p[i];
                    mag[2] += (double)wf.p[i] * wf.p[i];
                }
                double got[3], want[3];
                isa_tab[isa].dot_norms(n, w.p, wf.p, got);
                ref_tab.dot_norms(n, w.p, wf.p, want);
                for (int k = 0; k < 3; k++)
                    if (!(fabs(got[k] - want[k]) <= 1e-6 * mag[k]))
                        fail_msg("dot_norms [%s] %s: out[%d] got %.12g want %.12g",
                                 balm_isa_name((balm_isa)isa), case_desc, k, got[k], want[k]);
                nonzero += got[0] != 0;
                /* combine */
                for (size_t mi = 0; mi < 3; mi++)
                    for (int acc = 0; acc < 2; acc++) {
                        size_t M = Ms[mi];
                        fbuf ws[8];
                        const float *wp[8];
                        float a[8];
                        for (size_t k = 0; k < M; k++) {
                            ws[k] = fb_new(n, (int)(k + mis) & 1);
                            for (size_t i = 0; i < n; i++)
                                ws[k].p[i] = runi(&r, -1, 1);
                            wp[k] = ws[k].p;
                            a[k] = runi(&r, -2, 2);
                        }
                        float b = runi(&r, -2, 2);
                        fbuf d0 = fb_new(n, mis);
                        for (size_t i = 0; i < n; i++)
                            d0.p[i] = runi(&r, -1, 1);
                        fbuf d = fb_clone(&d0, mis), dr = fb_clone(&d0, 0);
                        isa_tab[isa].combine(n, M, wp, a, wf.p, b, d.p, acc);
                        ref_tab.combine(n, M, wp, a, wf.p, b, dr.p, acc);
                        double *tol = malloc(n * sizeof(double));
                        assert_non_null(tol);
                        for (size_t i = 0; i < n; i++) {
                            double mg = fabs((double)b * wf.p[i]) + (acc ? fabs(d0.p[i]) : 0);
                            for (size_t k = 0; k < M; k++)
                                mg += fabs((double)a[k] * wp[k][i]);
                            tol[i] = 2e-7 * mg * (double)(M + 2) + 1e-38;
                        }
                        CASE("n=%zu mis=%d M=%zu acc=%d", n, mis, M, acc);
                        compare_buf("combine", isa, &d, &dr, tol, &nonzero);
                        free(tol);
                        for (size_t k = 0; k < M; k++)
                            fb_free(&ws[k]);
                        fb_free(&d0);
                        fb_free(&d);
                        fb_free(&dr);
                    }
                fb_free(&w);
                fb_free(&wf);
                cases++;
            }
    }
    printf("[ cos     ] %zu cases\n", cases);
    assert_true(nonzero >= cases);
}

/* ------------------------------------------------------------ grad */
static void test_grad(void **state)
{
    (void)state;
    rng r = {0x31415ULL};
    size_t cases = 0, nonzero = 0;
    const uint64_t offsets[] = {0, 1, 2, 3, 5, 4ULL * 0xFFFFFFFFULL - 6}; /* last: counter carry */
    FOR_EACH_ISA(isa) {
        for (size_t si = 0; si < NSIZES; si++)
            for (int mis = 0; mis < 2; mis++) {
                size_t n = SIZES[si];
                CASE("n=%zu mis=%d", n, mis);
                fbuf x0 = fb_new(n, mis);
                double mag[2] = {0, 0};
                for (size_t i = 0; i < n; i++) {
                    x0.p[i] = runi(&r, -2, 2) + (mis ? 100.0f : 0.0f); /* large mean too */
                    mag[0] += fabs(x0.p[i]);
                    mag[1] += (double)x0.p[i] * x0.p[i];
                }
                /* sums */
                double got[2], want[2];
                isa_tab[isa].sums(n, x0.p, got);
                ref_tab.sums(n, x0.p, want);
                for (int k = 0; k < 2; k++)
                    if (!(fabs(got[k] - want[k]) <= 1e-6 * mag[k]))
                        fail_msg("sums [%s] %s: out[%d] got %.15g want %.15g",
                                 balm_isa_name((balm_isa)isa), case_desc, k, got[k], want[k]);
                /* scale: one rounding per element, bit-identical */
                fbuf x = fb_clone(&x0, mis), xr = fb_clone(&x0, 0);
                isa_tab[isa].scale(n, x.p, -1.37f);
                ref_tab.scale(n, xr.p, -1.37f);
                double *tol = calloc(n, sizeof(double));
                assert_non_null(tol);
                compare_buf("scale", isa, &x, &xr, tol, &nonzero);
                fb_free(&x);
                fb_free(&xr);
                /* noise: normals alone (x = 0, alpha = 1, sd = 1), then a
                 * scaled, noised gradient */
                for (size_t oi = 0; oi < sizeof offsets / sizeof offsets[0]; oi++)
                    for (int mode = 0; mode < 2; mode++) {
                        uint64_t seed = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(si * 31 + oi);
                        float alpha = mode ? 0.7f : 1.0f, sd = mode ? 0.3f : 1.0f;
                        fbuf z = fb_new(n, mis), zr = fb_new(n, 0);
                        for (size_t i = 0; i < n; i++)
                            z.p[i] = zr.p[i] = mode ? x0.p[i] - (mis ? 100.0f : 0.0f) : 0.0f;
                        isa_tab[isa].scale_noise(n, z.p, alpha, sd, seed, offsets[oi]);
                        ref_tab.scale_noise(n, zr.p, alpha, sd, seed, offsets[oi]);
                        double s1 = 0, s2 = 0;
                        for (size_t i = 0; i < n; i++) {
                            double xa = mode ? fabs((double)(x0.p[i] - (mis ? 100.0f : 0.0f)) * alpha) : 0;
                            double zv = mode ? fabs(zr.p[i] - xa) / sd : fabs(zr.p[i]);
                            tol[i] = 1e-5 * (xa + sd * fmax(1.0, zv));
                            s1 += z.p[i];
                            s2 += (double)z.p[i] * z.p[i];
                        }
                        CASE("n=%zu mis=%d offset=%llu mode=%d", n, mis, (unsigned long long)offsets[oi], mode);
                        compare_buf("scale_noise", isa, &z, &zr, tol, &nonzero);
                        if (!mode && n >= 4099) {
                            /* The normals look normal: mean ~ 0, var ~ 1. */
                            double mean = s1 / n, var = s2 / n - mean * mean;
                            if (fabs(mean) > 0.1 || fabs(var - 1) > 0.1)
                                fail_msg("scale_noise [%s]: mean %g var %g", balm_isa_name((balm_isa)isa), mean, var);
                        }
                        fb_free(&z);
                        fb_free(&zr);
                    }
                free(tol);
                fb_free(&x0);
                cases++;
            }
    }
    printf("[ grad    ] %zu cases\n", cases);
    assert_true(nonzero > cases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool), cmocka_unit_test(test_gate), cmocka_unit_test(test_kl),
        cmocka_unit_test(test_cos), cmocka_unit_test(test_grad),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
