/* The trainer end to end on small slices: it learns, it is bit-for-bit
 * reproducible for a fixed seed and ISA, checkpoints round-trip and bad ones
 * are refused, flags are checked, .npy data sets load (classification and
 * regression) and malformed ones are refused. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "balm/npy.h"
#include "trainer.h"

static int have_fmnist(void)
{
    return access(BALM_FMNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) == 0;
}

static void small_opts(balm_train_opts *o)
{
    balm_train_opts_default(o);
    o->quiet = 1;
    /* small enough to keep the suite short under qemu too */
    o->limit = 2500;
    o->test_limit = 1000;
    o->hidden = 32;
    o->epochs = 2;
    o->seed = 3;
}

static void test_learns_and_reproducible(void **state)
{
    (void)state;
    if (!have_fmnist())
        skip();
    balm_train_opts o;
    balm_train_result r1, r2, r3;
    small_opts(&o);
    o.epochs = 3;
    assert_int_equal(balm_train_run(&o, &r1), 0);
    /* chance is 0.10; three short epochs on 2.2k utterances reach ~0.6 */
    assert_true(r1.best_val_acc > 0.35);
    assert_true(r1.test_acc > 0.35);
    assert_true(r1.test_f1 > 0.30 && r1.test_f1 <= 1.0);
    assert_true(r1.best_epoch >= 1 && r1.best_epoch <= 3);
    for (int m = 0; m < BALM_NMOD; m++)
        assert_true(r1.head_test_acc[m] >= 0.0 && r1.head_test_acc[m] <= 1.0);
    /* same seed, same ISA: bit-for-bit the same weights and metrics */
    assert_int_equal(balm_train_run(&o, &r2), 0);
    assert_int_equal(r1.weights_crc, r2.weights_crc);
    assert_true(r1.test_f1 == r2.test_f1 && r1.test_acc == r2.test_acc);
    assert_true(r1.last_loss == r2.last_loss);
    /* another seed: other weights */
    o.seed = 4;
    assert_int_equal(balm_train_run(&o, &r3), 0);
    assert_int_not_equal(r1.weights_crc, r3.weights_crc);
}

static void test_baseline_learns(void **state)
{
    (void)state;
    if (!have_fmnist())
        skip();
    balm_train_opts o;
    balm_train_result r;
    small_opts(&o);
    o.balm = 0;
    assert_int_equal(balm_train_run(&o, &r), 0);
    assert_true(r.best_val_acc > 0.35);
    for (int m = 0; m < BALM_NMOD; m++)
        assert_true(r.head_test_acc[m] == -1.0); /* no GRM heads without BALM */
}

static char tmpdir[64];

static void path_in(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* --log: one JSON object per line, per epoch, then the final results;
 * --check-isa: passes at the default tolerance (1e-4) and fails at 0 when a
 * SIMD ISA is active (its kernels differ from the scalar twins by ~1e-7). */
static void test_log_and_check_isa(void **state)
{
    (void)state;
    if (!have_fmnist())
        skip();
    char log[256], line[4096];
    path_in(log, sizeof log, "run.jsonl");
    balm_train_opts o;
    balm_train_result r;
    small_opts(&o);
    o.log_path = log;
    o.check_isa = 1;
    assert_int_equal(balm_train_run(&o, &r), 0);
    assert_true(r.check_max_rel >= 0 && r.check_max_rel <= BALM_CHECK_ISA_TOL);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    int lines = 0, finals = 0;
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        assert_true(n > 2 && line[0] == '{' && line[n - 2] == '}' && line[n - 1] == '\n');
        lines++;
        if (strstr(line, "\"final\":true")) {
            finals++;
            double f1 = -1, acc = -1;
            assert_int_equal(sscanf(strstr(line, "\"test_f1\":"), "\"test_f1\":%lf", &f1), 1);
            assert_int_equal(sscanf(strstr(line, "\"test_acc\":"), "\"test_acc\":%lf", &acc), 1);
            assert_true(f1 >= 0 && f1 <= 1 && acc >= 0 && acc <= 1);
            assert_true(fabs(f1 - r.test_f1) < 1e-5);
            assert_non_null(strstr(line, "\"check_isa_ok\":true"));
        } else {
            assert_non_null(strstr(line, "\"val_f1\":"));
            assert_non_null(strstr(line, "\"kl\":{\"l\":"));
            assert_non_null(strstr(line, "\"check_isa\":{"));
        }
    }
    fclose(f);
    assert_int_equal(lines, o.epochs + 1);
    assert_int_equal(finals, 1);
    if (balm_isa_active() != BALM_ISA_SCALAR) {
        o.check_tol = 0.0;
        o.log_path = NULL;
        o.epochs = 1;
        assert_int_equal(balm_train_run(&o, &r), 1);
        assert_true(r.check_max_rel > 0);
    }
}

static void test_checkpoints(void **state)
{
    (void)state;
    if (!have_fmnist())
        skip();
    char ck[256], bad[256], cmd[1024];
    path_in(ck, sizeof ck, "model.ckpt");
    path_in(bad, sizeof bad, "bad.ckpt");
    balm_train_opts o;
    balm_train_result r1, r2;
    small_opts(&o);
    o.epochs = 1;
    o.save_path = ck;
    assert_int_equal(balm_train_run(&o, &r1), 0);
    assert_int_equal(access(ck, R_OK), 0);
    /* load and evaluate only: the same test metrics (the saved weights are
     * the best-validation ones, which the run reported on) */
    o.save_path = NULL;
    o.load_path = ck;
    o.epochs = 0;
    assert_int_equal(balm_train_run(&o, &r2), 0);
    assert_true(r1.test_f1 == r2.test_f1 && r1.test_acc == r2.test_acc);

    /* a flipped byte in the middle: CRC mismatch, refused */
    snprintf(cmd, sizeof cmd,
             "cp '%s' '%s' && printf '\\377' | dd of='%s' bs=1 seek=2000 conv=notrunc status=none", ck, bad, bad);
    assert_int_equal(system(cmd), 0);
    uint64_t meta[BALM_CKPT_META] = {196, 56, 16, 32, 10, 67, 1, 0};
    float dummy[4];
    balm_tensor_ref t = {"enc_l.weight", dummy, 4};
    assert_int_not_equal(balm_ckpt_load(bad, meta, &t, 1), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "corrupt or truncated"));
    o.load_path = bad;
    assert_int_equal(balm_train_run(&o, &r2), 1);
    /* truncated */
    snprintf(cmd, sizeof cmd, "head -c 5000 '%s' > '%s'", ck, bad);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(balm_train_run(&o, &r2), 1);
    assert_int_not_equal(balm_ckpt_load(bad, meta, &t, 1), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "corrupt or truncated"));
    /* not a checkpoint */
    snprintf(cmd, sizeof cmd, "echo hello > '%s'", bad);
    assert_int_equal(system(cmd), 0);
    assert_int_not_equal(balm_ckpt_load(bad, meta, &t, 1), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "not a balm checkpoint"));
    /* another model shape: refused with the differing field */
    o.load_path = ck;
    o.hidden = 16;
    assert_int_equal(balm_train_run(&o, &r2), 1);
    uint64_t meta16[BALM_CKPT_META] = {196, 56, 16, 16, 10, 67, 1, 0};
    assert_int_not_equal(balm_ckpt_load(ck, meta16, &t, 1), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "hidden width is 32 in the checkpoint, 16 here"));
    /* the baseline cannot load a BALM checkpoint */
    o.hidden = 32;
    o.balm = 0;
    assert_int_equal(balm_train_run(&o, &r2), 1);
    uint64_t meta_nb[BALM_CKPT_META] = {196, 56, 16, 32, 10, 0, 0, 0};
    assert_int_not_equal(balm_ckpt_load(ck, meta_nb, &t, 1), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "balm (FCM+GRM) is 1 in the checkpoint, 0 here"));
    /* missing file */
    path_in(bad, sizeof bad, "absent.ckpt");
    assert_int_not_equal(balm_ckpt_load(bad, meta, &t, 1), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "cannot open"));
    /* no temporary file left behind */
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", tmpdir);
    assert_int_not_equal(system(cmd), 0);
}

static void test_ckpt_roundtrip(void **state)
{
    (void)state;
    char ck[256];
    path_in(ck, sizeof ck, "small.ckpt");
    float a[3] = {1, 2, 3}, b[2] = {4, 5}, a2[3] = {0}, b2[2] = {0};
    uint64_t meta[BALM_CKPT_META] = {1, 2, 3, 4, 5, 6, 7, 0};
    balm_tensor_ref t[2] = {{"a", a, 3}, {"b", b, 2}}, u[2] = {{"a", a2, 3}, {"b", b2, 2}};
    assert_int_equal(balm_ckpt_save(ck, meta, t, 2), BALM_OK);
    assert_int_equal(balm_ckpt_load(ck, meta, u, 2), BALM_OK);
    assert_memory_equal(a, a2, sizeof a);
    assert_memory_equal(b, b2, sizeof b);
    /* a wrong name or count writes nothing */
    float c[2] = {9, 9};
    balm_tensor_ref w[2] = {{"a", a2, 3}, {"c", c, 2}};
    assert_int_not_equal(balm_ckpt_load(ck, meta, w, 2), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "tensor 1 is 'b', this model expects 'c'"));
    assert_true(c[0] == 9 && c[1] == 9);
    balm_tensor_ref x[2] = {{"a", a2, 3}, {"b", c, 1}};
    assert_int_not_equal(balm_ckpt_load(ck, meta, x, 2), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "tensor 'b' has 2 values, this model 1"));
    assert_int_not_equal(balm_ckpt_load(ck, meta, t, 1), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "holds 2 tensors"));
    /* a directory that does not exist: error, no crash */
    assert_int_not_equal(balm_ckpt_save("/nonexistent-dir/x.ckpt", meta, t, 2), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "cannot create"));
}

static int parse(const char *line, balm_train_opts *o, char *err)
{
    char buf[512], *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "train %s", line);
    for (char *tok = strtok(buf, " "); tok && argc < 32; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    return balm_train_parse(argc, argv, o, err, 256);
}

static void expect_usage(const char *line, const char *msg)
{
    balm_train_opts o;
    char err[256] = "";
    assert_int_equal(parse(line, &o, err), 2);
    if (!strstr(err, msg))
        fail_msg("'%s' gave '%s', expected '%s'", line, err, msg);
}

static void test_flags(void **state)
{
    (void)state;
    balm_train_opts o;
    char err[256];
    assert_int_equal(parse("--epochs 3 --batch-size=8 --lr 3e-4 --missing-rates 0,0.99,0.3 --no-balm --seed 9 "
                           "--mask-order shuffled --isa scalar --check-isa --no-noise --tau 0.5 --rho 1.2",
                           &o, err),
                     0);
    assert_int_equal(o.epochs, 3);
    assert_int_equal(o.batch_size, 8);
    assert_true(o.rates[BALM_A] == 0.0 && o.rates[BALM_L] == 0.99 && o.rates[BALM_V] == 0.3);
    assert_true(!o.balm && !o.noise && o.check_isa && o.seed == 9 && o.mask_order == BALM_MASK_SHUFFLED);
    assert_int_equal(parse("--help", &o, err), 3);
    /* defaults are upstream's */
    assert_int_equal(parse("", &o, err), 0);
    assert_int_equal(o.batch_size, 16);
    assert_true(fabsf(o.tau - 0.3f) < 1e-7f && fabsf(o.rho - 1.4f) < 1e-7f && fabsf(o.l2 - 3e-5f) < 1e-12f);
    assert_true(o.rates[BALM_A] == 0.5 && o.rates[BALM_L] == 0.7 && o.rates[BALM_V] == 0.3);
    expect_usage("--missing-rates -0.1,0.7,0.3", "--missing-rates must be three rates a,l,v each in [0, 1)");
    expect_usage("--missing-rates 0.5,1,0.3", "in [0, 1)");
    expect_usage("--missing-rates 0.5,0.7", "in [0, 1)");
    expect_usage("--missing-rates 0.5,0.7,0.3,0.1", "in [0, 1)");
    expect_usage("--batch-size 0", "--batch-size must be an integer in 1..65536, got '0'");
    expect_usage("--batch-size -3", "--batch-size");
    expect_usage("--isa sse9", "unknown ISA 'sse9'");
    expect_usage("--data /nonexistent/dir", "--data directory '/nonexistent/dir' does not exist");
    expect_usage("--frobnicate", "unknown flag '--frobnicate'");
    expect_usage("--epochs", "--epochs needs a value");
    expect_usage("--lr nan", "--lr must be a finite number > 0");
    expect_usage("--lr 0", "--lr");
    expect_usage("--mask-order random", "--mask-order must be upstream or shuffled");
    expect_usage("--start-epoch 5 --end-epoch 2", "--end-epoch 2 is before --start-epoch 5");
    expect_usage("--no-balm=1", "--no-balm takes no value");
    expect_usage("stray", "unexpected argument 'stray'");
}

/* A synthetic .npy data set: label = argmax of the first 3 text features (or
 * their sum for regression), dialogues of 5 utterances. */
static void write_npy_set(const char *dir, int regression, int with_valid)
{
    const char *splits[3] = {"train", "valid", "test"};
    const size_t d[3] = {6, 4, 3};
    const char *mods[3] = {"text", "audio", "visual"};
    uint64_t s = 12345;
    for (int sp = 0; sp < 3; sp++) {
        if (sp == 1 && !with_valid)
            continue;
        size_t n = sp == 0 ? 400 : 100, nd = n / 5;
        float *x[3], *y = malloc(n * sizeof *y), *off = malloc((nd + 1) * sizeof *off);
        for (int m = 0; m < 3; m++) {
            x[m] = malloc(n * d[m] * sizeof(float));
            for (size_t i = 0; i < n * d[m]; i++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                x[m][i] = (float)((s >> 40) % 2001) / 1000.0f - 1.0f;
            }
        }
        for (size_t i = 0; i < n; i++) {
            const float *t = x[0] + i * d[0];
            /* the audio view carries the label too, so missing text still leaves a signal */
            x[1][i * d[1]] = t[0];
            x[1][i * d[1] + 1] = t[1];
            x[1][i * d[1] + 2] = t[2];
            if (regression)
                y[i] = t[0] + t[1] - t[2];
            else
                y[i] = (float)(t[0] > t[1] ? (t[0] > t[2] ? 0 : 2) : (t[1] > t[2] ? 1 : 2));
        }
        for (size_t k = 0; k <= nd; k++)
            off[k] = (float)(5 * k);
        char path[512];
        for (int m = 0; m < 3; m++) {
            size_t shape[2] = {n, d[m]};
            snprintf(path, sizeof path, "%s/%s_%s.npy", dir, splits[sp], mods[m]);
            assert_int_equal(balm_npy_write(path, x[m], 2, shape), BALM_OK);
            free(x[m]);
        }
        size_t ny = n, nof = nd + 1;
        snprintf(path, sizeof path, "%s/%s_labels.npy", dir, splits[sp]);
        assert_int_equal(balm_npy_write(path, y, 1, &ny), BALM_OK);
        snprintf(path, sizeof path, "%s/%s_dialogs.npy", dir, splits[sp]);
        assert_int_equal(balm_npy_write(path, off, 1, &nof), BALM_OK);
        free(y);
        free(off);
    }
}

static void test_npy_data(void **state)
{
    (void)state;
    char dir[256], path[512];
    path_in(dir, sizeof dir, "npyset");
    snprintf(path, sizeof path, "mkdir -p '%s'", dir);
    assert_int_equal(system(path), 0);
    write_npy_set(dir, 0, 1);
    balm_dataset ds;
    assert_int_equal(balm_npydata_load(dir, 0, 1, &ds), BALM_OK);
    assert_int_equal(ds.n_classes, 3);
    assert_int_equal(ds.train.n, 400);
    assert_int_equal(ds.valid.n, 100);
    assert_int_equal(ds.d[BALM_L], 6);
    assert_int_equal(ds.d[BALM_A], 4);
    assert_int_equal(ds.train.n_dialogs, 80);
    balm_dataset_free(&ds);
    /* --limit keeps whole dialogues */
    assert_int_equal(balm_npydata_load(dir, 12, 1, &ds), BALM_OK);
    assert_int_equal(ds.train.n, 10);
    balm_dataset_free(&ds);

    balm_train_opts o;
    balm_train_result r;
    balm_train_opts_default(&o);
    o.quiet = 1;
    o.data_dir = dir;
    o.epochs = 8;
    o.rates[BALM_A] = o.rates[BALM_L] = o.rates[BALM_V] = 0.2;
    assert_int_equal(balm_train_run(&o, &r), 0);
    assert_true(r.best_val_acc > 0.55); /* chance 1/3 */

    /* regression, no valid split (held out), one output */
    char rdir[256];
    path_in(rdir, sizeof rdir, "npyreg");
    snprintf(path, sizeof path, "mkdir -p '%s'", rdir);
    assert_int_equal(system(path), 0);
    write_npy_set(rdir, 1, 0);
    assert_int_equal(balm_npydata_load(rdir, 0, 1, &ds), BALM_OK);
    assert_int_equal(ds.n_classes, 1);
    assert_int_equal(ds.train.n + ds.valid.n, 400);
    balm_dataset_free(&ds);
    o.data_dir = rdir;
    assert_int_equal(balm_train_run(&o, &r), 0);
    assert_true(r.test_acc > 0.6); /* sign agreement, chance 0.5 */

    /* malformed sets */
    float off[3] = {0, 5, 7};
    size_t n3 = 3;
    snprintf(path, sizeof path, "%s/test_dialogs.npy", dir);
    assert_int_equal(balm_npy_write(path, off, 1, &n3), BALM_OK);
    assert_int_not_equal(balm_npydata_load(dir, 0, 1, &ds), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "last offset 7 is not the utterance count 100"));
    float off2[3] = {0, 5, 5};
    assert_int_equal(balm_npy_write(path, off2, 1, &n3), BALM_OK);
    assert_int_not_equal(balm_npydata_load(dir, 0, 1, &ds), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "strictly increasing"));
    snprintf(path, sizeof path, "%s/test_audio.npy", dir);
    float z[10] = {0};
    size_t sh[2] = {5, 2};
    assert_int_equal(balm_npy_write(path, z, 2, sh), BALM_OK);
    assert_int_not_equal(balm_npydata_load(dir, 0, 1, &ds), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "test_audio.npy' has 5 rows"));
    snprintf(path, sizeof path, "echo garbage > '%s/test_audio.npy'", dir);
    assert_int_equal(system(path), 0);
    assert_int_not_equal(balm_npydata_load(dir, 0, 1, &ds), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "test_audio.npy"));
    snprintf(path, sizeof path, "%s/test_audio.npy", dir);
    remove(path);
    assert_int_not_equal(balm_npydata_load(dir, 0, 1, &ds), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "test_audio.npy"));
    /* a valid label outside the training classes */
    write_npy_set(dir, 0, 1);
    float yb[100];
    for (int i = 0; i < 100; i++)
        yb[i] = i == 42 ? 7.0f : 0.0f;
    size_t n100 = 100;
    snprintf(path, sizeof path, "%s/valid_labels.npy", dir);
    assert_int_equal(balm_npy_write(path, yb, 1, &n100), BALM_OK);
    assert_int_not_equal(balm_npydata_load(dir, 0, 1, &ds), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "valid label 7 at index 42"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/balm_train_XXXXXX");
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
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_ckpt_roundtrip),
        cmocka_unit_test(test_npy_data),
        cmocka_unit_test(test_learns_and_reproducible),
        cmocka_unit_test(test_baseline_learns),
        cmocka_unit_test(test_checkpoints),
        cmocka_unit_test(test_log_and_check_isa),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
