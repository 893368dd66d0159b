/* `balm train` flags: upstream's names and defaults, strict parsing (a bad
 * value is a usage error, never silently clamped). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "internal.h"
#include "train.h"
#include "trainer.h"

void balm_train_opts_default(balm_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->batch_size = 16;
    /* Upstream's IEMOCAP lr is 3e-4; Fashion-MNIST's small encoders train
     * well in few epochs at 1e-3 (upstream's MOSEI value). */
    o->lr = 1e-3f;
    o->l2 = 3e-5f;
    o->tau = 0.3f;
    o->rho = 1.4f;
    o->start_epoch = 1;
    o->end_epoch = 0;
    o->noise = 1;
    o->seed = 1;
    o->rates[BALM_A] = 0.5;
    o->rates[BALM_L] = 0.7;
    o->rates[BALM_V] = 0.3;
    o->mask_order = BALM_MASK_UPSTREAM;
    o->hidden = 64;
    o->balm = 1;
    o->check_tol = BALM_CHECK_ISA_TOL;
    o->fmnist_dir = BALM_FMNIST_DIR;
}

void balm_train_usage(void *stream)
{
    fputs("usage: balm train [options]\n"
          "  Trains encoders (Linear->relu) + fused classifier with BALM (FCM + GRM)\n"
          "  under imbalanced missing rates; default data: Fashion-MNIST views.\n"
          "  --epochs N          epochs in all, those of a --load checkpoint included (10)\n"
          "  --batch-size N      dialogues per batch (16)\n"
          "  --lr X              Adam learning rate (1e-3)\n"
          "  --l2 X              Adam L2 weight decay (3e-5)\n"
          "  --tau X             direction-loss weight (0.3)\n"
          "  --rho X             gradient rescaling factor (1.4)\n"
          "  --d-global N        FCM bottleneck width ((d_l+d_a+d_v)/4)\n"
          "  --start-epoch N     first epoch of gradient rescaling (1)\n"
          "  --end-epoch N       last epoch of gradient rescaling (last epoch)\n"
          "  --no-noise          no gradient noise after rescaling\n"
          "  --seed N            seed of data split, masks, init, noise (1)\n"
          "  --missing-rates a,l,v  missing rates in [0,1) (0.5,0.7,0.3)\n"
          "  --mask-order upstream|shuffled  missing-pattern layout (upstream)\n"
          "  --limit N           use only the first N training utterances\n"
          "  --hidden N          encoder width (64)\n"
          "  --no-balm           same backbone without FCM and GRM\n"
          "  --check-isa         run the scalar twin beside every SIMD kernel call;\n"
          "                      fail past a max relative difference of 1e-4\n"
          "  --isa NAME          cap the kernel ISA (scalar, avx2, avx512, neon)\n"
          "  --log FILE.jsonl    one JSON object per epoch and a final one\n"
          "  --save FILE         checkpoint: best-validation weights and the training state\n"
          "  --load FILE         resume a checkpoint up to --epochs (same training flags);\n"
          "                      --epochs 0: evaluate its best-validation weights\n"
          "  --data DIR          .npy data set (see README) instead of Fashion-MNIST\n",
          (FILE *)stream);
}

static int fail(char *err, size_t n, const char *fmt, ...) BALM_PRINTF(3, 4);
static int fail(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return 2;
}

static int parse_size(const char *s, size_t *out, size_t min)
{
    char *end;
    if (!s || !*s || *s == '-')
        return 1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > (unsigned long long)SIZE_MAX / 2)
        return 1;
    *out = (size_t)v;
    return 0;
}

static int parse_float(const char *s, float *out)
{
    char *end;
    if (!s || !*s)
        return 1;
    errno = 0;
    double v = strtod(s, &end);
    /* finite as a float too: 1e40 would become inf */
    if (errno || *end || !isfinite(v) || !isfinite((float)v))
        return 1;
    *out = (float)v;
    return 0;
}

static int parse_rates(const char *s, double r[BALM_NMOD])
{
    /* upstream order on the command line: a, l, v */
    static const int slot[3] = {BALM_A, BALM_L, BALM_V};
    char buf[128];
    if (!s || strlen(s) >= sizeof buf)
        return 1;
    strcpy(buf, s);
    char *p = buf;
    for (int i = 0; i < 3; i++) {
        char *comma = strchr(p, ',');
        if ((i < 2) != (comma != NULL))
            return 1;
        if (comma)
            *comma = '\0';
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (!*p || errno || *end || !(v >= 0.0 && v < 1.0))
            return 1;
        r[slot[i]] = v;
        p = comma ? comma + 1 : p;
    }
    return 0;
}

int balm_train_parse(int argc, char **argv, balm_train_opts *o, char *err, size_t errlen)
{
    balm_train_opts_default(o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) != 0)
            return fail(err, errlen, "balm train: unexpected argument '%s'", a);
        if (eq) {
            size_t k = (size_t)(eq - a);
            if (k >= sizeof name)
                return fail(err, errlen, "balm train: unknown flag '%s'", a);
            memcpy(name, a, k);
            name[k] = '\0';
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
        }
        static const char *const known[] = {
            "--help", "--no-noise", "--no-balm", "--check-isa", "--epochs", "--batch-size", "--lr",
            "--l2", "--tau", "--rho", "--d-global", "--hidden", "--limit", "--start-epoch",
            "--end-epoch", "--seed", "--missing-rates", "--mask-order", "--isa", "--log", "--save",
            "--load", "--data"};
        int is_known = 0;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            is_known |= !strcmp(name, known[k]);
        if (!is_known)
            return fail(err, errlen, "balm train: unknown flag '%s'", name);
        /* flags without a value */
        if (!strcmp(name, "--help") || !strcmp(name, "--no-noise") || !strcmp(name, "--no-balm") ||
            !strcmp(name, "--check-isa")) {
            if (val)
                return fail(err, errlen, "balm train: %s takes no value", name);
            if (!strcmp(name, "--help"))
                return 3;
            if (!strcmp(name, "--no-noise"))
                o->noise = 0;
            else if (!strcmp(name, "--no-balm"))
                o->balm = 0;
            else
                o->check_isa = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc)
                return fail(err, errlen, "balm train: %s needs a value", name);
            val = argv[++i];
        }
        size_t z;
        float f;
        if (!strcmp(name, "--epochs")) {
            if (parse_size(val, &z, 0) || z > 100000)
                return fail(err, errlen, "balm train: --epochs must be an integer in 0..100000, got '%s'", val);
            o->epochs = (int)z;
        } else if (!strcmp(name, "--batch-size")) {
            if (parse_size(val, &z, 1) || z > 65536)
                return fail(err, errlen, "balm train: --batch-size must be an integer in 1..65536, got '%s'", val);
            o->batch_size = z;
        } else if (!strcmp(name, "--lr") || !strcmp(name, "--l2") || !strcmp(name, "--tau") ||
                   !strcmp(name, "--rho")) {
            if (parse_float(val, &f) || f < 0.0f || (!strcmp(name, "--lr") && f == 0.0f))
                return fail(err, errlen, "balm train: %s must be a finite number %s, got '%s'", name,
                            !strcmp(name, "--lr") ? "> 0" : ">= 0", val);
            if (!strcmp(name, "--lr"))
                o->lr = f;
            else if (!strcmp(name, "--l2"))
                o->l2 = f;
            else if (!strcmp(name, "--tau"))
                o->tau = f;
            else
                o->rho = f;
        } else if (!strcmp(name, "--d-global") || !strcmp(name, "--hidden") || !strcmp(name, "--limit")) {
            if (parse_size(val, &z, 1) || z > 1u << 30)
                return fail(err, errlen, "balm train: %s must be a positive integer, got '%s'", name, val);
            if (!strcmp(name, "--d-global"))
                o->d_global = z;
            else if (!strcmp(name, "--hidden"))
                o->hidden = z;
            else
                o->limit = z;
        } else if (!strcmp(name, "--start-epoch") || !strcmp(name, "--end-epoch")) {
            if (parse_size(val, &z, 0) || z > 100000)
                return fail(err, errlen, "balm train: %s must be an integer in 0..100000, got '%s'", name, val);
            if (!strcmp(name, "--start-epoch"))
                o->start_epoch = (int)z;
            else
                o->end_epoch = (int)z;
        } else if (!strcmp(name, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(val, &end, 10);
            if (!*val || *val == '-' || errno || *end)
                return fail(err, errlen, "balm train: --seed must be a non-negative integer, got '%s'", val);
            o->seed = v;
        } else if (!strcmp(name, "--missing-rates")) {
            if (parse_rates(val, o->rates))
                return fail(err, errlen, "balm train: --missing-rates must be three rates a,l,v each in [0, 1), got '%s'", val);
        } else if (!strcmp(name, "--mask-order")) {
            if (!strcmp(val, "upstream"))
                o->mask_order = BALM_MASK_UPSTREAM;
            else if (!strcmp(val, "shuffled"))
                o->mask_order = BALM_MASK_SHUFFLED;
            else
                return fail(err, errlen, "balm train: --mask-order must be upstream or shuffled, got '%s'", val);
        } else if (!strcmp(name, "--isa")) {
            balm_isa isa;
            if (balm_isa_from_name(val, &isa) != BALM_OK)
                return fail(err, errlen, "balm train: unknown ISA '%s' for --isa (scalar, avx2, avx512, neon)", val);
            o->isa = val;
        } else if (!strcmp(name, "--log") || !strcmp(name, "--save") || !strcmp(name, "--load") ||
                   !strcmp(name, "--data")) {
            if (!*val)
                return fail(err, errlen, "balm train: %s needs a non-empty path", name);
            if (!strcmp(name, "--log"))
                o->log_path = val;
            else if (!strcmp(name, "--save"))
                o->save_path = val;
            else if (!strcmp(name, "--load"))
                o->load_path = val;
            else
                o->data_dir = val;
        } else {
            return fail(err, errlen, "balm train: unknown flag '%s'", name);
        }
    }
    if (o->end_epoch && o->end_epoch < o->start_epoch)
        return fail(err, errlen, "balm train: --end-epoch %d is before --start-epoch %d", o->end_epoch,
                    o->start_epoch);
    struct stat sb;
    if (o->data_dir && (stat(o->data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        return fail(err, errlen, "balm train: --data directory '%s' does not exist or is not a directory",
                    o->data_dir);
    return 0;
}

int balm_cmd_train(int argc, char **argv)
{
    balm_train_opts o;
    char err[512];
    int rc = balm_train_parse(argc, argv, &o, err, sizeof err);
    if (rc == 3) {
        balm_train_usage(stdout);
        return 0;
    }
    if (rc) {
        fprintf(stderr, "%s\n", err);
        balm_train_usage(stderr);
        return 2;
    }
    balm_train_result r;
    return balm_train_run(&o, &r);
}
