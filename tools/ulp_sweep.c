/* ulp_sweep: accuracy of the AVX2 vector math against a double reference.
 *
 *   ulp_sweep            every 97th float bit pattern (44M inputs per function)
 *   ulp_sweep --step N   every Nth bit pattern
 *   ulp_sweep --full     all 2^32 floats (a few minutes per function)
 *
 * For each function it prints the largest error in ulp of the correctly
 * rounded float result (2^-149 for denormal results) and the input where it
 * occurs. A result whose class differs from the reference (NaN, +-inf where
 * the rounded reference is finite or the other way round) counts as a
 * failure. sin/cos of 2 pi u are swept over all 2^23 Philox uniforms
 * (2j+1)/2^24 and reported as absolute error. Exit status 1 when a bound of
 * issue 6 is exceeded (exp 2, log 4, sigmoid 2, log-sigmoid 4 ulp, sincos
 * 1e-6 absolute) or a special value is wrong; 2 without AVX2. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balm/balm.h"
#include "x86/vecmath_avx2.h"

typedef void (*vfun)(size_t, const float *, float *);

static double ref_exp(double x) { return exp(x); }
static double ref_log(double x) { return log(x); }
static double ref_sigmoid(double x)
{
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}
static double ref_logsigmoid(double x) { return fmin(x, 0.0) - log1p(exp(-fabs(x))); }

/* Size of one ulp at the float nearest to y (finite). */
static double ulp_of(float y)
{
    y = fabsf(y);
    if (y < FLT_MIN)
        return ldexp(1.0, -149);
    return ldexp(1.0, ilogbf(y) - 23);
}

struct fn {
    const char *name;
    vfun f;
    double (*ref)(double);
    double bound;
    double max_ulp;
    float worst_x;
    uint64_t bad;   /* wrong special-value class */
    float bad_x;
};

#define BATCH 4096

static void sweep(struct fn *F, uint64_t step)
{
    static float x[BATCH], y[BATCH];
    size_t k = 0;
    for (uint64_t b = 0; b <= 0xFFFFFFFFu; b += step) {
        uint32_t bits = (uint32_t)b;
        memcpy(&x[k++], &bits, 4);
        if (k == BATCH || b + step > 0xFFFFFFFFu) {
            F->f(k, x, y);
            for (size_t i = 0; i < k; i++) {
                double r = F->ref((double)x[i]);
                float rf = (float)r;
                int ok_class = (isnan(rf) && isnan(y[i])) || (isinf(rf) && y[i] == rf) ||
                               (isfinite(rf) && isfinite(y[i]));
                if (!ok_class) {
                    if (!F->bad)
                        F->bad_x = x[i];
                    F->bad++;
                    continue;
                }
                if (!isfinite(rf))
                    continue;
                double e = fabs((double)y[i] - r) / ulp_of(rf);
                if (e > F->max_ulp) {
                    F->max_ulp = e;
                    F->worst_x = x[i];
                }
            }
            k = 0;
        }
    }
}

/* Fixed special inputs, checked exactly. */
static int specials(void)
{
    int fail = 0;
    const float in[] = {-INFINITY, INFINITY, NAN, 0.0f, -0.0f, 100.0f, -100.0f, 88.72f, 88.8f,
                        -87.5f, -103.9f, -104.5f, 1e-45f};
    float e[13], l[13], s[13], ls[13];
    size_t n = sizeof in / sizeof in[0];
    balm_vexp_f32_avx2(n, in, e);
    balm_vlog_f32_avx2(n, in, l);
    balm_vsigmoid_f32_avx2(n, in, s);
    balm_vlogsigmoid_f32_avx2(n, in, ls);
#define CHECK(c, msg)                                                          \
    do {                                                                       \
        if (!(c)) {                                                            \
            printf("special value wrong: %s\n", msg);                          \
            fail = 1;                                                          \
        }                                                                      \
    } while (0)
    CHECK(e[0] == 0.0f && e[1] == INFINITY && isnan(e[2]) && e[3] == 1.0f, "exp(-inf, inf, nan, 0)");
    CHECK(e[8] == INFINITY && isfinite(e[7]) && e[11] == 0.0f && e[10] > 0.0f, "exp overflow/underflow edges");
    CHECK(isnan(l[0]) && l[1] == INFINITY && isnan(l[2]) && l[3] == -INFINITY && l[4] == -INFINITY,
          "log(-inf, inf, nan, 0, -0)");
    CHECK(fabs(l[12] - log((double)in[12])) < 2e-5, "log(denormal)");
    CHECK(s[0] == 0.0f && s[1] == 1.0f && isnan(s[2]) && s[3] == 0.5f, "sigmoid(-inf, inf, nan, 0)");
    CHECK(s[5] == 1.0f && s[6] > 0.0f && isfinite(s[6]), "sigmoid(+-100)");
    CHECK(ls[0] == -INFINITY && ls[1] == 0.0f && isnan(ls[2]), "logsigmoid(-inf, inf, nan)");
    CHECK(ls[6] == -100.0f && ls[5] < 0.0f && ls[5] > -1e-43f, "logsigmoid(+-100)");
#undef CHECK
    return fail;
}

int main(int argc, char **argv)
{
    uint64_t step = 97;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--full"))
            step = 1;
        else if (!strcmp(argv[i], "--step") && i + 1 < argc)
            step = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--full | --step N]\n", argv[0]);
            return 2;
        }
    }
    if (step == 0)
        step = 1;
    if (!balm_isa_supported(BALM_ISA_AVX2)) {
        printf("ulp_sweep: AVX2 not supported here, nothing to measure\n");
        return 2;
    }
    struct fn fns[] = {
        {"exp", balm_vexp_f32_avx2, ref_exp, 2, 0, 0, 0, 0},
        {"log", balm_vlog_f32_avx2, ref_log, 4, 0, 0, 0, 0},
        {"sigmoid", balm_vsigmoid_f32_avx2, ref_sigmoid, 2, 0, 0, 0, 0},
        {"log_sigmoid", balm_vlogsigmoid_f32_avx2, ref_logsigmoid, 4, 0, 0, 0, 0},
    };
    int fail = specials();
    printf("inputs: every %llu-th float bit pattern (%llu per function)\n",
           (unsigned long long)step, (unsigned long long)((0xFFFFFFFFull / step) + 1));
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        struct fn *F = &fns[i];
        sweep(F, step);
        printf("%-12s max %.3f ulp at x = %a (%.9g)", F->name, F->max_ulp, F->worst_x, F->worst_x);
        if (F->bad)
            printf("; %llu wrong special values, first at %a", (unsigned long long)F->bad, F->bad_x);
        printf("  [bound %.0f]\n", F->bound);
        if (F->max_ulp > F->bound || F->bad)
            fail = 1;
    }
    /* sin/cos of 2 pi u over every uniform the noise kernel can draw. */
    enum { NU = 1 << 23 };
    float *u = malloc(sizeof(float) * NU * 3);
    if (!u)
        return 2;
    float *s = u + NU, *c = u + 2 * NU;
    for (uint32_t j = 0; j < NU; j++)
        u[j] = (float)(2 * j + 1) * (1.0f / 16777216.0f);
    balm_vsincos2pi_f32_avx2(NU, u, s, c);
    double es = 0, ec = 0;
    for (uint32_t j = 0; j < NU; j++) {
        double a = 6.283185307179586 * (double)u[j];
        es = fmax(es, fabs(s[j] - sin(a)));
        ec = fmax(ec, fabs(c[j] - cos(a)));
    }
    free(u);
    printf("sincos_2pi   max abs error sin %.3g cos %.3g over 2^23 uniforms  [bound 1e-6]\n", es, ec);
    if (es > 1e-6 || ec > 1e-6)
        fail = 1;
    printf("%s\n", fail ? "FAIL" : "ok");
    return fail;
}
