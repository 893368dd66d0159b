/* .npy reading and writing: round trips, the three header versions, and
 * every malformed-file case giving BALM_ERR_FORMAT with the file's name.
 * Values are compared bit-exactly: the format stores float32 unchanged. */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "balm/npy.h"

static char tmpdir[4096];

static const char *tpath(const char *name)
{
    static char buf[4][4200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/test_npy_XXXXXX", BALM_BINARY_DIR);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *n = fread(buf, 1, 1 << 16, fp);
    fclose(fp);
    return buf;
}

/* A .npy file with the given version and header dict (padded with spaces and
 * '\n' to 64-byte alignment unless pad = 0), followed by `nfloat` floats
 * 0.5, 1.5, ... and `extra` junk bytes. */
static void make_npy(const char *path, int major, int minor, const char *dict, size_t nfloat,
                     size_t extra, int pad)
{
    size_t lenbytes = major == 1 ? 2 : 4, prefix = 8 + lenbytes;
    size_t dl = strlen(dict), hlen = dl + 1;
    if (pad)
        hlen = ((prefix + dl + 1 + 63) / 64) * 64 - prefix;
    size_t total = prefix + hlen + nfloat * 4 + extra;
    unsigned char *b = calloc(1, total);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = (unsigned char)minor;
    for (size_t i = 0; i < lenbytes; i++)
        b[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + prefix, dict, dl);
    memset(b + prefix + dl, ' ', hlen - dl - 1);
    b[prefix + hlen - 1] = '\n';
    for (size_t i = 0; i < nfloat; i++) {
        float v = (float)i + 0.5f;
        memcpy(b + prefix + hlen + 4 * i, &v, 4); /* tests run on little-endian hosts */
    }
    memset(b + prefix + hlen + nfloat * 4, 0xAB, extra);
    write_bytes(path, b, total);
    free(b);
}

/* Reading `name` fails with `want` and a message naming the file and
 * containing `needle`. */
static void expect_fail(const char *name, balm_status want, const char *needle)
{
    balm_array a;
    memset(&a, 0x5A, sizeof a);
    balm_status st = balm_npy_read(tpath(name), &a);
    const char *msg = balm_last_error();
    if (st != want || !strstr(msg, name) || (needle && !strstr(msg, needle)))
        fail_msg("%s: status %d (want %d), message \"%s\" (want the name and \"%s\")", name,
                 (int)st, (int)want, msg, needle ? needle : "");
    /* On error the array stays empty. */
    assert_null(a.data);
    assert_int_equal(a.count, 0);
    assert_int_equal(a.ndim, 0);
}

static void round_trip(const char *name, size_t ndim, const size_t *shape)
{
    size_t count = 1;
    for (size_t i = 0; i < ndim; i++)
        count *= shape[i];
    float *d = malloc((count ? count : 1) * sizeof(float));
    assert_non_null(d);
    for (size_t i = 0; i < count; i++)
        d[i] = (float)i * 0.25f - 3.0f;
    assert_int_equal(balm_npy_write(tpath(name), d, ndim, shape), BALM_OK);

    /* The data starts on a 64-byte boundary, as numpy writes it. */
    struct stat sb;
    assert_int_equal(stat(tpath(name), &sb), 0);
    assert_int_equal(((size_t)sb.st_size - count * 4) % 64, 0);

    balm_array a;
    assert_int_equal(balm_npy_read(tpath(name), &a), BALM_OK);
    assert_int_equal(a.ndim, ndim);
    assert_int_equal(a.count, count);
    for (size_t i = 0; i < ndim; i++)
        assert_int_equal(a.shape[i], shape[i]);
    if (count == 0)
        assert_null(a.data);
    else
        assert_memory_equal(a.data, d, count * sizeof(float));
    balm_array_free(&a);
    assert_null(a.data);
    assert_int_equal(a.count, 0);
    free(d);
}

static void test_round_trip(void **state)
{
    (void)state;
    round_trip("rt0.npy", 0, NULL);
    size_t s1[] = {7};
    round_trip("rt1.npy", 1, s1);
    size_t s3[] = {3, 4, 5};
    round_trip("rt3.npy", 3, s3);
    size_t s0[] = {0, 5};
    round_trip("rt_empty.npy", 2, s0);
    size_t s8[] = {1, 2, 1, 2, 1, 2, 1, 3};
    round_trip("rt8.npy", 8, s8);
}

/* Byte-for-byte what numpy 1.24 np.save writes for a (2, 3) float32 array:
 * the dict, 20 spaces of growth room, padding, '\n', 128 bytes in all. */
static void test_write_matches_numpy(void **state)
{
    (void)state;
    const size_t shape[] = {2, 3};
    const float d[6] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(balm_npy_write(tpath("np.npy"), d, 2, shape), BALM_OK);
    size_t n;
    unsigned char *b = read_bytes(tpath("np.npy"), &n);
    assert_int_equal(n, 128 + 24);
    char want[128];
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    memcpy(want, "\x93NUMPY\x01\x00\x76\x00", 10);
    memset(want + 10, ' ', 118);
    memcpy(want + 10, dict, strlen(dict));
    want[127] = '\n';
    assert_memory_equal(b, want, 128);
    assert_memory_equal(b + 128, d, 24);
    free(b);
}

static void test_overwrite_and_no_temp_left(void **state)
{
    (void)state;
    const size_t s1[] = {2}, s2[] = {3};
    const float a[] = {1, 2}, b[] = {4, 5, 6};
    assert_int_equal(balm_npy_write(tpath("ow.npy"), a, 1, s1), BALM_OK);
    assert_int_equal(balm_npy_write(tpath("ow.npy"), b, 1, s2), BALM_OK);
    balm_array r;
    assert_int_equal(balm_npy_read(tpath("ow.npy"), &r), BALM_OK);
    assert_int_equal(r.count, 3);
    assert_memory_equal(r.data, b, sizeof b);
    balm_array_free(&r);

    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", tpath("ow.npy"), (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);

    /* The target is a folder: the rename fails, the temp file is removed. */
    assert_int_equal(mkdir(tpath("isdir.npy"), 0777), 0);
    assert_int_equal(balm_npy_write(tpath("isdir.npy"), a, 1, s1), BALM_ERR_IO);
    assert_non_null(strstr(balm_last_error(), "isdir.npy"));
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", tpath("isdir.npy"), (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);

    /* A folder that does not exist. */
    assert_int_equal(balm_npy_write(tpath("nodir/x.npy"), a, 1, s1), BALM_ERR_IO);
    assert_non_null(strstr(balm_last_error(), "nodir/x.npy"));
}

static void test_write_args(void **state)
{
    (void)state;
    const size_t s[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const float v = 1;
    assert_int_equal(balm_npy_write(NULL, &v, 1, s), BALM_ERR_NULL);
    assert_non_null(strstr(balm_last_error(), "balm_npy_write"));
    assert_int_equal(balm_npy_write(tpath("w9.npy"), &v, 9, s), BALM_ERR_SIZE);
    assert_int_equal(balm_npy_write(tpath("w.npy"), &v, 2, NULL), BALM_ERR_NULL);
    assert_int_equal(balm_npy_write(tpath("w.npy"), NULL, 1, s), BALM_ERR_NULL);
    const size_t big[3] = {SIZE_MAX / 2, 4, 1};
    assert_int_equal(balm_npy_write(tpath("w.npy"), &v, 3, big), BALM_ERR_SIZE);
    /* No data needed for an empty array. */
    const size_t empty[2] = {4, 0};
    assert_int_equal(balm_npy_write(tpath("w0.npy"), NULL, 2, empty), BALM_OK);
    /* Nothing was left behind by the failed calls. */
    assert_int_not_equal(access(tpath("w9.npy"), F_OK), 0);
    assert_int_not_equal(access(tpath("w.npy"), F_OK), 0);

    balm_array a;
    assert_int_equal(balm_npy_read(NULL, &a), BALM_ERR_NULL);
    assert_int_equal(balm_npy_read(tpath("w0.npy"), NULL), BALM_ERR_NULL);
    balm_array_free(NULL);
}

static void test_versions(void **state)
{
    (void)state;
    static const struct {
        int major;
        const char *dict;
        size_t ndim, s0, s1, count;
    } cases[] = {
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 2, 2, 3, 6},
        {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 1, 4, 0, 4},
        /* 3.0 allows utf-8 in the header. */
        {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 1, 5, 0, 5},
        /* Keys in any order, double quotes, odd spacing, no trailing comma. */
        {1, "{ \"shape\" :(2,3) ,'fortran_order':False,\t'descr':'<f4'}", 2, 2, 3, 6},
        /* 0-d array. */
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", 0, 0, 0, 1},
        /* Python 2 writers put an L after longs. */
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 1L), }", 2, 3, 1, 3},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "v%zu.npy", k);
        make_npy(tpath(name), cases[k].major, 0, cases[k].dict, cases[k].count, 0, 1);
        balm_array a;
        balm_status st = balm_npy_read(tpath(name), &a);
        if (st != BALM_OK)
            fail_msg("case %zu: %s", k, balm_last_error());
        assert_int_equal(a.ndim, cases[k].ndim);
        assert_int_equal(a.count, cases[k].count);
        if (a.ndim > 0)
            assert_int_equal(a.shape[0], cases[k].s0);
        if (a.ndim > 1)
            assert_int_equal(a.shape[1], cases[k].s1);
        for (size_t i = 0; i < a.count; i++)
            assert_true(a.data[i] == (float)i + 0.5f);
        balm_array_free(&a);
    }
    /* An unpadded header (not 64-aligned) is still valid. */
    make_npy(tpath("nopad.npy"), 1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
             2, 0, 0);
    balm_array a;
    assert_int_equal(balm_npy_read(tpath("nopad.npy"), &a), BALM_OK);
    assert_int_equal(a.count, 2);
    balm_array_free(&a);
}

static const char *good_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";

static void test_malformed(void **state)
{
    (void)state;
    /* Bad magic: a text file, and one byte off. */
    write_bytes(tpath("text.npy"), "hello world, not numpy", 22);
    expect_fail("text.npy", BALM_ERR_FORMAT, "magic");
    make_npy(tpath("magic.npy"), 1, 0, good_dict, 3, 0, 1);
    {
        size_t n;
        unsigned char *b = read_bytes(tpath("magic.npy"), &n);
        b[1] = 'n';
        write_bytes(tpath("magic.npy"), b, n);
        free(b);
    }
    expect_fail("magic.npy", BALM_ERR_FORMAT, "magic");
    /* Empty file and a file cut inside the prefix. */
    write_bytes(tpath("empty.npy"), "", 0);
    expect_fail("empty.npy", BALM_ERR_FORMAT, NULL);
    write_bytes(tpath("cut8.npy"), "\x93NUMPY\x01\x00", 8);
    expect_fail("cut8.npy", BALM_ERR_FORMAT, "truncated header");
    write_bytes(tpath("cut10.npy"), "\x93NUMPY\x02\x00\x10\x00", 10);
    expect_fail("cut10.npy", BALM_ERR_FORMAT, "truncated header");

    make_npy(tpath("v4.npy"), 4, 0, good_dict, 3, 0, 1);
    expect_fail("v4.npy", BALM_ERR_FORMAT, "version 4.0");
    make_npy(tpath("v11.npy"), 1, 1, good_dict, 3, 0, 1);
    expect_fail("v11.npy", BALM_ERR_FORMAT, "version 1.1");
    make_npy(tpath("v0.npy"), 0, 0, good_dict, 3, 0, 1);
    expect_fail("v0.npy", BALM_ERR_FORMAT, "version 0.0");

    make_npy(tpath("f8.npy"), 1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
             6, 0, 1);
    expect_fail("f8.npy", BALM_ERR_FORMAT, "dtype '<f8' is not little-endian float32");
    make_npy(tpath("bigend.npy"), 1, 0,
             "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", 3, 0, 1);
    expect_fail("bigend.npy", BALM_ERR_FORMAT, "dtype '>f4'");
    make_npy(tpath("pipef4.npy"), 1, 0,
             "{'descr': '|f4', 'fortran_order': False, 'shape': (3,), }", 3, 0, 1);
    expect_fail("pipef4.npy", BALM_ERR_FORMAT, "dtype '|f4'");
    make_npy(tpath("struct.npy"), 1, 0,
             "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", 3, 0, 1);
    expect_fail("struct.npy", BALM_ERR_FORMAT, "structured");
    make_npy(tpath("fortran.npy"), 1, 0,
             "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", 3, 0, 1);
    expect_fail("fortran.npy", BALM_ERR_FORMAT, "fortran_order");

    make_npy(tpath("short.npy"), 1, 0, good_dict, 2, 0, 1);
    expect_fail("short.npy", BALM_ERR_FORMAT, "truncated data");
    make_npy(tpath("short2.npy"), 1, 0, good_dict, 2, 3, 1); /* 11 of 12 bytes */
    expect_fail("short2.npy", BALM_ERR_FORMAT, "truncated data");
    make_npy(tpath("extra.npy"), 1, 0, good_dict, 3, 1, 1);
    expect_fail("extra.npy", BALM_ERR_FORMAT, "extra bytes");
    make_npy(tpath("extra4.npy"), 1, 0, good_dict, 4, 0, 1);
    expect_fail("extra4.npy", BALM_ERR_FORMAT, "extra bytes");

    /* The header length field points past the end of the file. */
    {
        unsigned char b[10 + 20];
        memcpy(b, "\x93NUMPY\x01\x00\x00\x01", 10); /* 256 bytes claimed */
        memset(b + 10, ' ', 20);
        write_bytes(tpath("hlen.npy"), b, sizeof b);
        expect_fail("hlen.npy", BALM_ERR_FORMAT, "beyond the end");
        memcpy(b, "\x93NUMPY\x02\x00\xff\xff\xff\xff", 12); /* 4 GiB in a 2.0 header */
        write_bytes(tpath("hlen2.npy"), b, sizeof b);
        expect_fail("hlen2.npy", BALM_ERR_FORMAT, "absurd");
    }

    static const struct {
        const char *file, *dict, *needle;
    } bad[] = {
        {"shape_garbage.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, x), }",
         "shape"},
        {"shape_word.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': 'abc', }", "shape"},
        {"shape_nocomma.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3 4), }",
         "shape"},
        {"shape_int.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", "tuple"},
        {"shape_open.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, ", "shape"},
        {"shape_float.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,), }",
         "shape"},
        {"negdim.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", "negative"},
        {"hugedim.npy",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (123456789012345678901234,), }",
         "size_t"},
        {"overflow.npy",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }",
         "overflow"},
        {"overflow4.npy",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }",
         "overflow"},
        {"ninedims.npy",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
         "dimensions"},
        {"noshape.npy", "{'descr': '<f4', 'fortran_order': False, }", "lacks 'shape'"},
        {"nodescr.npy", "{'fortran_order': False, 'shape': (3,), }", "lacks 'descr'"},
        {"noorder.npy", "{'descr': '<f4', 'shape': (3,), }", "lacks 'fortran_order'"},
        {"unknownkey.npy",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1, }", "'x'"},
        {"twice.npy", "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}",
         "twice"},
        {"notdict.npy", "['descr', '<f4']", "dict"},
        {"trailing.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), } junk",
         "garbage"},
        {"unterminated.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), ",
         "unterminated"},
        {"badbool.npy", "{'descr': '<f4', 'fortran_order': 0, 'shape': (3,), }", "fortran_order"},
        {"badquote.npy", "{'descr: '<f4', 'fortran_order': False, 'shape': (3,), }", NULL},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        make_npy(tpath(bad[k].file), 1, 0, bad[k].dict, 3, 0, 1);
        expect_fail(bad[k].file, BALM_ERR_FORMAT, bad[k].needle);
    }
}

static void test_io_errors(void **state)
{
    (void)state;
    expect_fail("does_not_exist.npy", BALM_ERR_IO, "cannot open");
    assert_int_equal(mkdir(tpath("adir.npy"), 0777), 0);
    expect_fail("adir.npy", BALM_ERR_IO, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_write_matches_numpy),
        cmocka_unit_test(test_overwrite_and_no_temp_left),
        cmocka_unit_test(test_write_args),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_io_errors),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
