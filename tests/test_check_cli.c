/* The `balm` command's exit statuses and messages: `balm check` on copies of
 * golden cases altered at test time (a wrong value, a missing array, a bad
 * case.txt), --out, the tolerance table, and the usage errors.
 * The binary comes from $BALM_CLI (set by tests/check_cli.cmake), run through
 * $BALM_CLI_EMULATOR when cross-built. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "balm/balm.h"
#include "balm/npy.h"

static char tmpdir[1024];
static char cli[1024];
/* How to start it: the path, behind $BALM_CLI_EMULATOR when cross-built
 * (qemu-aarch64-static -L ...), since system() runs it outside the emulator. */
static char runner[2048];
static char out_text[1 << 16], err_text[1 << 16];

static int setup(void **state)
{
    (void)state;
    const char *env = getenv("BALM_CLI");
    snprintf(cli, sizeof cli, "%s", env && *env ? env : BALM_BINARY_DIR "/cli/balm");
    const char *emu = getenv("BALM_CLI_EMULATOR");
    snprintf(runner, sizeof runner, "%s '%s'", emu ? emu : "", cli);
    snprintf(tmpdir, sizeof tmpdir, "%s/test_check_cli_XXXXXX", BALM_BINARY_DIR);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    size_t n = 0;
    if (fp) {
        n = fread(buf, 1, cap - 1, fp);
        fclose(fp);
    }
    buf[n] = '\0';
}

/* Runs `balm <args>` (args are shell words, paths relative to tmpdir) and
 * returns its exit status; stdout and stderr land in out_text / err_text. */
static int run_cli(const char *fmt, ...)
{
    if (access(cli, X_OK) != 0)
        skip(); /* the CLI is not built (BALM_BUILD_CLI=OFF) */
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s %s >stdout.txt 2>stderr.txt", tmpdir, runner, args);
    int st = system(cmd);
    char path[4200];
    snprintf(path, sizeof path, "%s/stdout.txt", tmpdir);
    slurp(path, out_text, sizeof out_text);
    snprintf(path, sizeof path, "%s/stderr.txt", tmpdir);
    slurp(path, err_text, sizeof err_text);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

#define assert_contains(hay, needle)                                                       \
    do {                                                                                   \
        if (!strstr((hay), (needle)))                                                      \
            fail_msg("expected \"%s\" in:\n%s", (needle), (hay));                          \
    } while (0)

/* Copies golden case `name` to tmpdir/<as>. */
static void copy_case(const char *name, const char *as)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/%s' && cp -R '%s/golden/%s' '%s/%s' && chmod -R u+w '%s/%s'",
             tmpdir, as, BALM_TEST_DATA_DIR, name, tmpdir, as, tmpdir, as);
    assert_int_equal(system(cmd), 0);
}

static const char *cpath(const char *c, const char *file)
{
    static char buf[2][4300];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s/%s", tmpdir, c, file);
    return buf[k];
}

/* Golden array `arr` of case copy `c`: element i += rel * max|array|. */
static void nudge(const char *c, const char *arr, size_t i, double rel)
{
    char file[64];
    snprintf(file, sizeof file, "%s.npy", arr);
    balm_array a;
    assert_int_equal(balm_npy_read(cpath(c, file), &a), BALM_OK);
    assert_true(i < a.count);
    float mx = 0;
    for (size_t k = 0; k < a.count; k++)
        if (fabsf(a.data[k]) > mx)
            mx = fabsf(a.data[k]);
    a.data[i] += (float)(rel * mx);
    assert_int_equal(balm_npy_write(cpath(c, file), a.data, a.ndim, a.shape), BALM_OK);
    balm_array_free(&a);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static void test_pass_all_kinds(void **state)
{
    (void)state;
    copy_case("kl_cls_small", "p1");
    copy_case("kl_reg", "p2");
    copy_case("cos_zero", "p3");
    copy_case("coeff_first", "p4");
    copy_case("fcm_tiny", "p5");
    int rc = run_cli("check p1 p2 p3/ p4 p5");
    if (rc != 0)
        fail_msg("exit %d\n%s%s", rc, out_text, err_text);
    assert_contains(out_text, "PASS p1 (kl_cls, isa=");
    assert_contains(out_text, "PASS p5 (fcm, isa=");
    assert_contains(out_text, "PASS p3 (cos"); /* trailing slash stripped */
    assert_contains(out_text, "max rel err: kl ");
}

static void test_wrong_value_fails(void **state)
{
    (void)state;
    copy_case("kl_reg", "bad_kl");
    nudge("bad_kl", "kl", 1, 1e-3);
    copy_case("kl_cls_small", "good");
    assert_int_equal(run_cli("check good bad_kl"), 1);
    assert_contains(out_text, "PASS good");
    assert_contains(out_text, "FAIL bad_kl (kl_reg");
    assert_contains(out_text, "kl rel err");
    /* A failure and an error: the error wins. */
    copy_case("kl_reg", "err_case");
    assert_int_equal(unlink(cpath("err_case", "pred_v.npy")), 0);
    assert_int_equal(run_cli("check bad_kl err_case"), 2);
}

/* The per-array tolerances: 1e-5 by default, 2e-5 for fcm dx, 1e-4 for fcm
 * parameter gradients. A change of 5e-5 of the array's largest magnitude
 * passes in dwg and fails in dl and in l_out. */
static void test_tolerance_table(void **state)
{
    (void)state;
    copy_case("fcm_odd", "tol_dwg");
    nudge("tol_dwg", "dwg", 3, 5e-5);
    assert_int_equal(run_cli("check tol_dwg"), 0);

    copy_case("fcm_odd", "tol_dl");
    nudge("tol_dl", "dl", 3, 5e-5);
    assert_int_equal(run_cli("check tol_dl"), 1);
    assert_contains(out_text, "dl rel err");

    copy_case("fcm_odd", "tol_out");
    nudge("tol_out", "l_out", 0, 5e-5);
    assert_int_equal(run_cli("check tol_out"), 1);
    assert_contains(out_text, "l_out rel err");

    copy_case("fcm_odd", "tol_dwg2");
    nudge("tol_dwg2", "dwg", 0, 3e-4);
    assert_int_equal(run_cli("check tol_dwg2"), 1);
    assert_contains(out_text, "dwg rel err");
}

static void test_nonfinite(void **state)
{
    (void)state;
    /* A NaN golden value can never be matched by a finite result. */
    copy_case("cos_zero", "nan_golden");
    balm_array a;
    assert_int_equal(balm_npy_read(cpath("nan_golden", "dfused.npy"), &a), BALM_OK);
    a.data[5] = NAN;
    assert_int_equal(balm_npy_write(cpath("nan_golden", "dfused.npy"), a.data, a.ndim, a.shape),
                     BALM_OK);
    balm_array_free(&a);
    assert_int_equal(run_cli("check nan_golden"), 1);
    assert_contains(out_text, "FAIL nan_golden");

    /* A NaN at a present step propagates into the FCM outputs: a NaN result
     * fails whatever the tolerance. */
    copy_case("fcm_tiny", "nan_out");
    assert_int_equal(balm_npy_read(cpath("nan_out", "lmask.npy"), &a), BALM_OK);
    assert_true(a.data[0] == 1.0f); /* step 0 of sample 0 is present */
    balm_array_free(&a);
    assert_int_equal(balm_npy_read(cpath("nan_out", "l.npy"), &a), BALM_OK);
    a.data[2] = NAN;
    assert_int_equal(balm_npy_write(cpath("nan_out", "l.npy"), a.data, a.ndim, a.shape), BALM_OK);
    balm_array_free(&a);
    assert_int_equal(run_cli("check nan_out"), 1);
    assert_contains(out_text, "l_out has NaN at flat index 2");

    /* A NaN input the library rejects: the case fails with its message. */
    copy_case("kl_cls_small", "nan_input");
    assert_int_equal(balm_npy_read(cpath("nan_input", "logq_v.npy"), &a), BALM_OK);
    a.data[7] = NAN;
    assert_int_equal(balm_npy_write(cpath("nan_input", "logq_v.npy"), a.data, a.ndim, a.shape),
                     BALM_OK);
    balm_array_free(&a);
    assert_int_equal(run_cli("check nan_input"), 1);
    assert_contains(out_text, "FAIL nan_input");
    assert_contains(out_text, "balm_kl_cls");
}

static void test_missing_and_malformed(void **state)
{
    (void)state;
    copy_case("kl_reg", "no_input");
    assert_int_equal(unlink(cpath("no_input", "pred_v.npy")), 0);
    assert_int_equal(run_cli("check no_input"), 2);
    assert_contains(out_text, "ERROR no_input");
    assert_contains(out_text, "pred_v.npy");

    copy_case("cos_900", "no_golden");
    assert_int_equal(unlink(cpath("no_golden", "dfused.npy")), 0);
    assert_int_equal(run_cli("check no_golden"), 2);
    assert_contains(out_text, "dfused.npy");

    copy_case("kl_reg", "bad_npy");
    write_text(cpath("bad_npy", "fused.npy"), "not an npy file");
    assert_int_equal(run_cli("check bad_npy"), 2);
    assert_contains(out_text, "fused.npy: not a .npy file");

    copy_case("kl_cls_small", "bad_shape");
    write_text(cpath("bad_shape", "case.txt"), "kind: kl_cls\nN: 9\nC: 5\n");
    assert_int_equal(run_cli("check bad_shape"), 2);
    assert_contains(out_text, "p.npy: shape (9, 6), but case.txt sizes give (9, 5)");

    copy_case("kl_cls_small", "no_size");
    write_text(cpath("no_size", "case.txt"), "kind: kl_cls\nN: 9\n");
    assert_int_equal(run_cli("check no_size"), 2);
    assert_contains(out_text, "case.txt: missing 'C");

    copy_case("kl_cls_small", "bad_size");
    write_text(cpath("bad_size", "case.txt"), "kind: kl_cls\nN: -9\nC: 6\n");
    assert_int_equal(run_cli("check bad_size"), 2);
    assert_contains(out_text, "'N: -9' is not a size");

    copy_case("kl_reg", "no_kind");
    write_text(cpath("no_kind", "case.txt"), "N: 37\n");
    assert_int_equal(run_cli("check no_kind"), 2);
    assert_contains(out_text, "case.txt:1: the first line must be 'kind: <kind>'");

    copy_case("kl_reg", "odd_kind");
    write_text(cpath("odd_kind", "case.txt"), "kind: frobnicate\nN: 37\n");
    assert_int_equal(run_cli("check odd_kind"), 2);
    assert_contains(out_text, "unknown kind 'frobnicate'");

    copy_case("coeff_step", "bad_bool");
    write_text(cpath("bad_bool", "case.txt"), "kind: coeff\nfirst_step: maybe\n");
    assert_int_equal(run_cli("check bad_bool"), 2);
    assert_contains(out_text, "'first_step: maybe' is not True or False");

    assert_int_equal(run_cli("check no_such_case"), 2);
    assert_contains(out_text, "no_such_case/case.txt: cannot open");

    /* A folder without case.txt is an error; a file among the arguments
     * (the README next to the golden cases) is skipped, but not everything may be. */
    assert_int_equal(mkdir(cpath("empty_case", ""), 0777), 0);
    assert_int_equal(run_cli("check empty_case"), 2);
    assert_contains(out_text, "empty_case/case.txt: cannot open");
    copy_case("kl_reg", "with_readme");
    write_text(cpath("", "README.md"), "# cases\n");
    assert_int_equal(run_cli("check README.md with_readme"), 0);
    assert_contains(out_text, "SKIP README.md: not a folder");
    assert_contains(out_text, "1 passed, 0 failed, 0 errors");
    assert_int_equal(run_cli("check README.md"), 2);
    assert_contains(err_text, "none of the arguments");
}

static void test_crlf_case_txt(void **state)
{
    (void)state;
    copy_case("kl_reg", "crlf");
    write_text(cpath("crlf", "case.txt"),
               "kind: kl_reg\r\nnote: written on Windows\r\n\r\nN: 37\r\n");
    assert_int_equal(run_cli("check crlf"), 0);
    copy_case("coeff_first", "crlf2");
    write_text(cpath("crlf2", "case.txt"), "\xEF\xBB\xBFkind: coeff\r\nfirst_step: True\r\n");
    assert_int_equal(run_cli("check crlf2"), 0);
}

static void test_out_dir(void **state)
{
    (void)state;
    copy_case("fcm_tiny", "fcm_tiny");
    copy_case("kl_cls_small", "kl_cls_small");
    assert_int_equal(run_cli("check --out outdir/nested fcm_tiny kl_cls_small"), 0);
    static const char *const names[] = {"sl", "sa", "sv", "z", "el", "ea", "ev", "l_out",
                                        "a_out", "v_out", "dl", "da", "dv", "dwg", "dbg",
                                        "dwl", "dbl", "dwa", "dba", "dwv", "dbv"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char file[64], got_path[4400];
        snprintf(file, sizeof file, "%s.npy", names[k]);
        snprintf(got_path, sizeof got_path, "%s/outdir/nested/fcm_tiny/%s", tmpdir, file);
        balm_array got, want;
        if (balm_npy_read(got_path, &got) != BALM_OK)
            fail_msg("%s", balm_last_error());
        assert_int_equal(balm_npy_read(cpath("fcm_tiny", file), &want), BALM_OK);
        assert_int_equal(got.ndim, want.ndim);
        assert_memory_equal(got.shape, want.shape, want.ndim * sizeof(size_t));
        /* Same values as checked by `balm check`: within 1e-4 of the largest
         * magnitude (the loosest tolerance in the table). */
        float mx = 0, diff = 0;
        for (size_t i = 0; i < want.count; i++) {
            mx = fmaxf(mx, fabsf(want.data[i]));
            diff = fmaxf(diff, fabsf(got.data[i] - want.data[i]));
        }
        assert_true(diff <= 1e-4f * mx + 1e-30f);
        balm_array_free(&got);
        balm_array_free(&want);
    }
    /* The output folder of a second case, and `balm check` on the output
     * folder itself is not a case (no case.txt). */
    char p[4400];
    snprintf(p, sizeof p, "%s/outdir/nested/kl_cls_small/kl.npy", tmpdir);
    assert_int_equal(access(p, R_OK), 0);

    /* --out where a file blocks the folder. */
    write_text(cpath("", "blocker"), "x");
    assert_int_equal(run_cli("check --out blocker kl_cls_small"), 2);
    assert_contains(out_text, "--out");
}

static void test_usage_errors(void **state)
{
    (void)state;
    copy_case("kl_reg", "u");
    assert_int_equal(run_cli("check --bogus u"), 2);
    assert_contains(err_text, "balm check: unknown option '--bogus'\nusage: balm check");
    assert_int_equal(run_cli("check"), 2);
    assert_contains(err_text, "no case folder");
    assert_int_equal(run_cli("check --isa"), 2);
    assert_contains(err_text, "needs a value");
    assert_int_equal(run_cli("check --isa sse9 u"), 2);
    assert_contains(err_text, "unknown ISA 'sse9'");
    assert_int_equal(run_cli("check --linear magic u"), 2);
    assert_contains(err_text, "--linear");
    assert_int_equal(run_cli("frobnicate"), 2);
    assert_contains(err_text, "balm: unknown command 'frobnicate'\nusage: balm");
    assert_int_equal(run_cli("--frobnicate"), 2);
    assert_int_equal(run_cli(""), 2);
    assert_int_equal(run_cli("info --bogus"), 2);

    /* An ISA this machine cannot run is refused, one it can is used. */
    for (int i = 0; i < BALM_ISA_COUNT; i++) {
        balm_isa isa = (balm_isa)i;
        int rc = run_cli("check --isa %s u", balm_isa_name(isa));
        if (balm_isa_supported(isa)) {
            assert_int_equal(rc, 0);
            char want[64];
            snprintf(want, sizeof want, "isa=%s)", balm_isa_name(isa));
            assert_contains(out_text, want);
        } else {
            assert_int_equal(rc, 2);
            assert_contains(err_text, "not supported");
        }
    }
    assert_int_equal(run_cli("check --isa=scalar --linear=ref u"), 0);
    assert_contains(out_text, "isa=scalar");
}

static void test_help_version_info(void **state)
{
    (void)state;
    assert_int_equal(run_cli("--help"), 0);
    assert_contains(out_text, "usage: balm");
    assert_contains(out_text, "tolerances: 1e-05");
    assert_int_equal(run_cli("check --help"), 0);
    assert_contains(out_text, "--linear");
    assert_int_equal(run_cli("--version"), 0);
    assert_contains(out_text, "balm 0.1.0");
    assert_int_equal(run_cli("info"), 0);
    assert_contains(out_text, "active ISA:");
    assert_contains(out_text, "oneDNN:");
    assert_contains(out_text, "AVX-512:");
    /* BALM_ISA caps the active ISA; info reports the reason. */
    assert_int_equal(run_cli("info >/dev/null; BALM_ISA=scalar %s info", runner), 0);
    assert_contains(out_text, "active ISA:   scalar (capped by BALM_ISA=scalar)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass_all_kinds),
        cmocka_unit_test(test_wrong_value_fails),
        cmocka_unit_test(test_tolerance_table),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_missing_and_malformed),
        cmocka_unit_test(test_crlf_case_txt),
        cmocka_unit_test(test_out_dir),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help_version_info),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
