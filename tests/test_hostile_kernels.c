/* Hostile inputs to the public kernels, beyond test_api_errors: mask values
 * that are almost 0 or 1, bad masks hidden in SIMD tails, layouts whose
 * products or extents overflow, strides that overlap in each direction,
 * outputs aliasing inputs by one element, NaN/Inf where they must be refused
 * and where they must be ignored (masked positions). Every refusal must give
 * its specific status, a message naming the function and the place, and
 * leave every output untouched (checked against a sentinel on the whole
 * buffer, with guard zones around it).
 *
 * Each case prints one line "hostile: <case> -> <status>: <message>" so the
 * run's log lists every bad input and the library's answer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "balm/balm.h"

#define SENT 12345.0f
#define N_BUF 4096
/* Outputs live in the middle of a guarded buffer: a write anywhere is seen. */
static float outbuf[N_BUF + 128];
static float *const out = outbuf + 64;
static float x[N_BUF], m[N_BUF], e[N_BUF], dy[N_BUF];

static void reset(void)
{
    for (size_t i = 0; i < sizeof outbuf / sizeof outbuf[0]; i++)
        outbuf[i] = SENT;
    for (int i = 0; i < N_BUF; i++) {
        x[i] = 0.01f * (float)(i % 97) - 0.3f;
        e[i] = 0.02f * (float)(i % 31) - 0.3f;
        dy[i] = 1.0f - 0.001f * (float)(i % 53);
        m[i] = (i % 5 == 3) ? 0.0f : 1.0f;
    }
}

static void untouched(void)
{
    for (size_t i = 0; i < sizeof outbuf / sizeof outbuf[0]; i++)
        if (outbuf[i] != SENT)
            fail_msg("output written at offset %td after a refused call", (ptrdiff_t)i - 64);
}

static void report(const char *what, balm_status st)
{
    printf("hostile: %s -> %s: %s\n", what, balm_status_str(st),
           st == BALM_OK ? "(accepted)" : balm_last_error());
}

/* A refused call: status, message fragments, and untouched outputs. The
 * call is evaluated after reset(), so it sees fresh inputs. */
#define REFUSE(what, call, status, needle1, needle2)                                        \
    do {                                                                                    \
        balm_status st_ = (call);                                                           \
        report(what, st_);                                                                  \
        assert_int_equal(st_, (status));                                                    \
        untouched();                                                                        \
        assert_non_null(strstr(balm_last_error(), (needle1)));                              \
        assert_non_null(strstr(balm_last_error(), (needle2)));                              \
    } while (0)

/* ------------------------------------------------------------------ masks */

static void test_mask_values(void **state)
{
    (void)state;
    static const struct {
        float v;
        const char *name;
    } bad[] = {
        {0.5f, "0.5"},
        {2.0f, "2"},
        {-1.0f, "-1"},
        {0x1.fffffep-1f, "1 - 2^-24 (one ulp below 1)"},
        {0x1.000002p0f, "1 + 2^-23 (one ulp above 1)"},
        {0x1p-149f, "the smallest denormal"},
        {-0x1p-149f, "minus the smallest denormal"},
        {INFINITY, "+inf"},
        {-INFINITY, "-inf"},
        {NAN, "NaN"},
    };
    /* B*T = 37*3 mask entries: the bad one at the first, a middle and the
     * last position, so SIMD bodies and scalar tails are both exercised. */
    const size_t T = 37, B = 3, D = 19;
    balm_seq L = balm_seq_tbd(T, B, D);
    const size_t where[3] = {0, 50, T * B - 1};
    char what[160];
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        for (size_t w = 0; w < 3; w++) {
            size_t i = where[w];
            char place[48];
            snprintf(place, sizeof place, "[t=%zu][b=%zu]", i / B, i % B);
            snprintf(what, sizeof what, "pool_fwd mask %s at %s", bad[k].name, place);
            reset();
            m[i] = bad[k].v;
            REFUSE(what, balm_pool_fwd(&L, x, m, out), BALM_ERR_MASK, "balm_pool_fwd", place);
            reset();
            m[i] = bad[k].v;
            snprintf(what, sizeof what, "gate_fwd mask %s at %s", bad[k].name, place);
            REFUSE(what, balm_gate_fwd(&L, x, m, e, out), BALM_ERR_MASK, "balm_gate_fwd", place);
            reset();
            m[i] = bad[k].v;
            snprintf(what, sizeof what, "gate_bwd mask %s at %s", bad[k].name, place);
            REFUSE(what, balm_gate_bwd(&L, x, m, e, dy, out, out + T * B * D), BALM_ERR_MASK,
                   "balm_gate_bwd", place);
            reset();
            m[i] = bad[k].v;
            snprintf(what, sizeof what, "pool_bwd mask %s at %s", bad[k].name, place);
            REFUSE(what, balm_pool_bwd(&L, m, e, out, 1), BALM_ERR_MASK, "balm_pool_bwd", place);
        }
    /* Sample-major: the message gives the (t, b) of the value, not its offset. */
    balm_seq S = balm_seq_btd(T, B, D);
    reset();
    m[2 * T + 5] = 0.5f; /* b = 2, t = 5 */
    REFUSE("pool_fwd [B][T] mask 0.5 at t=5 b=2", balm_pool_fwd(&S, x, m, out), BALM_ERR_MASK,
           "[t=5][b=2]", "0.5");
}

/* -0.0f compares equal to 0.0f: it is a valid "missing" (IEEE equality is
 * what the header's "exactly 0.0f" means); the output there is exactly 0. */
static void test_mask_negative_zero(void **state)
{
    (void)state;
    balm_seq L = balm_seq_tbd(4, 2, 8);
    reset();
    m[3] = -0.0f;
    x[3 * 8 + 1] = NAN; /* masked: must be ignored */
    balm_status st = balm_gate_fwd(&L, x, m, e, out);
    report("gate_fwd mask -0.0 with NaN data under it", st);
    assert_int_equal(st, BALM_OK);
    for (int d = 0; d < 8; d++)
        assert_true(out[3 * 8 + d] == 0.0f);
}

/* "Where the mask is 0 the data is never used": NaN and Inf there must not
 * leak into any output. */
static void test_masked_nonfinite_ignored(void **state)
{
    (void)state;
    const size_t T = 9, B = 3, D = 21;
    balm_seq L = balm_seq_tbd(T, B, D);
    reset();
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            if (m[t * B + b] == 0.0f)
                for (size_t d = 0; d < D; d++) {
                    x[(t * B + b) * D + d] = (d % 2) ? NAN : INFINITY;
                    dy[(t * B + b) * D + d] = -INFINITY;
                }
    float s[B * D], y[T * B * D], dx[T * B * D], de[B * D];
    assert_int_equal(balm_pool_fwd(&L, x, m, s), BALM_OK);
    assert_int_equal(balm_gate_fwd(&L, x, m, e, y), BALM_OK);
    assert_int_equal(balm_gate_bwd(&L, x, m, e, dy, dx, de), BALM_OK);
    for (size_t i = 0; i < B * D; i++)
        assert_true(isfinite(s[i]) && isfinite(de[i]));
    for (size_t i = 0; i < T * B * D; i++) {
        assert_true(isfinite(y[i]) && isfinite(dx[i]));
        if (m[i / D] == 0.0f)
            assert_true(y[i] == 0.0f && dx[i] == 0.0f);
    }
    report("pool/gate with NaN/Inf data and dy under every masked step", BALM_OK);
}

/* ------------------------------------------------------------ sizes */

static void test_huge_sizes(void **state)
{
    (void)state;
    balm_seq L;
    reset();
    L = balm_seq_tbd(2, 2, 4);
    L.B = SIZE_MAX;
    REFUSE("pool_fwd B = SIZE_MAX", balm_pool_fwd(&L, x, m, out), BALM_ERR_SIZE, "balm_pool_fwd",
           "overflow");
    L = balm_seq_tbd(2, 2, 4);
    L.D = (SIZE_MAX / 4) + 1; /* T*B*D = 2^64 exactly: wraps to 0 */
    REFUSE("gate_fwd T*B*D = 2^64", balm_gate_fwd(&L, x, m, e, out), BALM_ERR_SIZE,
           "balm_gate_fwd", "overflow");
    L = balm_seq_tbd(3, 1, 4);
    L.x_step = SIZE_MAX / 2; /* (T-1)*x_step = SIZE_MAX - 1: extent overflows */
    REFUSE("gate_bwd extent (T-1)*x_step + D past SIZE_MAX",
           balm_gate_bwd(&L, x, m, e, dy, out, out + 64), BALM_ERR_SIZE, "balm_gate_bwd",
           "overflow");
    L = balm_seq_tbd(2, 3, 4);
    L.m_sample = SIZE_MAX;
    REFUSE("pool_bwd mask stride SIZE_MAX", balm_pool_bwd(&L, m, e, out, 0), BALM_ERR_SIZE,
           "balm_pool_bwd", "overflow");
    REFUSE("kl_cls N*C = 2^64", balm_kl_cls((size_t)1 << 32, (size_t)1 << 32, x, x, out),
           BALM_ERR_SIZE, "balm_kl_cls", "overflow");
    REFUSE("direction_grad M = 0",
           balm_direction_grad(4, 0, (const float *const *)NULL, x, x, x, out, 0), BALM_ERR_SIZE,
           "balm_direction_grad", "M = 0");
    const float *ws[9] = {x, x, x, x, x, x, x, x, x};
    REFUSE("direction_grad M = 9", balm_direction_grad(4, 9, ws, e, x, x, out, 0),
           BALM_ERR_SIZE, "balm_direction_grad", "M = 9");
    REFUSE("grm_coeff M = SIZE_MAX", balm_grm_coeff(SIZE_MAX, NULL, x, out), BALM_ERR_SIZE,
           "balm_grm_coeff", "M =");
    REFUSE("noise offset + n past 2^64", balm_noise(16, out, 1.0f, 7, UINT64_MAX - 8),
           BALM_ERR_SIZE, "balm_noise", "overflow");
    REFUSE("grad_rescale offset + n past 2^64",
           balm_grad_rescale(16, out, 1.0f, 1, 7, UINT64_MAX - 8, NULL), BALM_ERR_SIZE,
           "balm_grad_rescale", "overflow");
}

/* Empty calls are valid and write only what the header says. */
static void test_empty_calls(void **state)
{
    (void)state;
    balm_seq L;
    reset();
    L = balm_seq_tbd(0, 3, 4); /* T = 0: s = 0 for B*D values, nothing else */
    assert_int_equal(balm_pool_fwd(&L, x, m, out), BALM_OK);
    for (int i = 0; i < 12; i++)
        assert_true(out[i] == 0.0f);
    assert_true(out[12] == SENT && out[-1] == SENT);
    report("pool_fwd T = 0 (writes s = 0, 12 values)", BALM_OK);
    reset();
    L = balm_seq_tbd(5, 0, 4); /* B = 0: writes nothing */
    assert_int_equal(balm_gate_bwd(&L, x, m, e, dy, out, out + 64), BALM_OK);
    untouched();
    L = balm_seq_tbd(5, 3, 0); /* D = 0: writes nothing */
    assert_int_equal(balm_pool_bwd(&L, m, e, out, 0), BALM_OK);
    untouched();
    report("gate_bwd B = 0, pool_bwd D = 0 (write nothing)", BALM_OK);
    float kl = SENT;
    assert_int_equal(balm_kl_cls(0, 5, x, x, &kl), BALM_OK);
    assert_true(kl == 0.0f);
    float c = SENT, nw = SENT, nwf = SENT;
    assert_int_equal(balm_cos(0, x, x, &c, &nw, &nwf), BALM_OK);
    assert_true(c == 0.0f);
    float sd = SENT;
    assert_int_equal(balm_std(1, x, &sd), BALM_OK);
    assert_true(sd == 0.0f);
    assert_int_equal(balm_scale(0, NULL, 2.0f), BALM_OK);
    report("kl_cls N = 0, cos n = 0, std n = 1, scale n = 0 with NULL", BALM_OK);
}

/* ------------------------------------------------------------ strides */

static void test_overlapping_strides(void **state)
{
    (void)state;
    balm_seq L;
    reset();
    L = balm_seq_btd(3, 4, 8);
    L.x_step = 7; /* [B][T][D] rows of 8 at step 7 */
    REFUSE("gate_fwd [B][T] x_step 7 < D 8", balm_gate_fwd(&L, x, m, e, out), BALM_ERR_STRIDE,
           "balm_gate_fwd", "overlap");
    L = balm_seq_btd(3, 4, 8);
    L.x_sample = 16; /* samples hold 3 steps of 8 = 24 floats */
    REFUSE("pool_fwd [B][T] x_sample 16 < 3 steps * 8", balm_pool_fwd(&L, x, m, out),
           BALM_ERR_STRIDE, "balm_pool_fwd", "overlap");
    L = balm_seq_tbd(3, 4, 8);
    L.m_sample = 2;
    L.m_step = 7; /* 4 samples at stride 2 need 8 per step */
    REFUSE("gate_bwd mask m_step 7 < 4 samples * 2", balm_gate_bwd(&L, x, m, e, dy, out, out + 512),
           BALM_ERR_STRIDE, "balm_gate_bwd", "mask");
    L = balm_seq_tbd(3, 4, 8);
    L.x_step = L.x_sample = 8; /* steps and samples land on the same rows */
    REFUSE("pool_bwd x_step == x_sample", balm_pool_bwd(&L, m, e, out, 0), BALM_ERR_STRIDE,
           "balm_pool_bwd", "overlap");
    /* A stride of 0 is refused even where the dimension has size 1 (the
     * header: strides must be >= 1). */
    L = balm_seq_tbd(1, 4, 8);
    L.x_step = 0;
    REFUSE("pool_fwd T = 1 with x_step 0", balm_pool_fwd(&L, x, m, out), BALM_ERR_STRIDE,
           "balm_pool_fwd", "zero");
    /* Size-1 dimensions may use any non-zero stride, even a small one. */
    reset();
    L = balm_seq_tbd(1, 4, 8);
    L.x_step = 1;
    balm_status st = balm_pool_fwd(&L, x, m, out);
    report("pool_fwd T = 1 with x_step 1 (< D, unused)", st);
    assert_int_equal(st, BALM_OK);
}

/* ------------------------------------------------------------ aliasing */

static void test_aliasing(void **state)
{
    (void)state;
    const size_t T = 4, B = 2, D = 8, n = T * B * D;
    balm_seq L = balm_seq_tbd(T, B, D);
    /* Outputs are placed inside `outbuf` and made to overlap the inputs,
     * which are copied there too; "untouched" then means equal to a copy. */
    static float buf[2048], save[2048];
    for (size_t i = 0; i < 2048; i++)
        buf[i] = 0.001f * (float)i;
    for (size_t i = 0; i < T * B; i++)
        buf[1024 + i] = 1.0f; /* a valid mask at 1024 */
    const float *mk = buf + 1024;
    memcpy(save, buf, sizeof buf);
#define TRY_ALIAS(w, call, status, nd)                                                     \
    do {                                                                                   \
        balm_status st_ = (call);                                                          \
        report(w, st_);                                                                    \
        assert_int_equal(st_, (status));                                                   \
        assert_non_null(strstr(balm_last_error(), (nd)));                                  \
        assert_memory_equal(buf, save, sizeof buf);                                        \
    } while (0)
    TRY_ALIAS("pool_fwd s overlapping x's last element",
              balm_pool_fwd(&L, buf, mk, buf + n - 1), BALM_ERR_ARG, "overlaps");
    TRY_ALIAS("pool_fwd s overlapping the mask", balm_pool_fwd(&L, buf, mk, buf + 1020),
              BALM_ERR_ARG, "overlaps");
    TRY_ALIAS("gate_fwd y = x shifted by one", balm_gate_fwd(&L, buf, mk, buf + 512, buf + 1),
              BALM_ERR_ARG, "overlaps");
    TRY_ALIAS("gate_fwd y overlapping e", balm_gate_fwd(&L, buf, mk, buf + 512, buf + 500),
              BALM_ERR_ARG, "overlaps");
    TRY_ALIAS("gate_bwd dx = x", balm_gate_bwd(&L, buf, mk, buf + 512, buf + 256, buf, buf + 700),
              BALM_ERR_ARG, "overlaps");
    TRY_ALIAS("gate_bwd de overlapping dx",
              balm_gate_bwd(&L, buf, mk, buf + 512, buf + 256, buf + 1100, buf + 1100 + n - 1),
              BALM_ERR_ARG, "overlaps");
    TRY_ALIAS("gate_bwd de overlapping e",
              balm_gate_bwd(&L, buf, mk, buf + 512, buf + 256, buf + 1100, buf + 512 + 3),
              BALM_ERR_ARG, "overlaps");
    TRY_ALIAS("pool_bwd dx overlapping ds", balm_pool_bwd(&L, mk, buf + 512, buf + 500, 0),
              BALM_ERR_ARG, "overlaps");
    const float *ws[2] = {buf, buf + 256};
    TRY_ALIAS("direction_grad dwf overlapping w[1]",
              balm_direction_grad(64, 2, ws, buf + 512, buf + 900, buf + 910, buf + 300, 0),
              BALM_ERR_ARG, "w[1]");
    TRY_ALIAS("direction_grad dwf overlapping wf",
              balm_direction_grad(64, 2, ws, buf + 512, buf + 900, buf + 910, buf + 570, 0),
              BALM_ERR_ARG, "wf");
    /* The one alias the header allows: y == x with the same strides. */
    balm_status st = balm_gate_fwd(&L, buf, mk, buf + 512, buf);
    report("gate_fwd y == x exactly (allowed, in place)", st);
    assert_int_equal(st, BALM_OK);
#undef TRY_ALIAS
}

/* ------------------------------------------------------------ values */

static void test_values(void **state)
{
    (void)state;
    reset();
    float p[6] = {0.5f, 0.5f, 0.0f, 0.25f, 0.75f, 0.0f}, lq[6] = {-1, -1, -1, -1, -1, -1};
    p[4] = -0x1p-149f;
    REFUSE("kl_cls p = -denormal", balm_kl_cls(2, 3, p, lq, out), BALM_ERR_ARG, "p[1][1]",
           "probability");
    p[4] = 0x1.000002p0f;
    REFUSE("kl_cls p = 1 + ulp", balm_kl_cls(2, 3, p, lq, out), BALM_ERR_ARG, "p[1][1]",
           "probability");
    p[4] = NAN;
    REFUSE("kl_cls p = NaN", balm_kl_cls(2, 3, p, lq, out), BALM_ERR_ARG, "p[1][1]", "");
    p[4] = 0.75f;
    lq[5] = NAN;
    REFUSE("kl_cls logq NaN in the last (tail) element", balm_kl_cls(2, 3, p, lq, out),
           BALM_ERR_NONFINITE, "logq[1][2]", "NaN");
    /* logq = -inf where p > 0 is the true value +inf, not an error. */
    lq[5] = -1;
    lq[0] = -INFINITY;
    balm_status st = balm_kl_cls(2, 3, p, lq, out);
    report("kl_cls logq = -inf where p > 0 (true value +inf)", st);
    assert_int_equal(st, BALM_OK);
    assert_true(isinf(out[0]) && out[0] > 0);
    reset();
    x[1002] = -INFINITY;
    REFUSE("std -inf at [1002] of 1003", balm_std(1003, x, out), BALM_ERR_NONFINITE, "x[1002]",
           "balm_std");
    reset();
    REFUSE("noise sd = +inf", balm_noise(8, out, INFINITY, 1, 0), BALM_ERR_ARG, "balm_noise", "sd");
    REFUSE("noise sd = -0x1p-149", balm_noise(8, out, -0x1p-149f, 1, 0), BALM_ERR_ARG,
           "balm_noise", "sd");
    REFUSE("scale alpha = NaN", balm_scale(8, out, NAN), BALM_ERR_NONFINITE, "balm_scale",
           "alpha");
    REFUSE("direction_grad accumulate = -1",
           balm_direction_grad(4, 1, (const float *const[]){x}, e, x, x, out, -1), BALM_ERR_ARG,
           "balm_direction_grad", "accumulate");
    float big[4] = {3e38f, 3e38f, 3e38f, 3e38f};
    st = balm_cos(4, big, big, out, out + 1, out + 2);
    report("cos of vectors near FLT_MAX", st);
    /* Accumulated in double: cos = 1, norms 6e38 overflow float. */
    assert_true(st == BALM_OK || st == BALM_ERR_NONFINITE);
    if (st == BALM_OK)
        assert_true(fabsf(out[0] - 1.0f) < 1e-6f); /* |rel| < 1e-6 */
    reset();
    float g[4] = {1, 2, NAN, 4};
    memcpy(out, g, sizeof g);
    st = balm_grad_rescale(4, out, 2.0f, 1, 1, 0, NULL);
    report("grad_rescale with a NaN gradient", st);
    assert_int_equal(st, BALM_ERR_NONFINITE);
    assert_true(out[0] == 1 && out[1] == 2 && isnan(out[2]) && out[3] == 4); /* g untouched */
}

/* The small query functions: NULLs and out-of-range enums never crash. */
static void test_misc_api(void **state)
{
    (void)state;
    balm_isa isa = BALM_ISA_COUNT;
    reset();
    balm_cpu_info_get(NULL); /* no-op */
    report("cpu_info_get(NULL) (no-op)", BALM_OK);
    REFUSE("isa_from_name(NULL)", balm_isa_from_name(NULL, &isa), BALM_ERR_NULL,
           "balm_isa_from_name", "NULL");
    REFUSE("isa_from_name(\"avx2\", NULL)", balm_isa_from_name("avx2", NULL), BALM_ERR_NULL,
           "balm_isa_from_name", "NULL");
    REFUSE("isa_from_name(\"\")", balm_isa_from_name("", &isa), BALM_ERR_ISA, "unknown ISA",
           "''");
    REFUSE("isa_from_name(\"avx2 \") (trailing space)", balm_isa_from_name("avx2 ", &isa),
           BALM_ERR_ISA, "unknown ISA", "avx2 ");
    assert_int_equal(isa, BALM_ISA_COUNT); /* untouched */
    assert_int_equal(balm_isa_from_name("AVX512", &isa), BALM_OK); /* case-insensitive */
    REFUSE("isa_set_cap(99)", balm_isa_set_cap((balm_isa)99), BALM_ERR_ISA, "balm_isa_set_cap",
           "99");
    REFUSE("isa_set_cap(-1)", balm_isa_set_cap((balm_isa)-1), BALM_ERR_ISA, "balm_isa_set_cap",
           "-1");
    assert_null(balm_isa_name((balm_isa)-1));
    assert_null(balm_isa_name(BALM_ISA_COUNT));
    assert_int_equal(balm_isa_supported((balm_isa)-5), 0);
    assert_int_equal(balm_isa_supported(BALM_ISA_COUNT), 0);
    assert_string_equal(balm_status_str((balm_status)-1), "unknown status");
    /* Asking for the count only. */
    size_t n = balm_shadow_stats(NULL, 5, 0);
    assert_true(n > 0);
    report("isa_name/isa_supported/status_str of out-of-range values, shadow_stats(NULL, 5)",
           BALM_OK);
    float u = balm_uniform(UINT64_MAX, UINT64_MAX);
    assert_true(u > 0.0f && u < 1.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_values),
        cmocka_unit_test(test_mask_negative_zero),
        cmocka_unit_test(test_masked_nonfinite_ignored),
        cmocka_unit_test(test_huge_sizes),
        cmocka_unit_test(test_empty_calls),
        cmocka_unit_test(test_overlapping_strides),
        cmocka_unit_test(test_aliasing),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_misc_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
