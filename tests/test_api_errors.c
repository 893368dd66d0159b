/* Every bad-input rule of the public kernel API: the specific status, a
 * message naming the function and the place, and untouched outputs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "balm/balm.h"

#define SENT 12345.0f
static float out[64], x[64], m[16], e[64], dy[64];

static void reset(void)
{
    for (int i = 0; i < 64; i++) out[i] = SENT, x[i] = (float)i, e[i] = 0.1f, dy[i] = 1.0f;
    for (int i = 0; i < 16; i++) m[i] = 1.0f;
}

static void assert_untouched(void)
{
    for (int i = 0; i < 64; i++) assert_true(out[i] == SENT);
}

#define EXPECT(call, status, needle)                                                        \
    do {                                                                                    \
        reset();                                                                            \
        assert_int_equal((call), (status));                                                 \
        assert_untouched();                                                                 \
        assert_non_null(strstr(balm_last_error(), (needle)));                               \
    } while (0)

static void test_null_pointers(void **state)
{
    (void)state;
    balm_seq L = balm_seq_tbd(2, 2, 4);
    EXPECT(balm_pool_fwd(NULL, x, m, out), BALM_ERR_NULL, "balm_pool_fwd");
    EXPECT(balm_pool_fwd(&L, NULL, m, out), BALM_ERR_NULL, "x is NULL");
    EXPECT(balm_pool_fwd(&L, x, NULL, out), BALM_ERR_NULL, "m is NULL");
    EXPECT(balm_pool_fwd(&L, x, m, NULL), BALM_ERR_NULL, "s is NULL");
    EXPECT(balm_pool_bwd(&L, m, NULL, out, 0), BALM_ERR_NULL, "ds is NULL");
    EXPECT(balm_gate_fwd(&L, x, m, NULL, out), BALM_ERR_NULL, "e is NULL");
    EXPECT(balm_gate_bwd(&L, x, m, e, NULL, out, out + 32), BALM_ERR_NULL, "dy is NULL");
    EXPECT(balm_gate_bwd(&L, x, m, e, dy, out, NULL), BALM_ERR_NULL, "de is NULL");
    EXPECT(balm_kl_cls(2, 3, NULL, x, out), BALM_ERR_NULL, "p is NULL");
    EXPECT(balm_kl_reg(2, x, NULL, out), BALM_ERR_NULL, "u is NULL");
    EXPECT(balm_cos(4, x, NULL, out, NULL, NULL), BALM_ERR_NULL, "wf is NULL");
    EXPECT(balm_std(4, NULL, out), BALM_ERR_NULL, "x is NULL");
    EXPECT(balm_grm_coeff(3, NULL, NULL, out), BALM_ERR_NULL, "cur_kl is NULL");
    const float *ws[2] = {x, NULL};
    float c[2] = {1, 1}, cs[2] = {0.5f, 0.5f};
    EXPECT(balm_direction_grad(4, 2, ws, e, c, cs, out, 0), BALM_ERR_NULL, "w[1] is NULL");
    EXPECT(balm_noise(4, NULL, 1.0f, 1, 0), BALM_ERR_NULL, "x is NULL");
}

static void test_sizes_overflow(void **state)
{
    (void)state;
    balm_seq L = balm_seq_tbd(2, 2, 4);
    L.T = SIZE_MAX / 2;
    EXPECT(balm_pool_fwd(&L, x, m, out), BALM_ERR_SIZE, "overflow");
    balm_seq L2 = {3, 3, SIZE_MAX / 4, SIZE_MAX / 2, SIZE_MAX / 4, 3, 1};
    EXPECT(balm_gate_fwd(&L2, x, m, e, out), BALM_ERR_SIZE, "overflow");
    EXPECT(balm_kl_cls(SIZE_MAX / 2, 3, x, x, out), BALM_ERR_SIZE, "N*C overflows");
    EXPECT(balm_kl_cls(3, 0, x, x, out), BALM_ERR_SIZE, "C = 0");
    EXPECT(balm_grm_coeff(0, NULL, x, out), BALM_ERR_SIZE, "M = 0");
    EXPECT(balm_grm_loss(9, x, x, out), BALM_ERR_SIZE, "M = 9");
    EXPECT(balm_noise(8, out, 1.0f, 1, UINT64_MAX - 3), BALM_ERR_SIZE, "overflows");
}

static void test_strides(void **state)
{
    (void)state;
    balm_seq L = balm_seq_tbd(2, 2, 4);
    L.x_sample = 0;
    EXPECT(balm_pool_fwd(&L, x, m, out), BALM_ERR_STRIDE, "zero");
    L = balm_seq_tbd(2, 2, 4);
    L.m_step = 0;
    EXPECT(balm_pool_fwd(&L, x, m, out), BALM_ERR_STRIDE, "mask stride is zero");
    L = balm_seq_tbd(2, 2, 4);
    L.x_sample = 3; /* rows of 4 at stride 3 overlap */
    EXPECT(balm_gate_fwd(&L, x, m, e, out), BALM_ERR_STRIDE, "overlap");
    L = balm_seq_tbd(2, 2, 4);
    L.x_step = 4; /* steps land on the samples */
    EXPECT(balm_gate_fwd(&L, x, m, e, out), BALM_ERR_STRIDE, "overlap");
    L = balm_seq_tbd(2, 2, 4);
    L.m_step = 1; /* mask entries overlap */
    EXPECT(balm_pool_fwd(&L, x, m, out), BALM_ERR_STRIDE, "mask");
}

static void test_masks(void **state)
{
    (void)state;
    balm_seq L = balm_seq_tbd(2, 2, 4);
    reset();
    m[3] = 0.5f;
    assert_int_equal(balm_pool_fwd(&L, x, m, out), BALM_ERR_MASK);
    assert_untouched();
    assert_non_null(strstr(balm_last_error(), "m[t=1][b=1] = 0.5"));
    reset();
    m[2] = NAN;
    assert_int_equal(balm_gate_bwd(&L, x, m, e, dy, out, out + 32), BALM_ERR_MASK);
    assert_untouched();
    assert_non_null(strstr(balm_last_error(), "[t=1][b=0]"));
    reset();
    m[0] = -1.0f;
    assert_int_equal(balm_pool_bwd(&L, m, e, out, 0), BALM_ERR_MASK);
    assert_untouched();
    reset();
    m[1] = 2.0f;
    assert_int_equal(balm_gate_fwd(&L, x, m, e, out), BALM_ERR_MASK);
    assert_untouched();
}

static void test_values_and_aliasing(void **state)
{
    (void)state;
    balm_seq L = balm_seq_tbd(2, 2, 4);
    /* outputs may not overlap inputs (gate_fwd's exact y == x is allowed) */
    EXPECT(balm_pool_fwd(&L, out, m, out + 4), BALM_ERR_ARG, "overlaps");
    EXPECT(balm_gate_bwd(&L, x, m, e, out, out, out + 32), BALM_ERR_ARG, "dx overlaps dy");
    EXPECT(balm_pool_bwd(&L, m, e, out, 2), BALM_ERR_ARG, "accumulate");
    reset();
    float p[6] = {0.5f, 0.5f, 0, 1.5f, 0, 0}, lq[6] = {0};
    assert_int_equal(balm_kl_cls(2, 3, p, lq, out), BALM_ERR_ARG);
    assert_non_null(strstr(balm_last_error(), "p[1][0]"));
    p[3] = 1.0f;
    lq[5] = NAN;
    assert_int_equal(balm_kl_cls(2, 3, p, lq, out), BALM_ERR_NONFINITE);
    assert_non_null(strstr(balm_last_error(), "logq[1][2]"));
    float f[3] = {1, INFINITY, 2};
    assert_int_equal(balm_kl_reg(3, f, f, out), BALM_ERR_NONFINITE);
    assert_non_null(strstr(balm_last_error(), "f[1]"));
    float w[4] = {1, 2, NAN, 4};
    assert_int_equal(balm_cos(4, w, x, out, NULL, NULL), BALM_ERR_NONFINITE);
    assert_non_null(strstr(balm_last_error(), "w[2]"));
    assert_untouched();
    assert_int_equal(balm_noise(4, out, -1.0f, 1, 0), BALM_ERR_ARG);
    assert_int_equal(balm_noise(4, out, NAN, 1, 0), BALM_ERR_ARG);
    assert_int_equal(balm_scale(4, out, INFINITY), BALM_ERR_NONFINITE);
    assert_int_equal(balm_grad_rescale(4, out, NAN, 1, 1, 0, NULL), BALM_ERR_NONFINITE);
    assert_int_equal(balm_grad_rescale(4, out, 1.0f, 3, 1, 0, NULL), BALM_ERR_ARG);
    assert_untouched();
    float kl[3] = {1, NAN, 2};
    assert_int_equal(balm_grm_coeff(3, NULL, kl, out), BALM_ERR_NONFINITE);
    assert_untouched();
    assert_string_equal(balm_status_str(BALM_ERR_MASK), "mask value is neither 0 nor 1");
    assert_string_equal(balm_status_str((balm_status)999), "unknown status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_pointers),
        cmocka_unit_test(test_sizes_overflow),
        cmocka_unit_test(test_strides),
        cmocka_unit_test(test_masks),
        cmocka_unit_test(test_values_and_aliasing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
