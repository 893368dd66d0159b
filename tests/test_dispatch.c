/* Dispatch: names, parsing, detection consistency, and the cap semantics of
 * balm_isa_set_cap and BALM_ISA. The choice is set once per process, so each
 * scenario runs in a forked child. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "balm/balm.h"
#include "kernels.h"

/* Best supported ISA not above `cap` in this architecture's order. */
static balm_isa expect_capped(balm_isa cap)
{
#if defined(__x86_64__)
    balm_isa order[] = {BALM_ISA_SCALAR, BALM_ISA_AVX2, BALM_ISA_AVX512};
    int n = 3;
#elif defined(__aarch64__)
    balm_isa order[] = {BALM_ISA_SCALAR, BALM_ISA_NEON};
    int n = 2;
#else
    balm_isa order[] = {BALM_ISA_SCALAR};
    int n = 1;
#endif
    int limit = -1;
    for (int i = 0; i < n; i++)
        if (order[i] == cap) limit = i;
    if (limit < 0) return BALM_ISA_SCALAR; /* a cap of the other family */
    balm_isa best = BALM_ISA_SCALAR;
    for (int i = 0; i <= limit; i++)
        if (balm_isa_supported(order[i])) best = order[i];
    return best;
}

/* Runs fn in a child; the child's exit status 0 means pass. */
static int in_child(int (*fn)(const void *), const void *arg, const char *env)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (env) setenv("BALM_ISA", env, 1); else unsetenv("BALM_ISA");
        _exit(fn(arg));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

static void test_names(void **state)
{
    (void)state;
    balm_isa isa;
    for (int i = 0; i < BALM_ISA_COUNT; i++) {
        assert_int_equal(balm_isa_from_name(balm_isa_name((balm_isa)i), &isa), BALM_OK);
        assert_int_equal(isa, i);
    }
    assert_int_equal(balm_isa_from_name("AVX2", &isa), BALM_OK);
    assert_int_equal(isa, BALM_ISA_AVX2);
    assert_int_equal(balm_isa_from_name("sse9", &isa), BALM_ERR_ISA);
    assert_non_null(strstr(balm_last_error(), "sse9"));
    assert_int_equal(balm_isa_from_name("", &isa), BALM_ERR_ISA);
    assert_int_equal(balm_isa_from_name(NULL, &isa), BALM_ERR_NULL);
    assert_null(balm_isa_name((balm_isa)42));
    assert_true(balm_isa_supported(BALM_ISA_SCALAR));
    assert_false(balm_isa_supported((balm_isa)42));
}

static void test_detection_consistent(void **state)
{
    (void)state;
    balm_cpu_info c;
    balm_cpu_info_get(&c);
    assert_true(c.vendor[0] != '\0');
#if defined(__x86_64__)
    if (balm_isa_supported(BALM_ISA_AVX2)) assert_true(c.avx2 && c.fma && c.os_ymm);
#ifndef BALM_AVX512_EMULATED
    if (balm_isa_supported(BALM_ISA_AVX512))
        assert_true(c.avx512f && c.avx512bw && c.avx512dq && c.avx512vl && c.os_zmm);
#endif
    assert_false(balm_isa_supported(BALM_ISA_NEON));
#elif defined(__aarch64__)
    assert_true(c.neon && balm_isa_supported(BALM_ISA_NEON));
    assert_false(balm_isa_supported(BALM_ISA_AVX2));
#endif
    /* every supported ISA yields a full table */
    for (int i = 0; i < BALM_ISA_COUNT; i++) {
        balm_kernels t;
        memset(&t, 0, sizeof t);
        int ok = balm_kernels_for_isa((balm_isa)i, &t);
        assert_int_equal(ok, balm_isa_supported((balm_isa)i));
        if (ok) {
            void **p = (void **)&t;
            for (size_t k = 0; k < sizeof t / sizeof(void *); k++) assert_non_null(p[k]);
        }
    }
    assert_int_equal(balm_kernel_count, sizeof(balm_kernels) / sizeof(void *));
}

static int child_api_cap(const void *arg)
{
    balm_isa cap = *(const balm_isa *)arg;
    if (balm_isa_set_cap(cap) != BALM_OK) return 1;
    if (balm_isa_set_cap(cap) != BALM_ERR_STATE) return 2; /* set-once */
    if (balm_isa_active() != expect_capped(cap)) return 3;
    if (!strstr(balm_isa_reason(), "balm_isa_set_cap")) return 4;
    /* the dispatched table is that ISA's table */
    balm_kernels t;
    balm_kernels_for_isa(balm_isa_active(), &t);
    if (memcmp(&t, balm_kernels_active(), sizeof t) != 0) return 5;
    return 0;
}

static void test_api_cap_each_isa(void **state)
{
    (void)state;
    for (int i = 0; i < BALM_ISA_COUNT; i++) {
        balm_isa cap = (balm_isa)i;
        /* the API cap wins over the environment */
        assert_int_equal(in_child(child_api_cap, &cap, "scalar"), 0);
        assert_int_equal(in_child(child_api_cap, &cap, NULL), 0);
    }
}

static int child_env(const void *arg)
{
    const char *env = arg;
    balm_isa want;
    if (balm_isa_from_name(env, &want) != BALM_OK) {
        /* unknown: ignored (reported on stderr), best detected chosen */
        if (balm_isa_active() != expect_capped(BALM_ISA_AVX512) &&
            balm_isa_active() != expect_capped(BALM_ISA_NEON))
            return 1;
        return strstr(balm_isa_reason(), "unknown") ? 0 : 2;
    }
    if (balm_isa_active() != expect_capped(want)) return 3;
    if (!strstr(balm_isa_reason(), "BALM_ISA")) return 4;
    /* too late to cap now */
    return balm_isa_set_cap(BALM_ISA_SCALAR) == BALM_ERR_STATE ? 0 : 5;
}

static int child_none(const void *arg)
{
    (void)arg;
    balm_isa a = balm_isa_active();
#if defined(__x86_64__)
    balm_isa best = expect_capped(BALM_ISA_AVX512);
#elif defined(__aarch64__)
    balm_isa best = expect_capped(BALM_ISA_NEON);
#else
    balm_isa best = BALM_ISA_SCALAR;
#endif
    return a == best && strcmp(balm_isa_reason(), "best detected") == 0 ? 0 : 1;
}

static void test_env_cap(void **state)
{
    (void)state;
    const char *vals[] = {"scalar", "avx2", "AVX512", "neon", "bogus"};
    for (int i = 0; i < 5; i++) assert_int_equal(in_child(child_env, vals[i], vals[i]), 0);
    assert_int_equal(in_child(child_none, NULL, NULL), 0);
}

static void test_set_cap_bad(void **state)
{
    (void)state;
    assert_int_equal(balm_isa_set_cap((balm_isa)17), BALM_ERR_ISA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_detection_consistent),
        cmocka_unit_test(test_api_cap_each_isa),
        cmocka_unit_test(test_env_cap),
        cmocka_unit_test(test_set_cap_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
