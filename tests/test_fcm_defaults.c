/* balm_fcm_config_default: upstream's d_global and a configuration that
 * creates a working module once max_T/max_B are set. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "balm/fcm.h"

static void test_defaults(void **state)
{
    (void)state;
    balm_fcm_config c = balm_fcm_config_default(1024, 1582, 342);
    assert_int_equal(c.d_global, 737); /* IEMOCAP, as upstream */
    assert_int_equal(balm_fcm_config_default(1024, 512, 1024).d_global, 640); /* MOSEI */
    c = balm_fcm_config_default(3, 2, 1);
    assert_int_equal(c.d_global, 1);
    c.max_T = 2;
    c.max_B = 1;
    balm_fcm *f = NULL;
    assert_int_equal(balm_fcm_create(&c, &f), BALM_OK);
    float xl[6] = {1, 2, 3, 4, 5, 6}, xa[4] = {1, 1, 1, 1}, xv[2] = {NAN, 2};
    float m1[2] = {1, 1}, mv[2] = {0, 1}, yl[6], ya[4], yv[2];
    const float *x[3] = {xl, xa, xv}, *m[3] = {m1, m1, mv};
    float *y[3] = {yl, ya, yv};
    assert_int_equal(balm_fcm_forward(f, 2, 1, x, m, y), BALM_OK);
    assert_true(yv[0] == 0.0f); /* masked step: exactly 0, NaN never read */
    for (int i = 0; i < 6; i++) assert_true(isfinite(yl[i]) && yl[i] != 0.0f);
    /* a bad mask names the modality */
    float bad[2] = {1, 0.5f};
    const float *mb[3] = {m1, bad, mv};
    assert_int_equal(balm_fcm_forward(f, 2, 1, x, mb, y), BALM_ERR_MASK);
    assert_non_null(strstr(balm_last_error(), "mask[1] (a)[t=1][b=0]"));
    balm_fcm_destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_defaults)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
