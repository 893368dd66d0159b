/* Trainer data: IMR pattern counts against the spec, pattern layouts, the
 * IDX reader's refusals, and the Fashion-MNIST views and splits. */
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
#include <zlib.h>
#include <cmocka.h>
#include "trainer.h"

/* counts[] index by (l, a, v) presence */
#define P(l, a, v) BALM_PAT(l, a, v)

static void check_counts(size_t N, double ra, double rl, double rv, const size_t want_lav[8])
{
    double rates[BALM_NMOD];
    size_t c[8], sum = 0;
    rates[BALM_A] = ra;
    rates[BALM_L] = rl;
    rates[BALM_V] = rv;
    balm_imr_counts(N, rates, c);
    assert_int_equal(c[0], 0);
    for (unsigned p = 1; p < 8; p++) {
        sum += c[p];
        unsigned l = p >> BALM_L & 1, a = p >> BALM_A & 1, v = p >> BALM_V & 1;
        assert_int_equal(c[p], want_lav[l << 2 | a << 1 | v]);
    }
    assert_int_equal(sum, N);
}

/* Expected values from the spec's formula evaluated in Python (float64):
 * floor(N*prod) per pattern, remainder a third a-only, a third v-only, rest
 * l-only. Index l<<2 | a<<1 | v. */
static void test_imr_counts(void **state)
{
    (void)state;
    /* upstream rates (a, l, v) = (0.5, 0.7, 0.3) */
    const size_t w1000[8] = {0, 279, 140, 244, 82, 105, 45, 105};
    check_counts(1000, 0.5, 0.7, 0.3, w1000);
    const size_t w137[8] = {0, 38, 19, 33, 13, 14, 6, 14};
    check_counts(137, 0.5, 0.7, 0.3, w137);
    /* nothing missing */
    const size_t w0[8] = {0, 0, 0, 0, 0, 0, 0, 1000};
    check_counts(1000, 0, 0, 0, w0);
    /* close to 1: everything lands in single-modality patterns */
    const size_t w99[8] = {0, 333, 333, 0, 334, 0, 0, 0};
    check_counts(1000, 0.99, 0.99, 0.99, w99);
    const size_t wmix[8] = {0, 4, 0, 0, 2, 4, 0, 0};
    check_counts(10, 0.999, 0.5, 0.0, wmix);
    /* N = 0 and N = 1 */
    const size_t wz[8] = {0};
    check_counts(0, 0.5, 0.7, 0.3, wz);
    double r[3] = {0.7, 0.5, 0.3};
    size_t c[8];
    balm_imr_counts(1, r, c);
    assert_int_equal(c[P(1, 0, 0)], 1);
}

static void make_split(balm_split *s, size_t n, const size_t d[3])
{
    assert_int_equal(balm_split_alloc(s, n, 1, d), BALM_OK);
    s->dialog[1] = n;
    for (int m = 0; m < 3; m++)
        for (size_t i = 0; i < n * d[m]; i++)
            s->x[m][i] = 1.0f + (float)i;
}

static void test_imr_apply(void **state)
{
    (void)state;
    const size_t d[3] = {3, 2, 1};
    double rates[3];
    rates[BALM_A] = 0.5;
    rates[BALM_L] = 0.7;
    rates[BALM_V] = 0.3;
    size_t want[8];
    balm_imr_counts(1000, rates, want);
    for (int order = 0; order < 2; order++) {
        balm_split s;
        make_split(&s, 1000, d);
        assert_int_equal(balm_imr_apply(&s, d, rates, (balm_mask_order)order, 7), BALM_OK);
        size_t got[8] = {0}, runs = 1;
        unsigned prev = 99;
        for (size_t i = 0; i < s.n; i++) {
            unsigned p = 0;
            for (int m = 0; m < 3; m++) {
                assert_true(s.mask[m][i] == 0.0f || s.mask[m][i] == 1.0f);
                p |= (s.mask[m][i] == 1.0f) << m;
                for (size_t k = 0; k < d[m]; k++) {
                    float x = s.x[m][i * d[m] + k];
                    if (s.mask[m][i] == 0.0f)
                        assert_true(x == 0.0f); /* missing features zeroed */
                    else
                        assert_true(x != 0.0f);
                }
            }
            assert_true(p != 0); /* no utterance loses every modality */
            got[p]++;
            if (i && p != prev)
                runs++;
            prev = p;
        }
        for (int p = 0; p < 8; p++)
            assert_int_equal(got[p], want[p]);
        if (order == BALM_MASK_UPSTREAM)
            assert_int_equal(runs, 7); /* one block per pattern, clustered */
        else
            assert_true(runs > 100);
        if (order == BALM_MASK_UPSTREAM) /* the fixed order starts with all present */
            assert_true(s.mask[0][0] == 1.0f && s.mask[1][0] == 1.0f && s.mask[2][0] == 1.0f);
        balm_split_free(&s);
    }
}

/* Writes a gzip IDX file: magic, dims (big-endian), `payload` bytes. */
static void write_idx(const char *path, uint32_t magic, const uint32_t *dims, int nd,
                      size_t payload)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    unsigned char b[4];
    for (int k = -1; k < nd; k++) {
        uint32_t v = k < 0 ? magic : dims[k];
        b[0] = (unsigned char)(v >> 24);
        b[1] = (unsigned char)(v >> 16);
        b[2] = (unsigned char)(v >> 8);
        b[3] = (unsigned char)v;
        gzwrite(f, b, 4);
    }
    for (size_t i = 0; i < payload; i++) {
        unsigned char c = (unsigned char)(i % 7);
        gzwrite(f, &c, 1);
    }
    gzclose(f);
}

static void expect_idx_error(const char *path, size_t nd, const size_t *expect, const char *what)
{
    size_t dims[4];
    uint8_t *data = (uint8_t *)1;
    balm_status st = balm_idx_read(path, nd, expect, 0, dims, &data);
    assert_int_not_equal(st, BALM_OK);
    assert_null(data);
    const char *msg = balm_last_error();
    if (!strstr(msg, what) || !strstr(msg, path))
        fail_msg("message '%s' lacks '%s' or the path", msg, what);
}

static void test_idx_errors(void **state)
{
    (void)state;
    char dir[] = "/tmp/balm_idx_XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    const uint32_t d3[3] = {5, 28, 28}, d1[1] = {5};
    const size_t exp3[3] = {0, 28, 28};

    snprintf(path, sizeof path, "%s/good.gz", dir);
    write_idx(path, 0x803, d3, 3, 5 * 784);
    size_t dims[3];
    uint8_t *data = NULL;
    assert_int_equal(balm_idx_read(path, 3, exp3, 0, dims, &data), BALM_OK);
    assert_int_equal(dims[0], 5);
    assert_int_equal(data[8], 1);
    free(data);
    /* a prefix: two images of five, the file's count still reported */
    assert_int_equal(balm_idx_read(path, 3, exp3, 2, dims, &data), BALM_OK);
    assert_int_equal(dims[0], 5);
    assert_int_equal(data[2 * 784 - 1], (2 * 784 - 1) % 7);
    free(data);

    snprintf(path, sizeof path, "%s/magic.gz", dir);
    write_idx(path, 0x801, d3, 3, 5 * 784); /* label magic on an image file */
    expect_idx_error(path, 3, exp3, "bad magic 0x00000801, expected 0x00000803");
    snprintf(path, sizeof path, "%s/float.gz", dir);
    write_idx(path, 0x0d03, d3, 3, 5 * 784); /* float IDX */
    expect_idx_error(path, 3, exp3, "bad magic");
    snprintf(path, sizeof path, "%s/trunc.gz", dir);
    write_idx(path, 0x803, d3, 3, 5 * 784 - 10);
    expect_idx_error(path, 3, exp3, "truncated: 3910 of 3920 data bytes");
    snprintf(path, sizeof path, "%s/hdr.gz", dir);
    write_idx(path, 0x803, d3, 1, 0); /* header cut after the first dimension */
    expect_idx_error(path, 3, exp3, "truncated: 8 of 16 header bytes");
    snprintf(path, sizeof path, "%s/dims.gz", dir);
    const uint32_t d27[3] = {5, 27, 28};
    write_idx(path, 0x803, d27, 3, 5 * 27 * 28);
    expect_idx_error(path, 3, exp3, "dimension 1 is 27, expected 28");
    snprintf(path, sizeof path, "%s/trail.gz", dir);
    write_idx(path, 0x801, d1, 1, 6);
    expect_idx_error(path, 1, NULL, "trailing data");
    snprintf(path, sizeof path, "%s/empty.gz", dir);
    write_idx(path, 0x801, d1, -1, 0);
    expect_idx_error(path, 1, NULL, "truncated: 0 of 4 magic bytes");
    snprintf(path, sizeof path, "%s/absent.gz", dir);
    expect_idx_error(path, 1, NULL, "cannot open");

    /* a whole Fashion-MNIST folder with a bad label value */
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(path, 0x803, d3, 3, 5 * 784);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    write_idx(path, 0x801, d1, 1, 0);
    {
        gzFile f = gzopen(path, "wb");
        const unsigned char hdr[8] = {0, 0, 8, 1, 0, 0, 0, 5}, lab[5] = {1, 2, 12, 3, 4};
        gzwrite(f, hdr, 8);
        gzwrite(f, lab, 5);
        gzclose(f);
    }
    balm_dataset ds;
    assert_int_not_equal(balm_fmnist_load(dir, 0, 0, 1, &ds), BALM_OK);
    assert_non_null(strstr(balm_last_error(), "label 12 at index 2 is not in 0..9"));

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_fmnist_views(void **state)
{
    (void)state;
    if (access(BALM_FMNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0)
        skip();
    balm_dataset ds;
    assert_int_equal(balm_fmnist_load(BALM_FMNIST_DIR, 3000, 0, 5, &ds), BALM_OK);
    assert_int_equal(ds.d[BALM_L], 196);
    assert_int_equal(ds.d[BALM_A], 56);
    assert_int_equal(ds.d[BALM_V], 16);
    assert_int_equal(ds.n_classes, 10);
    assert_int_equal(ds.train.n + ds.valid.n, 3000);
    assert_int_equal(ds.test.n, 10000);
    /* ~10% of the dialogues held out, whole dialogues */
    size_t nd = ds.train.n_dialogs + ds.valid.n_dialogs;
    assert_int_equal(ds.valid.n_dialogs, (nd + 5) / 10);
    balm_split *sp[3] = {&ds.train, &ds.valid, &ds.test};
    for (int s = 0; s < 3; s++) {
        assert_int_equal(sp[s]->dialog[0], 0);
        assert_int_equal(sp[s]->dialog[sp[s]->n_dialogs], sp[s]->n);
        for (size_t k = 0; k + 1 < sp[s]->n_dialogs; k++) {
            size_t len = sp[s]->dialog[k + 1] - sp[s]->dialog[k];
            assert_true(len >= BALM_DIALOG_MIN && len <= BALM_DIALOG_MAX);
        }
        for (size_t i = 0; i < sp[s]->n; i++)
            assert_true(sp[s]->y[i] >= 0 && sp[s]->y[i] < 10 && sp[s]->y[i] == floorf(sp[s]->y[i]));
    }
    /* standardised with training statistics: per-channel mean ~0, sd ~1 on
     * train (tolerance 1e-3 absolute on the mean, float accumulation) */
    for (int m = 0; m < 3; m++) {
        size_t D = ds.d[m];
        for (size_t k = 0; k < D; k++) {
            double s1 = 0, s2 = 0;
            for (size_t i = 0; i < ds.train.n; i++) {
                double x = ds.train.x[m][i * D + k];
                s1 += x;
                s2 += x * x;
            }
            double mean = s1 / (double)ds.train.n;
            double var = s2 / (double)ds.train.n - mean * mean;
            assert_true(fabs(mean) < 1e-3);
            assert_true(var < 1e-6 || fabs(var - 1.0) < 1e-2);
        }
    }
    /* the same seed gives the same split, another seed another one */
    balm_dataset ds2;
    assert_int_equal(balm_fmnist_load(BALM_FMNIST_DIR, 3000, 0, 5, &ds2), BALM_OK);
    assert_int_equal(ds2.valid.n, ds.valid.n);
    assert_memory_equal(ds2.valid.x[0], ds.valid.x[0], ds.valid.n * 196 * sizeof(float));
    balm_dataset_free(&ds2);
    assert_int_equal(balm_fmnist_load(BALM_FMNIST_DIR, 3000, 2000, 6, &ds2), BALM_OK);
    assert_int_equal(ds2.test.n, 2000);
    assert_true(ds2.train.n_dialogs != ds.train.n_dialogs ||
                memcmp(ds2.train.dialog, ds.train.dialog, ds.train.n_dialogs * sizeof(size_t)) != 0);
    balm_dataset_free(&ds2);
    balm_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imr_counts),
        cmocka_unit_test(test_imr_apply),
        cmocka_unit_test(test_idx_errors),
        cmocka_unit_test(test_fmnist_views),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
