/* Hostile inputs to the .npy reader and writer, beyond test_npy: files that
 * are not regular (FIFO, devices), every truncation and many one-byte
 * corruptions of a valid file, zero-size and overflowing shapes, odd paths.
 * A refused read leaves *out empty; nothing ever crashes or hangs.
 *
 * Each case prints "hostile: <case> -> <status>: <message>". */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "balm/npy.h"

static char dir[4096];

static const char *tp(const char *name)
{
    static char buf[4][4200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s/test_hostile_npy_XXXXXX", BALM_BINARY_DIR);
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void report(const char *what, balm_status st)
{
    printf("hostile: %s -> %s: %s\n", what, balm_status_str(st),
           st == BALM_OK ? "(accepted)" : balm_last_error());
}

static void put(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n)
        assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* A version 1.0 file: the dict padded to 64 bytes, then `nbytes` data bytes. */
static size_t make(unsigned char *b, size_t cap, const char *dict, size_t nbytes)
{
    size_t dl = strlen(dict), hlen = ((10 + dl + 1 + 63) / 64) * 64 - 10;
    assert_true(10 + hlen + nbytes <= cap);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(hlen & 0xff);
    b[9] = (unsigned char)(hlen >> 8);
    memcpy(b + 10, dict, dl);
    memset(b + 10 + dl, ' ', hlen - dl - 1);
    b[10 + hlen - 1] = '\n';
    for (size_t i = 0; i < nbytes; i++)
        b[10 + hlen + i] = (unsigned char)(i * 37 + 1);
    return 10 + hlen + nbytes;
}

static int is_empty(const balm_array *a)
{
    balm_array z;
    memset(&z, 0, sizeof z);
    return memcmp(a, &z, sizeof z) == 0;
}

/* Reads and checks the invariants either way; returns the status. */
static balm_status read_checked(const char *path, balm_array *a)
{
    memset(a, 0x5A, sizeof *a); /* garbage in: must be overwritten */
    balm_status st = balm_npy_read(path, a);
    if (st != BALM_OK) {
        assert_true(is_empty(a));
        assert_true(balm_last_error()[0] != '\0');
        return st;
    }
    size_t n = 1;
    for (size_t i = 0; i < a->ndim; i++)
        n *= a->shape[i];
    assert_true(a->ndim <= BALM_NPY_MAX_DIMS);
    assert_int_equal(n, a->count);
    assert_true(a->count == 0 || a->data != NULL);
    return st;
}

static void test_null_and_paths(void **state)
{
    (void)state;
    balm_array a;
    balm_status st = balm_npy_read(tp("x.npy"), NULL);
    report("npy_read out = NULL", st);
    assert_int_equal(st, BALM_ERR_NULL);
    memset(&a, 0x5A, sizeof a);
    st = balm_npy_read(NULL, &a);
    report("npy_read path = NULL", st);
    assert_int_equal(st, BALM_ERR_NULL);
    assert_true(is_empty(&a));
    st = read_checked("", &a);
    report("npy_read path = \"\"", st);
    assert_int_equal(st, BALM_ERR_IO);
    char *longp = malloc(9000);
    assert_non_null(longp);
    memset(longp, 'a', 8999);
    longp[8999] = '\0';
    st = read_checked(longp, &a);
    report("npy_read path of 8999 characters", st);
    assert_int_equal(st, BALM_ERR_IO);
    free(longp);
    st = read_checked("/dev/zero", &a);
    report("npy_read /dev/zero", st);
    assert_int_equal(st, BALM_ERR_IO);
    assert_non_null(strstr(balm_last_error(), "not a regular file"));
    st = read_checked("/dev/null", &a);
    report("npy_read /dev/null", st);
    assert_int_equal(st, BALM_ERR_IO);
    /* A regular file whose stat size is 0 but that has content. */
    st = read_checked("/proc/self/status", &a);
    report("npy_read /proc/self/status (size 0 in stat)", st);
    assert_true(st == BALM_ERR_FORMAT || st == BALM_ERR_IO);
    balm_array_free(NULL);
    memset(&a, 0, sizeof a);
    balm_array_free(&a);
    balm_array_free(&a); /* twice: the array is reset, so this is safe */
}

/* A FIFO with no writer: fopen() would block forever. The reader must refuse
 * it (not a regular file) instead of hanging the caller. Regression test: it
 * hung until 1b8e7e2 (fopen() first, then fstat()). */
static void test_fifo_does_not_hang(void **state)
{
    (void)state;
    const char *path = tp("fifo.npy");
    assert_int_equal(mkfifo(path, 0600), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(3); /* a hang ends the child with SIGALRM */
        balm_array a;
        balm_status st = balm_npy_read(path, &a);
        report("npy_read on a FIFO without writer", st);
        _exit(st == BALM_ERR_IO && is_empty(&a) ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        printf("hostile: npy_read on a FIFO without writer -> hung (no answer after 3 s)\n");
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        fail_msg("balm_npy_read on a FIFO hung or did not answer BALM_ERR_IO");
}

/* Every prefix of a valid file is refused (FORMAT), never read. */
static void test_every_truncation(void **state)
{
    (void)state;
    unsigned char b[512];
    size_t n = make(b, sizeof b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
    balm_array a;
    put(tp("full.npy"), b, n);
    assert_int_equal(read_checked(tp("full.npy"), &a), BALM_OK);
    assert_int_equal(a.count, 6);
    balm_array_free(&a);
    for (size_t cut = 0; cut < n; cut++) {
        put(tp("cut.npy"), b, cut);
        balm_status st = read_checked(tp("cut.npy"), &a);
        assert_int_equal(st, BALM_ERR_FORMAT);
    }
    report("npy_read of every prefix (0..n-1 bytes) of a valid 2x3 file", BALM_ERR_FORMAT);
}

/* One-byte corruptions of the prefix and header: each is either refused
 * with an empty array or gives a self-consistent one; none crashes (run
 * under ASan in ci/test-sanitize, which also sees any over-read). */
static void test_byte_corruptions(void **state)
{
    (void)state;
    unsigned char b[512], c[512];
    size_t n = make(b, sizeof b, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 12);
    static const unsigned char vals[] = {0x00, 0xff, ' ', '(', ')', ',', '\'', '"', '\\', '{',
                                         '}', ':', '9', '-', 'L', '\n', 0x80};
    size_t ok = 0, refused = 0;
    balm_array a;
    for (size_t i = 0; i < n - 12; i++)
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(c, b, n);
            if (c[i] == vals[v])
                continue;
            c[i] = vals[v];
            put(tp("corrupt.npy"), c, n);
            if (read_checked(tp("corrupt.npy"), &a) == BALM_OK) {
                ok++;
                balm_array_free(&a);
            } else {
                refused++;
            }
        }
    printf("hostile: npy_read of %zu one-byte corruptions of the prefix/header -> %zu refused, "
           "%zu read consistently (padding spaces changed), no crash\n",
           ok + refused, refused, ok);
    assert_true(refused > 0);
}

static void test_shapes(void **state)
{
    (void)state;
    static const struct {
        const char *what, *dict;
        size_t nbytes;
        balm_status want;
        size_t count;
    } cases[] = {
        {"shape (0,), no data", "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", 0,
         BALM_OK, 0},
        {"shape (0,) with 4 stray bytes",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", 4, BALM_ERR_FORMAT, 0},
        {"shape (), 4 bytes (0-d scalar)",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, BALM_OK, 1},
        {"shape (), no data", "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 0,
         BALM_ERR_FORMAT, 0},
        {"shape (0, 2^62), no data",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904), }", 0,
         BALM_OK, 0},
        {"shape (8 dims of 1)",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1), }", 4, BALM_OK,
         1},
        {"shape (2^32, 2^32) (product 2^64)",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0,
         BALM_ERR_FORMAT, 0},
        {"shape (2^62,) (bytes overflow)",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }", 0,
         BALM_ERR_FORMAT, 0},
        {"shape (3,) written as a 20-digit zero-padded dim",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (00000000000000000003,), }", 12,
         BALM_OK, 3},
        {"shape ( 3 , ) with odd spaces",
         "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 3 , ) }", 12, BALM_OK, 3},
        {"descr with a backslash escape",
         "{'descr': '<\\f4', 'fortran_order': False, 'shape': (3,), }", 12, BALM_ERR_FORMAT, 0},
        {"descr of 200 characters",
         "{'descr': '<f4xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'fortran_order': False, 'shape': (3,), }",
         12, BALM_ERR_FORMAT, 0},
        {"key of 100 characters",
         "{'descrxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxx': '<f4', 'fortran_order': False, 'shape': (3,), }",
         12, BALM_ERR_FORMAT, 0},
        {"empty dict", "{}", 0, BALM_ERR_FORMAT, 0},
        {"a dict that never closes", "{'descr': '<f4'", 0, BALM_ERR_FORMAT, 0},
        {"shape with a Python 2 long suffix",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (3L,), }", 12, BALM_OK, 3},
    };
    unsigned char b[1024];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t n = make(b, sizeof b, cases[k].dict, cases[k].nbytes);
        put(tp("shape.npy"), b, n);
        balm_array a;
        balm_status st = read_checked(tp("shape.npy"), &a);
        char what[160];
        snprintf(what, sizeof what, "npy_read %s", cases[k].what);
        report(what, st);
        assert_int_equal(st, cases[k].want);
        if (st == BALM_OK)
            assert_int_equal(a.count, cases[k].count);
        balm_array_free(&a);
    }
    /* A NUL byte inside the header. */
    size_t n = make(b, sizeof b, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 12);
    b[20] = '\0';
    put(tp("nul.npy"), b, n);
    balm_array a;
    balm_status st = read_checked(tp("nul.npy"), &a);
    report("npy_read header with a NUL byte", st);
    assert_int_equal(st, BALM_ERR_FORMAT);
    /* Header length 0 (v1.0) and 0xffff pointing past the end. */
    memcpy(b, "\x93NUMPY\x01\x00\x00\x00", 10);
    put(tp("h0.npy"), b, 10);
    st = read_checked(tp("h0.npy"), &a);
    report("npy_read header length 0", st);
    assert_int_equal(st, BALM_ERR_FORMAT);
}

static size_t count_tmp_files(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL)
        if (strstr(ent->d_name, ".tmp."))
            n++;
    closedir(d);
    return n;
}

static void test_write_hostile(void **state)
{
    (void)state;
    float v[4] = {1, 2, 3, 4};
    size_t shape[9] = {2, 2, 1, 1, 1, 1, 1, 1, 1};
    balm_status st;
    st = balm_npy_write(NULL, v, 1, shape);
    report("npy_write path = NULL", st);
    assert_int_equal(st, BALM_ERR_NULL);
    st = balm_npy_write(tp("w.npy"), v, 9, shape);
    report("npy_write ndim = 9", st);
    assert_int_equal(st, BALM_ERR_SIZE);
    st = balm_npy_write(tp("w.npy"), v, 2, NULL);
    report("npy_write shape = NULL with ndim 2", st);
    assert_int_equal(st, BALM_ERR_NULL);
    st = balm_npy_write(tp("w.npy"), NULL, 2, shape);
    report("npy_write data = NULL for 4 floats", st);
    assert_int_equal(st, BALM_ERR_NULL);
    size_t huge[3] = {(size_t)1 << 32, (size_t)1 << 32, 1};
    st = balm_npy_write(tp("w.npy"), v, 3, huge);
    report("npy_write shape product 2^64", st);
    assert_int_equal(st, BALM_ERR_SIZE);
    size_t huge2[1] = {(size_t)1 << 62};
    st = balm_npy_write(tp("w.npy"), v, 1, huge2);
    report("npy_write 2^62 floats (bytes overflow)", st);
    assert_int_equal(st, BALM_ERR_SIZE);
    size_t zero[2] = {0, 5};
    st = balm_npy_write(tp("zero.npy"), NULL, 2, zero);
    report("npy_write shape (0, 5) with data = NULL", st);
    assert_int_equal(st, BALM_OK);
    st = balm_npy_write("", v, 1, shape);
    report("npy_write path = \"\"", st);
    assert_int_equal(st, BALM_ERR_IO);
    st = balm_npy_write(tp("no/such/dir/w.npy"), v, 1, shape);
    report("npy_write into a missing folder", st);
    assert_int_equal(st, BALM_ERR_IO);
    /* Over an existing folder: the rename fails, no temporary file stays. */
    assert_int_equal(mkdir(tp("adir.npy"), 0700), 0);
    st = balm_npy_write(tp("adir.npy"), v, 1, shape);
    report("npy_write over a folder", st);
    assert_int_equal(st, BALM_ERR_IO);
    assert_int_equal(count_tmp_files(), 0);
    /* The old file survives a failed write. */
    assert_int_equal(balm_npy_write(tp("keep.npy"), v, 1, shape), BALM_OK);
    st = balm_npy_write(tp("keep.npy"), NULL, 1, shape);
    assert_int_equal(st, BALM_ERR_NULL);
    balm_array a;
    assert_int_equal(balm_npy_read(tp("keep.npy"), &a), BALM_OK);
    assert_int_equal(a.count, 2);
    assert_true(a.data[0] == 1.0f && a.data[1] == 2.0f);
    balm_array_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_and_paths),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_byte_corruptions),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_write_hostile),
        cmocka_unit_test(test_fifo_does_not_hang),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
