/* Resuming a run: N epochs in one run give bit-for-bit the same final
 * weights, metrics and checkpoint as k epochs with --save, then --load and
 * the remaining N - k (--epochs is the total). Also: what --epochs may be
 * against a loaded checkpoint, other training flags refused, and a version 1
 * (weights-only) checkpoint refused with a message saying so; the CLI's
 * common error messages name no internal function. No tolerance:
 * every comparison is exact (same ISA, same seed). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "trainer.h"

static char tmpdir[64];

static int have_fmnist(void)
{
    return access(BALM_FMNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) == 0;
}

static void path_in(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static void small_opts(balm_train_opts *o)
{
    balm_train_opts_default(o);
    o->quiet = 1;
    o->limit = 1500; /* short under qemu too */
    o->test_limit = 500;
    o->hidden = 16;
    o->seed = 5;
}

/* Whole files equal, byte for byte. */
static int same_file(const char *a, const char *b)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

static void expect_same(const balm_train_result *a, const balm_train_result *b)
{
    assert_int_equal(a->weights_crc, b->weights_crc);
    assert_int_equal(a->epochs_run, b->epochs_run);
    assert_int_equal(a->best_epoch, b->best_epoch);
    assert_true(a->best_val_f1 == b->best_val_f1 && a->best_val_acc == b->best_val_acc);
    assert_true(a->last_loss == b->last_loss);
    assert_true(a->last_val_f1 == b->last_val_f1 && a->last_val_acc == b->last_val_acc);
    assert_true(a->test_f1 == b->test_f1 && a->test_acc == b->test_acc);
    for (int m = 0; m < BALM_NMOD; m++)
        assert_true(a->head_test_acc[m] == b->head_test_acc[m]);
}

/* N = 4 epochs straight vs k = 1 and k = 3 then resumed; with `balm` on, the
 * GRM window ends inside the run, so the resumed part crosses it too. */
static void resume_case(int balm, int noise)
{
    char full[256], part[256], res[256];
    path_in(full, sizeof full, "full.ckpt");
    path_in(part, sizeof part, "part.ckpt");
    path_in(res, sizeof res, "resumed.ckpt");
    balm_train_opts o;
    balm_train_result r_full, r_part, r_res;
    small_opts(&o);
    o.balm = balm;
    o.noise = noise;
    o.end_epoch = balm ? 3 : 0;
    o.epochs = 4;
    o.save_path = full;
    assert_int_equal(balm_train_run(&o, &r_full), 0);
    assert_int_equal(r_full.epochs_run, 4);
    for (int k = 1; k <= 3; k += 2) {
        o.epochs = k;
        o.save_path = part;
        o.load_path = NULL;
        assert_int_equal(balm_train_run(&o, &r_part), 0);
        o.epochs = 4;
        o.load_path = part;
        o.save_path = res;
        assert_int_equal(balm_train_run(&o, &r_res), 0);
        expect_same(&r_full, &r_res);
        assert_true(same_file(full, res)); /* the whole training state too */
    }
    /* --epochs 0 (and --epochs equal to the epochs done) evaluate the best
     * weights: the same test metrics as the run that saved them */
    o.load_path = full;
    o.save_path = NULL;
    o.epochs = 0;
    assert_int_equal(balm_train_run(&o, &r_res), 0);
    assert_true(r_res.test_f1 == r_full.test_f1 && r_res.test_acc == r_full.test_acc);
    assert_int_equal(r_res.best_epoch, r_full.best_epoch);
    o.epochs = 4;
    assert_int_equal(balm_train_run(&o, &r_res), 0);
    expect_same(&r_full, &r_res);
    /* fewer epochs than done: refused */
    o.epochs = 2;
    assert_int_equal(balm_train_run(&o, &r_res), 1);
}

static void test_resume_balm(void **state)
{
    (void)state;
    if (!have_fmnist())
        skip();
    resume_case(1, 1);
}

static void test_resume_baseline(void **state)
{
    (void)state;
    if (!have_fmnist())
        skip();
    resume_case(0, 1);
}

/* Resuming needs the training flags of the saved run; evaluating does not. */
static void test_resume_refuses_other_flags(void **state)
{
    (void)state;
    if (!have_fmnist())
        skip();
    char ck[256];
    path_in(ck, sizeof ck, "flags.ckpt");
    balm_train_opts o;
    balm_train_result r;
    small_opts(&o);
    o.epochs = 1;
    o.save_path = ck;
    assert_int_equal(balm_train_run(&o, &r), 0);
    o.save_path = NULL;
    o.load_path = ck;
    o.epochs = 2;
    o.seed = 6;
    assert_int_equal(balm_train_run(&o, &r), 1);
    o.seed = 5;
    o.lr = 3e-4f;
    assert_int_equal(balm_train_run(&o, &r), 1);
    o.lr = 1e-3f;
    o.batch_size = 8;
    assert_int_equal(balm_train_run(&o, &r), 1);
    o.epochs = 0; /* evaluation only: the flags do not matter */
    assert_int_equal(balm_train_run(&o, &r), 0);
}

/* A version 1 checkpoint (weights only) is refused with a message naming the
 * version and what to do. */
static void test_old_version(void **state)
{
    (void)state;
    char ck[256], cmd[700];
    path_in(ck, sizeof ck, "v1.ckpt");
    float a[2] = {1, 2}, b[2] = {0, 0};
    uint64_t meta[BALM_CKPT_META] = {1, 2, 3, 4, 5, 6, 1, 0};
    balm_tensor_ref t = {"a", a, 2}, u = {"a", b, 2};
    assert_int_equal(balm_ckpt_save(ck, meta, &t, 1), BALM_OK);
    assert_int_equal(balm_ckpt_load(ck, meta, &u, 1), BALM_OK);
    assert_true(b[0] == 1 && b[1] == 2);
    /* the version word (u32 little-endian after the 8-byte magic) set to 1 */
    snprintf(cmd, sizeof cmd, "printf '\\001' | dd of='%s' bs=1 seek=8 conv=notrunc status=none", ck);
    assert_int_equal(system(cmd), 0);
    b[0] = b[1] = 0;
    assert_int_not_equal(balm_ckpt_load(ck, meta, &u, 1), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "version 1 checkpoint (weights only"));
    assert_non_null(strstr(balm_last_error(), "train again with --save"));
    assert_true(b[0] == 0 && b[1] == 0);
    /* and some future version */
    snprintf(cmd, sizeof cmd, "printf '\\011' | dd of='%s' bs=1 seek=8 conv=notrunc status=none", ck);
    assert_int_equal(system(cmd), 0);
    assert_int_not_equal(balm_ckpt_load(ck, meta, &u, 1), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "has checkpoint version 9, this build reads 2"));
}

/* Runs the trainer with stderr captured into buf. */
static int run_captured(const balm_train_opts *o, char *buf, size_t n)
{
    char path[256];
    balm_train_result r;
    path_in(path, sizeof path, "stderr.txt");
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(path, "w+");
    assert_non_null(f);
    assert_true(saved >= 0 && dup2(fileno(f), 2) >= 0);
    int rc = balm_train_run(o, &r);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    fclose(f);
    return rc;
}

/* The CLI user's messages say what to do and name no internal function. */
static void test_user_messages(void **state)
{
    (void)state;
    char msg[2048], ck[256];
    balm_train_opts o;
    small_opts(&o);
    o.fmnist_dir = "/nonexistent-fmnist";
    assert_int_equal(run_captured(&o, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "dataset-fashion-mnist"));
    assert_null(strstr(msg, ": balm_")); /* no internal function name */
    path_in(ck, sizeof ck, "absent.ckpt");
    small_opts(&o);
    o.load_path = ck;
    o.epochs = 0;
    o.limit = 100;
    if (have_fmnist()) {
        assert_int_equal(run_captured(&o, msg, sizeof msg), 1);
        assert_non_null(strstr(msg, "balm train: --load: cannot open"));
        assert_null(strstr(msg, ": balm_")); /* no internal function name */
        o.load_path = NULL;
        o.limit = 5; /* one dialogue: no validation split */
        assert_int_equal(run_captured(&o, msg, sizeof msg), 1);
        assert_non_null(strstr(msg, "raise --limit"));
        assert_null(strstr(msg, ": balm_")); /* no internal function name */
    }
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/balm_resume_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_version),
        cmocka_unit_test(test_user_messages),
        cmocka_unit_test(test_resume_balm),
        cmocka_unit_test(test_resume_baseline),
        cmocka_unit_test(test_resume_refuses_other_flags),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
