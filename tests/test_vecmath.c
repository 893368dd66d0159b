/* The AVX2 vector math (kernels/x86/vecmath_avx2.h) against double
 * precision, through its array entry points. Skipped where AVX2 is not
 * supported or not built. The full sweep is tools/ulp_sweep --full.
 *
 * Tolerances (ulp of the correctly rounded float result; 2^-149 for denormal
 * results): exp <= 2, log <= 4, sigmoid <= 2, log-sigmoid <= 4 (the issue's
 * bounds; measured maxima are in vecmath_avx2.h), sin/cos of 2 pi u <= 1e-6
 * absolute. Special values exactly. Philox uniforms bit-equal to
 * balm_uniform. */
#include <float.h>
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

#if defined(BALM_HAVE_AVX2)
#include "x86/vecmath_avx2.h"

static void need_avx2(void)
{
    if (!balm_isa_supported(BALM_ISA_AVX2))
        skip();
}

static double ulp_of(float y)
{
    y = fabsf(y);
    return y < FLT_MIN ? ldexp(1.0, -149) : ldexp(1.0, ilogbf(y) - 23);
}

static double ref_sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
static double ref_logsigmoid(double x) { return fmin(x, 0.0) - log1p(exp(-fabs(x))); }

typedef void (*vfun)(size_t, const float *, float *);

/* Max ulp error over every 65521st float bit pattern plus a dense grid in
 * the range that matters most ([-110, 110]). */
static double max_ulp(vfun f, double (*ref)(double), const char *name)
{
    enum { N = 4096 };
    static float x[N], y[N];
    double worst = 0;
    float worst_x = 0;
    size_t k = 0, total = 0;
    uint64_t b = 0;
    int phase = 0;
    for (;;) {
        if (phase == 0) {
            uint32_t bits = (uint32_t)b;
            memcpy(&x[k++], &bits, 4);
            b += 65521;
            if (b > 0xFFFFFFFFu) {
                phase = 1;
                b = 0;
            }
        } else {
            x[k++] = -110.0f + 220.0f * (float)b / 200000.0f;
            if (++b > 200000)
                phase = 2;
        }
        if (k == N || phase == 2) {
            f(k, x, y);
            for (size_t i = 0; i < k; i++) {
                double r = ref((double)x[i]);
                float rf = (float)r;
                if (!isfinite(rf)) {
                    if (!((isnan(rf) && isnan(y[i])) || y[i] == rf))
                        fail_msg("%s(%a) = %a, want %a", name, x[i], y[i], rf);
                    continue;
                }
                if (!isfinite(y[i]))
                    fail_msg("%s(%a) = %a, want %a", name, x[i], y[i], rf);
                double e = fabs(y[i] - r) / ulp_of(rf);
                if (e > worst) {
                    worst = e;
                    worst_x = x[i];
                }
            }
            total += k;
            k = 0;
            if (phase == 2)
                break;
        }
    }
    printf("[ %-11s] max %.3f ulp at %a over %zu inputs\n", name, worst, worst_x, total);
    return worst;
}

static void test_exp(void **s)
{
    (void)s;
    need_avx2();
    assert_true(max_ulp(balm_vexp_f32_avx2, exp, "exp") <= 2.0);
}
static void test_log(void **s)
{
    (void)s;
    need_avx2();
    assert_true(max_ulp(balm_vlog_f32_avx2, log, "log") <= 4.0);
}
static void test_sigmoid(void **s)
{
    (void)s;
    need_avx2();
    assert_true(max_ulp(balm_vsigmoid_f32_avx2, ref_sigmoid, "sigmoid") <= 2.0);
}
static void test_logsigmoid(void **s)
{
    (void)s;
    need_avx2();
    assert_true(max_ulp(balm_vlogsigmoid_f32_avx2, ref_logsigmoid, "log_sigmoid") <= 4.0);
}

static void test_specials(void **st)
{
    (void)st;
    need_avx2();
    const float in[] = {-INFINITY, INFINITY, NAN, 0.0f, -0.0f, 100.0f, -100.0f,
                        88.72f, 88.8f, -87.5f, -103.9f, -104.5f, 0x1p-149f};
    enum { N = sizeof in / sizeof in[0] };
    float e[N], l[N], s[N], ls[N];
    balm_vexp_f32_avx2(N, in, e);
    balm_vlog_f32_avx2(N, in, l);
    balm_vsigmoid_f32_avx2(N, in, s);
    balm_vlogsigmoid_f32_avx2(N, in, ls);
    assert_true(e[0] == 0.0f && e[1] == INFINITY && isnan(e[2]) && e[3] == 1.0f && e[4] == 1.0f);
    assert_true(isfinite(e[7]) && e[8] == INFINITY);      /* overflow edge */
    assert_true(e[9] > 0 && e[10] > 0 && e[11] == 0.0f); /* denormal results, then 0 */
    assert_true(fabs(e[10] - exp(-103.9)) <= ldexp(1.0, -149));
    assert_true(isnan(l[0]) && l[1] == INFINITY && isnan(l[2]) && l[3] == -INFINITY && l[4] == -INFINITY);
    assert_true(fabs(l[12] - log(0x1p-149)) < 2e-5);
    assert_true(s[0] == 0.0f && s[1] == 1.0f && isnan(s[2]) && s[3] == 0.5f && s[4] == 0.5f);
    assert_true(s[5] == 1.0f && s[6] > 0.0f && fabs(s[6] - exp(-100.0)) <= ldexp(1.0, -149));
    assert_true(ls[0] == -INFINITY && ls[1] == 0.0f && isnan(ls[2]));
    assert_true(ls[6] == -100.0f && ls[5] < 0.0f && fabs(ls[5] + exp(-100.0)) <= ldexp(1.0, -149));
    assert_true(fabsf(ls[3] + 0.69314718f) <= 1e-7f);
}

/* Tails: every n from 1 to 17, no write past y[n-1]. */
static void test_tails(void **st)
{
    (void)st;
    need_avx2();
    float x[32], y[32];
    for (int i = 0; i < 32; i++)
        x[i] = (float)i * 0.25f - 2.0f;
    for (size_t n = 1; n <= 17; n++) {
        for (int i = 0; i < 32; i++)
            y[i] = 12345.0f;
        balm_vexp_f32_avx2(n, x + 1, y + 1);
        assert_true(y[0] == 12345.0f);
        for (size_t i = 0; i < n; i++)
            assert_true(fabs(y[1 + i] - exp((double)x[1 + i])) <= 2 * ulp_of(y[1 + i]));
        for (size_t i = n + 1; i < 32; i++)
            assert_true(y[i] == 12345.0f);
    }
}

static void test_sincos(void **st)
{
    (void)st;
    need_avx2();
    enum { N = 1 << 16 };
    float *u = malloc(3 * N * sizeof(float));
    assert_non_null(u);
    float *sn = u + N, *cs = u + 2 * N;
    /* Every 128th uniform of the 2^23 the generator can draw, plus the ends. */
    for (uint32_t j = 0; j < N; j++)
        u[j] = (float)(2 * (j * 128u) + 1) * (1.0f / 16777216.0f);
    u[N - 1] = (float)(2 * ((1u << 23) - 1) + 1) * (1.0f / 16777216.0f);
    balm_vsincos2pi_f32_avx2(N, u, sn, cs);
    double es = 0, ec = 0;
    for (uint32_t j = 0; j < N; j++) {
        double a = 6.283185307179586 * u[j];
        es = fmax(es, fabs(sn[j] - sin(a)));
        ec = fmax(ec, fabs(cs[j] - cos(a)));
    }
    printf("[ sincos_2pi ] max abs error sin %.3g cos %.3g\n", es, ec);
    free(u);
    assert_true(es <= 1e-6 && ec <= 1e-6);
}

/* The vector Philox stream equals balm_uniform bit for bit, for offsets
 * that are not multiples of 4 and across the 32-bit counter carry. */
static void test_uniforms(void **st)
{
    (void)st;
    need_avx2();
    const uint64_t seeds[] = {0, 1, 0xDEADBEEFCAFEF00DULL};
    const uint64_t offs[] = {0, 1, 2, 3, 7, 4ULL * 0xFFFFFFFFULL - 9, UINT64_MAX - 200};
    float got[101];
    size_t checked = 0;
    for (size_t si = 0; si < 3; si++)
        for (size_t oi = 0; oi < sizeof offs / sizeof offs[0]; oi++)
            for (size_t n = 1; n <= 101; n += 10) {
                balm_vuniform_f32_avx2(seeds[si], offs[oi], n, got);
                for (size_t i = 0; i < n; i++) {
                    float want = balm_uniform(seeds[si], offs[oi] + i);
                    if (memcmp(&got[i], &want, 4) != 0)
                        fail_msg("uniform seed %llu k %llu: got %a want %a",
                                 (unsigned long long)seeds[si], (unsigned long long)(offs[oi] + i),
                                 got[i], want);
                    assert_true(got[i] > 0.0f && got[i] < 1.0f);
                    checked++;
                }
            }
    printf("[ uniforms   ] %zu bit-equal\n", checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_specials), cmocka_unit_test(test_tails),
        cmocka_unit_test(test_exp),      cmocka_unit_test(test_log),
        cmocka_unit_test(test_sigmoid),  cmocka_unit_test(test_logsigmoid),
        cmocka_unit_test(test_sincos),   cmocka_unit_test(test_uniforms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* no AVX2 kernels in this build (ARM, or another compiler setup) */
static void test_none(void **s)
{
    (void)s;
    skip();
}
int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_none)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
